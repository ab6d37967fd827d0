"""What TensorRT's ONNX parser accepts, per TensorRT version (8.5, 8.6, 10.3).

Sources (onnx/onnx-tensorrt, read through the search tool; no TensorRT needed here):

* 8.5: ``docs/operators.md`` at commit 6d0ab7be324d02c7feb3a306b6fdbeae84f71ddc
  ("TensorRT 8.5 supports operators up to Opset 17"), transcribed op by op.
* 8.6: the 8.5 table plus ``docs/Changelog.md`` "TensorRT 8.6 EA/GA": added
  ``GroupNormalization``, ``LayerNormalization``, ``IsInf``; dynamic ``K`` for TopK;
  ReverseSequence with dynamic shapes. (The 8.6 ``operators.md`` itself was not in the index.)
* 10.3: ``docs/operators.md`` of TensorRT 10.15 minus what ``docs/Changelog.md`` says was added
  after 10.3 (10.4: window ops, tensor ``axes`` for Pad; 10.5: STFT; 10.14: Attention; 10.15:
  RotaryEmbedding, RMSNormalization, TensorScatter). Opset range 9..20 as in the 10.0 header.
  INT64 is native since 9.0 ("The ONNX parser no longer automatically casts INT64 to INT32").
  Where the 10.15 text is the only source for a 10.3 restriction (pooling ``dilations``,
  LSTM ``input_forget``/``layout``, Dropout ``training_mode``) it is applied as documented there;
  Mish and Gelu support in 10.3 is inferred the same way (not separately confirmed).
* Plugins: names from NVIDIA/TensorRT ``plugin/`` (e.g. ``efficientNMSPlugin/README.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgesdk.errors import GraphError

TRT_VERSIONS = ("8.5", "8.6", "10.3")

_Y_85 = """
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu
Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div
Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm
GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid
Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression
NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike
RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign
Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice
Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK
Transpose Trilu Unsqueeze Upsample Where Xor
"""
_N_85 = """
Bernoulli BitShift BlackmanWindow Compress ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear
HammingWindow HannWindow Hardmax IsInf LayerNormalization MatMulInteger MaxRoiPool MaxUnpool MelWeightMatrix
Multinomial NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement QLinearConv QLinearMatMul
STFT SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap
SoftmaxCrossEntropyLoss SplitToSequence StringNormalizer TfIdfVectorizer Unique
"""
_ADDED_86 = "GroupNormalization LayerNormalization IsInf"
_Y_1015 = """
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor
Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax Identity If
ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax
Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg
NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal
RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RMSNormalization RNN RoiAlign RotaryEmbedding Round STFT ScaledTanh Scan Scatter
ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign
SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter ThresholdedRelu Tile TopK Transpose Trilu
Unsqueeze Upsample Where Xor
"""
_N_1015 = """
AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Col2Im CenterCropPad Compress
ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear ImageDecoder MatMulInteger MaxRoiPool MaxUnpool
MelWeightMatrix Multinomial NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement
QLinearConv QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty SequenceErase
SequenceInsert SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence StringConcat
StringNormalizer StringSplit TfIdfVectorizer Unique
"""
_ADDED_AFTER_103 = (
    "Attention RotaryEmbedding RMSNormalization TensorScatter STFT BlackmanWindow HammingWindow HannWindow"
)

# TensorRT plugins the parser's fallback importer finds by op name (plugin/ in NVIDIA/TensorRT).
PLUGINS = frozenset(
    """
