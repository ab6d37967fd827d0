"""The graph I/O boundary: ``onnx.ModelProto`` <-> onnx-graphsurgeon ``Graph``.

This is the only module (besides the importers) that reads or builds ONNX protos
(STYLE §1). Everything else works on ``gs.Graph``.

Round trip: :func:`to_graph` keeps initializers that old (IR < 4 style) exporters also list
as graph inputs *as graph inputs* (GS's importer would silently drop them), so the
``drop-initializer-inputs`` fix and the lint can see and report them. :func:`to_model`
keeps the opset imports, IR version and ``metadata_props`` of the model it came from.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from google.protobuf.message import DecodeError

from edgesdk.errors import ArtifactNotFound, GraphError, ModelFormatError

log = logging.getLogger(__name__)

# Lowest IR version that can hold each default-domain opset (onnx/onnx docs/Versioning.md).
_MIN_IR_FOR_OPSET = [(21, 10), (19, 9), (15, 8), (13, 7), (12, 7), (11, 6), (10, 5), (9, 4), (1, 3)]


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Read an ONNX file (external data beside it is loaded too).

    Raises:
        ArtifactNotFound: the file does not exist.
        ModelFormatError: the file is not a readable ONNX model (corrupt, truncated, not ONNX).
    """
    file = Path(path)
    if not file.is_file():
        raise ArtifactNotFound(f"model file {file} does not exist")
    try:
        model = onnx.load(str(file))
    except (DecodeError, RuntimeWarning, ValueError, OSError) as err:
        raise ModelFormatError(
            f"{file} is not a readable ONNX model ({type(err).__name__}: {err})",
            hint="re-download or re-export the model; `edgesdk inspect` only reads .onnx files",
        ) from err
    _check_plausible(model, str(file))
    return model


def model_from_bytes(data: bytes, *, source: str = "<bytes>") -> onnx.ModelProto:
    """Parse a serialized model.

    Raises:
        ModelFormatError: ``data`` is not a serialized ONNX model.
    """
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError as err:
        raise ModelFormatError(f"{source} is not a serialized ONNX model ({err})") from err
    _check_plausible(model, source)
    return model


def _check_plausible(model: onnx.ModelProto, source: str) -> None:
    # Protobuf accepts many byte strings as a (mostly empty) message; a real model has an IR
    # version, an opset and at least one output.
    if model.ir_version <= 0 or not model.opset_import or not model.graph.output:
        raise ModelFormatError(
            f"{source} does not look like an ONNX model (no IR version, opset or graph outputs)",
            hint="re-download or re-export the model",
        )


