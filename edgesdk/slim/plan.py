"""The slimming plan: groups plus the channels each keeps, serialisable, made before anything is cut.

``make_plan`` scores every prunable group with the chosen criterion, searches the kept
counts that remove the asked fraction of FLOPs (:mod:`edgesdk.slim.schedule`) and returns
a :class:`SlimPlan`. The dry run, the report and ``apply_plan`` all consume this same
object; its JSON (``SlimPlan.to_json``) can be reviewed or edited and applied later
(``apply_plan`` re-derives the groups from the model and refuses a plan made for another).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from edgesdk.errors import ArtifactNotFound, PruneError
from edgesdk.graph.io import model_bytes, to_graph
from edgesdk.slim.cost import cost_model
from edgesdk.slim.criteria import ScoreContext, Unscorable, criterion, normalize
from edgesdk.slim.groups import ChannelAnalysis, ChannelGroup, analyze, prepare
from edgesdk.slim.latency import cached_latency_model
from edgesdk.slim.schedule import FlopsFn, Scope, allocate

PLAN_FORMAT = "edgesdk.slim-plan/1"
Target = Literal["flops", "latency"]


@dataclass
class GroupPlan:
    """One channel group in the plan.

    Attributes:
        id: the group id (:class:`~edgesdk.slim.groups.ChannelGroup`).
        size: group channels before slimming.
        sources: nodes that create the channels.
        consumers: Conv/Gemm nodes that read them as input channels.
        kept: group channels kept (ascending); all of them when nothing is removed.
        reasons: why the group is kept whole (pinned or not scorable); empty otherwise.
        scores: the criterion's raw scores per channel (None for unscored groups).
    """

    id: int
    size: int
    sources: list[str]
    consumers: list[str]
    kept: list[int]
    reasons: list[str] = field(default_factory=list)
    scores: list[float] | None = None

    @property
    def removed(self) -> int:
        """Channels removed."""
        return self.size - len(self.kept)


@dataclass
class SlimPlan:
    """What to cut, and what it is predicted to save.

    Attributes:
        method / scope / ratio / round_to: how the plan was made (ratio = FLOPs fraction asked).
        model_sha256: sha256 of the serialized model the plan was made for.
        flops_before / flops_after: FLOPs (2 x MACs of Conv/Gemm) before and as planned.
        groups: every group that has a source layer, prunable or not.
        reconstruct: apply least-squares reconstruction of the consumers (data-driven methods).
        notes: anything the reader of the plan should know.
        blocks: residual branches (``sss``): per block its Add, shortcut, branch nodes,
            FLOPs, score and whether it is removed.
        target: what ``ratio`` removes: ``flops``, or ``latency`` (predicted onnxruntime CPU ms,
            :mod:`edgesdk.slim.latency`; the measured damage is then weighed per ms saved).
        predicted_ms: the latency model's [before, after] (only when the model was calibrated).
    """

    method: str
    scope: str
    ratio: float
    round_to: int
    model_sha256: str
    flops_before: int
    flops_after: int
    groups: list[GroupPlan]
    reconstruct: bool = False
    notes: list[str] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    target: str = "flops"
    predicted_ms: list[float] = field(default_factory=list)

    @property
    def removed_flops(self) -> float:
        """Planned fraction of FLOPs removed."""
        return 1.0 - self.flops_after / self.flops_before if self.flops_before else 0.0

    def kept(self) -> dict[int, list[int]]:
        """Group id -> kept channels, for groups that lose at least one channel."""
        return {g.id: g.kept for g in self.groups if g.removed}

    def to_json(self, *, scores: bool = False) -> dict[str, Any]:
        """Plain data (``format`` first); per-channel scores only when ``scores``."""
        data = asdict(self)
        if not scores:
            for group in data["groups"]:
                group.pop("scores")
        for group in data["groups"]:
            group["removed"] = group["size"] - len(group["kept"])
        return {"format": PLAN_FORMAT, "removed_flops": round(self.removed_flops, 4), **data}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SlimPlan:
        """Read :meth:`to_json` output back.

        Raises:
            PruneError: not a plan of this format.
        """
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise PruneError(f"not an edgesdk slimming plan (expected format {PLAN_FORMAT!r})")
        fields = {k: v for k, v in data.items() if k not in ("format", "removed_flops")}
        try:
            groups = [
                GroupPlan(**{k: v for k, v in g.items() if k != "removed"}) for g in fields.pop("groups")
            ]
            return cls(groups=groups, **fields)
        except (TypeError, KeyError) as err:
            raise PruneError(f"malformed slimming plan: {err}") from err

    def save(self, path: Path) -> Path:
        """Write the plan as JSON (with scores)."""
        path.write_text(json.dumps(self.to_json(scores=True), indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> SlimPlan:
        """Read a plan written by :meth:`save`.

        Raises:
            ArtifactNotFound: no such file. PruneError: not a plan.
        """
        if not path.is_file():
            raise ArtifactNotFound(f"plan file {path} does not exist")
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as err:
            raise PruneError(f"{path} is not JSON: {err}") from err


def model_sha256(model: onnx.ModelProto) -> str:
    """sha256 of the serialized model (what a plan is bound to)."""
    return hashlib.sha256(model_bytes(model)).hexdigest()


def _score(
    analysis: ChannelAnalysis, ctx: ScoreContext, method: str
) -> tuple[dict[int, np.ndarray], dict[int, str]]:
    info = criterion(method)
    scores: dict[int, np.ndarray] = {}
    unscorable: dict[int, str] = {}
    groups = analysis.prunable()
    report = ctx.extras.get("progress")  # (groups scored, groups): thinet/lasso trials take minutes
    for done, group in enumerate(groups):
        if report is not None:
            report(done, len(groups))
        try:
            values = np.asarray(info.fn(group, ctx), dtype=np.float64)
        except Unscorable as why:
            unscorable[group.id] = str(why)
            continue
        if values.shape != (group.size,) or not np.all(np.isfinite(values)):
            raise PruneError(
                f"criterion {method!r} returned bad scores for group {group.id}: shape {values.shape}"
            )
        scores[group.id] = values
    return scores, unscorable


def _group_plan(
    group: ChannelGroup, kept: np.ndarray | None, why: str | None, raw: np.ndarray | None
) -> GroupPlan:
    reasons = list(group.reasons) or ([why] if why else []) or ([] if group.size > 1 else ["one channel"])
    return GroupPlan(
        id=group.id,
        size=group.size,
        sources=group.sources,
        consumers=list(dict.fromkeys(m.node for m in group.role("consumer"))),
        kept=(kept if kept is not None else np.arange(group.size)).tolist(),
        reasons=reasons if kept is None else [],
        scores=None if raw is None else [round(float(v), 6) for v in raw],
    )


def make_plan(
    model: onnx.ModelProto,
    *,
    method: str = "l1",
    ratio: float = 0.3,
    scope: Scope = "global",
    round_to: int = 8,
    seed: int = 0,
    extras: dict[str, Any] | None = None,
    target: Target = "flops",
) -> SlimPlan:
    """Plan which channels to remove so that ``ratio`` of the FLOPs go.

    Args:
        model: the (fixed, shape-inferable) model; not modified.
        method: a registered criterion (``l1``, ``bn``, ``random``, ...).
        ratio: fraction of FLOPs to remove, in [0, 1).
        scope: ``global`` threshold or ``uniform`` per group.
        round_to: kept channel counts are multiples of this (unless a group is smaller).
        seed: for sampling criteria.
        extras: per-method inputs (activation samples for data-driven criteria). Criteria cache
            what they measured in it (keys starting with ``_``), so passing the same dict to
            plans of the same model at other ratios reuses the measurements.
            ``extras["budget"] = "flops"`` keeps a FLOPs ratio under ``target="latency"``;
            ``extras["progress"]``, if set, is called ``(groups scored, groups)`` while scoring.
        target: ``flops``: ``ratio`` of the FLOPs go, thinet/lasso weigh damage per FLOP;
            ``latency``: ``ratio`` of the predicted onnxruntime CPU latency goes and they weigh
            damage per predicted ms (:mod:`edgesdk.slim.latency`, calibrated by one profile).

    Raises:
        PruneError: unknown method, nothing prunable/scorable, or the ratio is out of reach.
    """
    graph = prepare(to_graph(model))
    analysis = analyze(graph)
    context = extras if extras is not None else {}
    context["round_to"] = round_to
    context["target"] = target
    ctx = ScoreContext(graph, analysis, seed, context)
    if criterion(method).kind == "block":
        return _block_plan(model, graph, analysis, ctx, method, ratio, scope, round_to)
    scores, unscorable = _score(analysis, ctx, method)
    if not scores:
        why = next(iter(unscorable.values()), "no channel group can be pruned (all are pinned)")
        raise PruneError(
            f"nothing to slim with method {method!r}: {why}",
            hint="--dry-run --json shows each group's reason; bn needs BatchNormalization kept "
            "(darknet: model.fuse_bn: false; YOLOv5: --model yolov5n_bn_unfused.onnx)",
        )
    info = criterion(method)
    costs = cost_model(graph, analysis)
    cost_of: FlopsFn = lambda kept: costs.flops(analysis.keep_vector(kept))  # noqa: E731
    if context.get("budget", target) == "latency":
        latency = cached_latency_model(ctx)
        cost_of = lambda kept: latency.ms(analysis.keep_vector(kept))  # noqa: E731
    allocation = allocate(
        {gid: normalize(s, info.normalize) for gid, s in scores.items()},
        cost_of,
        ratio,
        scope=scope,
        round_to=round_to,
        segments={g.id: g.segments for g in analysis.groups if g.segments},
    )
    groups = [
        _group_plan(g, allocation.kept.get(g.id), unscorable.get(g.id), scores.get(g.id))
        for g in analysis.groups
        if g.sources
    ]
    return SlimPlan(
        method=method,
        scope=scope,
        ratio=ratio,
        round_to=round_to,
        model_sha256=model_sha256(model),
        flops_before=costs.flops(),
        flops_after=costs.flops(analysis.keep_vector(allocation.kept)),
        groups=groups,
        reconstruct=bool(ctx.extras.get("reconstruct", False)),
        notes=[f"{len(unscorable)} group(s) not scorable by {method}"] if unscorable else [],
        target=target,
        predicted_ms=_predicted(ctx, allocation.kept),
    )


def _predicted(ctx: ScoreContext, kept: dict[int, np.ndarray]) -> list[float]:
    model = ctx.extras.get("_latency")
    if model is None:
        return []
    return [round(model.ms(), 3), round(model.ms(ctx.analysis.keep_vector(kept)), 3)]


def _block_plan(
    model: onnx.ModelProto,
    graph: gs.Graph,
    analysis: ChannelAnalysis,
    ctx: ScoreContext,
    method: str,
    ratio: float,
    scope: Scope,
    round_to: int,
) -> SlimPlan:
    """A plan that removes whole residual branches (``sss``); no channel is cut."""
    from edgesdk.slim.blocks import block_plan_entries, choose_blocks, find_blocks

    blocks = find_blocks(graph)
    if not blocks:
        raise PruneError(
            f"{method} found no residual block (x + F(x)) in this model",
            hint="use a channel method: l1, bn, thinet or lasso",
        )
    scores = np.asarray(criterion(method).fn(blocks, ctx), dtype=np.float64)
    total = cost_model(graph, analysis).flops()
    chosen, removed = choose_blocks(blocks, scores, total, ratio)
    return SlimPlan(
        method=method,
        scope=scope,
        ratio=ratio,
        round_to=round_to,
        model_sha256=model_sha256(model),
        flops_before=total,
        flops_after=total - removed,
        groups=[_group_plan(g, None, None, None) for g in analysis.groups if g.sources],
        notes=[f"{len(chosen)} of {len(blocks)} residual branch(es) removed"],
        blocks=block_plan_entries(blocks, scores, chosen),
    )