EfficientNMS_TRT EfficientNMS_ONNX_TRT EfficientNMS_Explicit_TF_TRT EfficientNMS_Implicit_TF_TRT
BatchedNMS_TRT BatchedNMSDynamic_TRT NMS_TRT NMSDynamic_TRT ROIAlign_TRT PyramidROIAlign_TRT
MultilevelCropAndResize_TRT MultilevelProposeROI_TRT ResizeNearest_TRT GridAnchor_TRT GridAnchorRect_TRT
InstanceNormalization_TRT ScatterND CropAndResize CropAndResizeDynamic Proposal ProposalDynamic
PriorBox_TRT Normalize_TRT Region_TRT Reorg_TRT FlattenConcat_TRT LReLU_TRT Clip_TRT CoordConvAC
DecodeBbox3DPlugin ModulatedDeformConv2d
""".split()
)

# Attributes EfficientNMS_TRT needs (plugin README "Parameters").
EFFICIENT_NMS_ATTRS = (
    "score_threshold",
    "iou_threshold",
    "max_output_boxes",
    "background_class",
    "score_activation",
    "box_coding",
)

RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORD_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})


@dataclass(frozen=True)
class TrtSupport:
    """One TensorRT version's ONNX-parser support table.

    Attributes:
        version: "8.5", "8.6" or "10.3".
        opset_min: lowest default-domain opset the parser is documented for.
        opset_max: highest.
        supported: ops listed "Y".
        unsupported: ops listed "N" (ops in neither set are unknown to the parser).
        int64_native: INT64 tensors are native (else cast down to INT32 with a warning).
        const_inputs: op -> {input index: input name} that must be constants (initializers).
        restrictions: op -> restriction text from the docs (for messages).
    """

    version: str
    opset_min: int
    opset_max: int
    supported: frozenset[str]
    unsupported: frozenset[str]
    int64_native: bool
    const_inputs: dict[str, dict[int, str]] = field(default_factory=dict)
    restrictions: dict[str, str] = field(default_factory=dict)

    def status(self, op: str) -> str:
        """ "supported", "unsupported" or "unknown" (not in the table)."""
        if op in self.supported:
            return "supported"
        if op in self.unsupported:
            return "unsupported"
        return "unknown"


def _ops(text: str) -> frozenset[str]:
    return frozenset(text.split())


_CONST_8X: dict[str, dict[int, str]] = {
    "Slice": {3: "axes"},
    "Squeeze": {1: "axes"},
    "Unsqueeze": {1: "axes"},
    "CumSum": {1: "axis"},
    "InstanceNormalization": {1: "scale", 2: "B"},
}
_RESTRICT_8X = {
    "Slice": "`axes` must be an initializer",
    "Squeeze": "`axes` must be an initializer",
    "Unsqueeze": "`axes` must be a constant tensor",
    "CumSum": "`axis` must be an initializer",
    "TopK": "`K` input must be an initializer",
    "InstanceNormalization": "Scales `scale` and biases `B` must be initializers",
    "AveragePool": "2D or 3D Pooling only",
    "MaxPool": "2D or 3D pooling only. `Indices` output tensor unsupported",
    "Einsum": "Ellipsis and diagonal operations are not supported",
    "If": "Output tensors of the two conditional branches must have broadcastable shapes",
    "DequantizeLinear": "`x_zero_point` must be zero",
    "QuantizeLinear": "`y_zero_point` must be 0",
}

_CONST_103: dict[str, dict[int, str]] = {
    "Squeeze": {1: "axes"},
    "Unsqueeze": {1: "axes"},
    "CumSum": {1: "axis"},
    "Pad": {3: "axes"},
    "OneHot": {1: "depth"},
    "Dropout": {2: "training_mode"},
    **{op: {1: "axes"} for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax")},
    **{op: {1: "axes"} for op in ("ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare")},
}
_RESTRICT_103 = {
    "Squeeze": "`axes` must be resolvable to a constant",
    "Unsqueeze": "`axes` must be resolvable to a constant",
    "CumSum": "`axis` must be a build-time constant",
    "Pad": "tensor `axes` is supported from TensorRT 10.4",
    "OneHot": "`depth` must be a build-time constant",
    "Dropout": "`is_training` must be an initializer and evaluate to False",
    "AveragePool": "2D or 3D Pooling only. `dilations` must be empty or all ones",
    "MaxPool": "2D or 3D pooling only. `Indices` output tensor unsupported. `dilations` must be empty or all ones",
    "LpPool": "`dilations` must be empty or all ones",
    "Einsum": "Ellipsis and diagonal operations are not supported (until TensorRT 10.12)",
    "If": "Output tensors of the two conditional branches must have the same rank and different names",
    "Loop": "Scan output length cannot be dynamic; loop-carried shapes must not change across iterations",
    "LSTM": "`input_forget` attribute must be 0. `layout` attribute must be 0",
    "GridSample": "Input must be 4D",
    "Resize": "Antialiasing is not supported; aspect ratio policy must be `stretch`",
    "DequantizeLinear": "`x_zero_point` must be zero",
    "QuantizeLinear": "`y_zero_point` must be 0",
    **{op: "`axes` must be an initializer" for op in _CONST_103 if op.startswith("Reduce")},
}

_SUPPORT: dict[str, TrtSupport] = {
    "8.5": TrtSupport(
        "8.5", 7, 17, _ops(_Y_85), _ops(_N_85), False,
        {**_CONST_8X, "TopK": {1: "K"}}, {**_RESTRICT_8X, "ReverseSequence": "Dynamic input shapes are unsupported"},
    ),
    "8.6": TrtSupport(
        "8.6", 7, 17, _ops(_Y_85) | _ops(_ADDED_86), _ops(_N_85) - _ops(_ADDED_86), False,
        dict(_CONST_8X), {k: v for k, v in _RESTRICT_8X.items() if k != "TopK"},
    ),
    "10.3": TrtSupport(
        "10.3", 9, 20, _ops(_Y_1015) - _ops(_ADDED_AFTER_103), _ops(_N_1015) | _ops(_ADDED_AFTER_103), True,
        dict(_CONST_103), dict(_RESTRICT_103),
    ),
}  # fmt: skip


def support(trt: str) -> TrtSupport:
    """The support table of TensorRT ``trt``.

    Raises:
        GraphError: unknown version; lists the known ones.
    """
    try:
        return _SUPPORT[str(trt)]
    except KeyError:
        raise GraphError(
            f"no TensorRT support table for version {trt!r}", hint=f"choose one of {', '.join(TRT_VERSIONS)}"
        ) from None