def model_bytes(model: onnx.ModelProto) -> bytes:
    """The serialized model (deterministic for equal protos)."""
    return model.SerializeToString(deterministic=True)


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` atomically (temp file in the same folder, then rename).

    A reader never sees a half-written file; a failed write leaves the old file in place.

    Returns:
        The path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(model_bytes(model))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def set_metadata(model: onnx.ModelProto, metadata: Mapping[str, str]) -> onnx.ModelProto:
    """A copy of ``model`` with ``metadata`` merged into its ``metadata_props`` (keys sorted).

    Existing keys keep their position and get the new value; new keys are appended in
    sorted order, so the same inputs give the same bytes.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    existing = {prop.key: prop for prop in out.metadata_props}
    for key in sorted(metadata):
        value = str(metadata[key])
        if key in existing:
            existing[key].value = value
        else:
            out.metadata_props.add(key=key, value=value)
    return out


def get_metadata(model: onnx.ModelProto) -> dict[str, str]:
    """The model's ``metadata_props`` as a dict."""
    return {prop.key: prop.value for prop in model.metadata_props}


def opset_of(model: onnx.ModelProto) -> int:
    """The default-domain (ai.onnx) opset version of ``model``."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def to_graph(model: onnx.ModelProto) -> gs.Graph:
    """Import ``model`` (not modified) as an onnx-graphsurgeon Graph.

    Initializers that the model also lists as graph inputs stay graph inputs (as
    ``gs.Constant``), in the model's input order.

    Raises:
        ModelFormatError: GS cannot import the model.
    """
    private = onnx.ModelProto()
    private.CopyFrom(model)  # GS's importer writes into the proto (names Constant-node tensors)
    try:
        graph = gs.import_onnx(private)
    except Exception as err:  # GS raises plain exceptions for malformed protos
        raise ModelFormatError(f"cannot import the ONNX graph: {type(err).__name__}: {err}") from err
    init_names = {init.name for init in model.graph.initializer}
    if any(inp.name in init_names for inp in model.graph.input):
        tensors = graph.tensors()
        inputs: list[gs.Tensor] = []
        for inp in model.graph.input:
            tensor = tensors.get(inp.name)
            if tensor is None and inp.name in init_names:
                init = next(i for i in model.graph.initializer if i.name == inp.name)
                tensor = gs.Constant(inp.name, onnx.numpy_helper.to_array(init))
            if tensor is not None:
                inputs.append(tensor)
        graph.inputs = inputs
    return graph


def _min_ir_version(opset: int) -> int:
    for min_opset, ir in _MIN_IR_FOR_OPSET:
        if opset >= min_opset:
            return ir
    return 3


def to_model(graph: gs.Graph, *, like: onnx.ModelProto | None = None) -> onnx.ModelProto:
    """Export ``graph`` as an ``onnx.ModelProto``.

    Args:
        graph: the graph (not modified).
        like: the model the graph came from. Its opset imports (the default domain takes
            ``graph.opset``, which a fix may have raised), IR version (raised if the opset needs
            it), producer and ``metadata_props`` are kept.

    Raises:
        GraphError: the graph cannot be exported (e.g. an input/output without a dtype).
    """
    try:
        model = gs.export_onnx(graph, do_type_check=False)
    except Exception as err:
        raise GraphError(f"cannot export the graph to ONNX: {type(err).__name__}: {err}") from err
    if like is not None:
        _copy_model_properties(model, like, int(graph.opset))
    else:
        model.ir_version = max(int(model.ir_version or 0), _min_ir_version(int(graph.opset)))
    return model


def _copy_model_properties(model: onnx.ModelProto, like: onnx.ModelProto, opset: int) -> None:
    used = [(entry.domain, int(entry.version)) for entry in model.opset_import]
    del model.opset_import[:]
    seen: set[str] = set()
    for entry in like.opset_import:  # verbatim (field presence included), default domain updated
        copy = model.opset_import.add()
        copy.CopyFrom(entry)
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        if domain == "":
            copy.version = opset
        seen.add(domain)
    for domain, version in used:  # domains a fix introduced (e.g. a plugin node's)
        if domain not in seen:
            model.opset_import.add(domain=domain, version=version)
            seen.add(domain)
    model.ir_version = max(int(like.ir_version), int(model.ir_version or 0), _min_ir_version(opset))
    model.producer_name = like.producer_name
    model.producer_version = like.producer_version
    model.domain = like.domain
    model.model_version = like.model_version
    model.doc_string = like.doc_string
    del model.metadata_props[:]
    for prop in like.metadata_props:
        model.metadata_props.add(key=prop.key, value=prop.value)


# --------------------------------------------------------------------------- shapes


def _dims(value_info: onnx.ValueInfoProto) -> list[int | str | None] | None:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and not dim.dim_param.startswith("unk__"):
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


def _np_dtype(elem_type: int) -> Any:
    if not elem_type:
        return None
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None


def infer_shapes(graph: gs.Graph, *, overwrite_outputs: bool = True) -> gs.Graph:
    """Run ONNX shape inference (with data propagation) and write shapes/dtypes into ``graph``.

    Intermediate tensors get fresh shapes (stale ones are dropped first, so a pinned input
    propagates); graph outputs get the inferred shape when inference finds one, otherwise
    they keep theirs. Never renames anything, never touches nodes. Edits in place.

    Raises:
        GraphError: ONNX shape inference rejects the graph (names the reason).
    """
    probe = graph.copy()
    probe_inputs = {id(t) for t in probe.inputs}
    for tensor in probe.tensors().values():
        if isinstance(tensor, gs.Variable) and id(tensor) not in probe_inputs:
            tensor.shape = None
    model = gs.export_onnx(probe, do_type_check=False)
    model.ir_version = max(int(model.ir_version or 0), _min_ir_version(int(graph.opset)))
    try:
        inferred = onnx.shape_inference.infer_shapes(
            model, check_type=False, strict_mode=False, data_prop=True
        )
    except Exception as err:
        raise GraphError(
            f"ONNX shape inference failed: {str(err).splitlines()[0]}",
            hint="check the pinned input shape (static-shape) against the model's Reshape constants",
        ) from err
    found: dict[str, tuple[Any, list[int | str | None] | None]] = {}
    for info in [*inferred.graph.value_info, *inferred.graph.output]:
        found[info.name] = (_np_dtype(info.type.tensor_type.elem_type), _dims(info))
    outputs = {t.name for t in graph.outputs}
    inputs = {id(t) for t in graph.inputs}
    for name, tensor in graph.tensors().items():
        if not isinstance(tensor, gs.Variable) or id(tensor) in inputs or name not in found:
            continue
        dtype, dims = found[name]
        if dtype is not None and tensor.dtype is None:
            tensor.dtype = dtype
        if name in outputs and (not overwrite_outputs or dims is None):
            continue
        if dims is not None:
            tensor.shape = dims
    return graph


def output_shapes_by_running(graph: gs.Graph) -> dict[str, list[int]]:
    """Output shapes found by running the graph once on zeros (onnxruntime CPU).

    For when ONNX shape inference cannot see through a shape computation (e.g. Shape→Gather
    →Concat→Reshape). Every real input must have a static shape and a dtype.

    Raises:
        GraphError: an input is not static, or onnxruntime cannot run the graph.
    """
    feed: dict[str, np.ndarray] = {}
    for tensor in graph.inputs:
        if isinstance(tensor, gs.Constant):
            continue
        dims = tensor.shape
        if tensor.dtype is None or dims is None or not all(isinstance(d, int) and d >= 0 for d in dims):
            raise GraphError(f"input {tensor.name!r} has no static shape/dtype ({dims}, {tensor.dtype})")
        feed[tensor.name] = np.zeros(dims, dtype=np.dtype(tensor.dtype))
    outputs = run_onnxruntime(to_model(graph), feed)
    return {name: list(value.shape) for name, value in outputs.items()}


def convert_opset(graph: gs.Graph, target: int) -> gs.Graph:
    """A new Graph converted to default-domain opset ``target`` with ONNX's version converter.

    Initializer inputs are dropped first (the converter rejects them at IR >= 4).

    Raises:
        GraphError: the converter cannot convert some node.
    """
    from onnx import version_converter

    probe = graph.copy()
    probe.inputs = [t for t in probe.inputs if not isinstance(t, gs.Constant)]
    model = to_model(probe)
    try:
        converted = version_converter.convert_version(model, int(target))
    except Exception as err:
        raise GraphError(f"cannot convert the graph from opset {graph.opset} to {target}: {err}") from err
    converted.ir_version = max(int(converted.ir_version), _min_ir_version(int(target)))
    return gs.import_onnx(converted)


def onnxruntime_runner(
    model: onnx.ModelProto, *, threads: int | None = None, spinning: bool | None = None
) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
    """Load ``model`` into an onnxruntime CPU session once; the result runs it on a feed.

    The runner returns every output by name; feed entries that are not model inputs are
    ignored. It may be called from several threads at once (onnxruntime sessions allow it).

    Args:
        model: the model.
        threads: intra-op threads (None: onnxruntime's default, one per physical core).
        spinning: let idle intra-op threads spin-wait (None: onnxruntime's default, yes);
            False when other work runs beside the session.

    Raises:
        MissingDependencyError: onnxruntime is not installed.
        GraphError: onnxruntime cannot load the model (or, when run, cannot run it).
    """
    from edgesdk._lazy import require

    ort = require("onnxruntime", feature="running ONNX models on the host", hint="pip install onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # no "initializer appears in graph inputs" chatter
    if threads:
        options.intra_op_num_threads = threads
    if spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    try:
        session = ort.InferenceSession(model_bytes(model), options, providers=["CPUExecutionProvider"])
    except Exception as err:
        raise GraphError(f"onnxruntime cannot load the model: {str(err).splitlines()[0]}") from err
    names = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]

    def run(feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in names if n not in feed]
        if missing:
            raise GraphError(f"no input data for model input(s) {missing}; the feed has {sorted(feed)}")
        try:
            values = session.run(outputs, {n: feed[n] for n in names})
        except Exception as err:
            raise GraphError(f"onnxruntime cannot run the model: {str(err).splitlines()[0]}") from err
        return dict(zip(outputs, values))

    return run


def run_onnxruntime(model: onnx.ModelProto, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``model`` once on onnxruntime (CPU); see :func:`onnxruntime_runner`."""
    return onnxruntime_runner(model)(feed)
