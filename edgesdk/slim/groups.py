"""Channel groups: which channels of an ONNX graph must be removed together.

:func:`analyze` walks a prepared graph (:func:`prepare`) once, applying each op's coupling
rule (:mod:`edgesdk.slim.coupling`), and returns a :class:`ChannelAnalysis`:

* a **group** is every channel created by one or more *source* layers (Conv with
  ``group=1``, Gemm) that are tied together: a residual ``Add`` ties the channels of its
  branches index by index (one decision for all: a channel is kept if the group keeps it),
  a depthwise Conv carries its input channels to its output, BatchNormalization,
  activations, pooling and Resize pass them on, Concat places them at an offset in the
  consumer's input, Split/Slice cut them;
* each group has a channel space ``0..size-1`` (for a plain conv group: the conv's output
  channels, in order) and lists its **members**: the nodes whose tensors carry those
  channels, with their role (``source``, ``consumer`` = a Conv/Gemm reading them as input
  channels, ``through`` = everything else) and the group channel of each position;
* a group is **unprunable** when any of its channels is pinned: it reaches a graph output, a
  detection-head Reshape/Transpose, a graph input, or an op without a coupling rule. The
  reasons are kept, so the plan can show them.

Knows nothing about scores, ratios or how a node is sliced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph._util import quiet_gs, unique_name
from edgesdk.graph.io import infer_shapes
from edgesdk.slim.atoms import ChannelState, IntArray, UnionFind, channels
from edgesdk.slim.coupling import rule_for

Role = Literal["source", "consumer", "through"]

MAX_REASONS = 4
"""How many distinct reasons a group keeps (the first ones, in graph order)."""


@dataclass(frozen=True)
class Member:
    """One tensor of one node that carries channels of a group.

    Attributes:
        node: node name.
        op: its op type.
        tensor: the tensor (an input or output of ``node``).
        role: ``source`` (the node creates these channels), ``consumer`` (a Conv/Gemm reads
            them as input channels) or ``through`` (BN, activation, depthwise conv, Add, ...).
        index: per position of the tensor's channel axis, the group channel it holds, or -1
            when that position belongs to another group (e.g. a Concat's other inputs).
    """

    node: str
    op: str
    tensor: str
    role: Role
    index: IntArray


@dataclass
class ChannelGroup:
    """Channels removed together, and everything that touches them.

    Attributes:
        id: position in :attr:`ChannelAnalysis.groups` (stable for a given graph).
        size: number of group channels.
        members: see :class:`Member`, in graph order.
        reasons: why the group is unprunable (empty: prunable).
        segments: group channels cut out by a channel Split/Slice; each keeps >= 1 channel.
    """

    id: int
    size: int
    members: list[Member] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    segments: list[IntArray] = field(default_factory=list)

    @property
    def prunable(self) -> bool:
        """Whether channels of this group may be removed (more than one, nothing pinned)."""
        return not self.reasons and self.size > 1

    def role(self, role: Role) -> list[Member]:
        """The members with ``role``."""
        return [m for m in self.members if m.role == role]

    @property
    def sources(self) -> list[str]:
        """Names of the source nodes, in graph order."""
        return list(dict.fromkeys(m.node for m in self.role("source")))

    def to_json(self) -> dict[str, Any]:
        """Plain data: id, size, sources, consumers, prunable, reasons."""
        return {
            "id": self.id,
            "size": self.size,
            "sources": self.sources,
            "consumers": list(dict.fromkeys(m.node for m in self.role("consumer"))),
            "prunable": self.prunable,
            "reasons": list(self.reasons),
        }


@dataclass
class ChannelAnalysis:
    """The channel groups of a graph and the group channel of every tracked tensor position.

    Attributes:
        groups: every group (prunable or not), ordered by first appearance in the graph.
        tensor_classes: tensor name -> global channel id per position of axis 1, where the
            global id of group ``g``'s channel ``c`` is ``offsets[g] + c``.
        offsets: start of each group's channels in the global id space.
    """

    groups: list[ChannelGroup]
    tensor_classes: dict[str, IntArray]
    offsets: IntArray

    @property
    def total(self) -> int:
        """Number of global channel ids."""
        return int(self.offsets[-1] + self.groups[-1].size) if self.groups else 0

    def prunable(self) -> list[ChannelGroup]:
        """The groups that may lose channels."""
        return [g for g in self.groups if g.prunable]

    def keep_vector(self, kept: Mapping[int, Sequence[int] | IntArray]) -> np.ndarray:
        """Global keep flags: groups in ``kept`` keep only the listed channels, others keep all."""
        keep = np.ones(self.total, dtype=bool)
        for gid, channels_kept in kept.items():
            start, size = int(self.offsets[gid]), self.groups[gid].size
            keep[start : start + size] = False
            keep[start + np.asarray(channels_kept, dtype=np.int64)] = True
        return keep

    def keep_masks(self, kept: Mapping[int, Sequence[int] | IntArray]) -> dict[str, np.ndarray]:
        """Per tensor, which positions of axis 1 stay (only tensors that lose a channel)."""
        keep = self.keep_vector(kept)
        masks = {}
        for name, ids in self.tensor_classes.items():
            mask = keep[ids]
            if not mask.all():
                masks[name] = mask
        return masks


# --------------------------------------------------------------------------- preparing


def prepare(graph: gs.Graph) -> gs.Graph:
    """Make ``graph`` ready for :func:`analyze` (in place, returns it).

    Gives every unnamed (or duplicate-named) node a unique name (plans refer to nodes by
    name), sorts nodes topologically and infers shapes. Never renames tensors or graph I/O.

    Raises:
        GraphError: shape inference fails.
    """
    seen: set[str] = set()
    with quiet_gs():
        graph.toposort()
    for node in graph.nodes:
        if not node.name or node.name in seen:
            base = f"{node.op}_{node.outputs[0].name}" if node.outputs else node.op
            node.name = unique_name(graph, base)
        seen.add(node.name)
    return infer_shapes(graph)


# --------------------------------------------------------------------------- analysis


def analyze(graph: gs.Graph) -> ChannelAnalysis:
    """The channel groups of a prepared graph (see the module docs). Does not modify it."""
    st = ChannelState(opset=int(graph.opset))
    for tensor in graph.inputs:
        count = channels(tensor)
        if isinstance(tensor, gs.Variable) and count is not None:
            st.fresh(tensor, count, f"input:{tensor.name}", pin=f"graph input {tensor.name!r}")
    for node in graph.nodes:
        rule_for(node.op)(node, st)
        _pin_subgraph_uses(node, st)
    for tensor in graph.outputs:
        st.pin_tensor(tensor, f"feeds graph output {tensor.name!r}")
    return _build(graph, st)


def _pin_subgraph_uses(node: gs.Node, st: ChannelState) -> None:
    """Tensors an If/Loop/Scan body reads from the outer graph keep all their channels."""
    for value in node.attrs.values():
        bodies = value if isinstance(value, list) else [value]
        for body in bodies:
            if isinstance(body, gs.Graph):
                for inner in body.nodes:
                    for tensor in inner.inputs:
                        st.pin_tensor(tensor, f"read inside the subgraph of {node.name!r}")


def _classes(st: ChannelState) -> tuple[IntArray, int, IntArray]:
    """(class per atom, class count, origin component per class)."""
    _, cls = np.unique(st.uf.roots(), return_inverse=True)
    count = int(cls.max()) + 1 if len(cls) else 0
    keys = {key: i for i, key in enumerate(dict.fromkeys(st.origin))}
    origin_ids = [keys[o] for o in st.origin]
    components = UnionFind()
    components.add(len(keys))
    first = np.full(count, -1, dtype=np.int64)
    for atom, c in enumerate(cls.tolist()):
        if first[c] < 0:
            first[c] = origin_ids[atom]
        else:
            components.union(int(first[c]), origin_ids[atom])
    return cls, count, np.array([components.find(int(f)) for f in first], dtype=np.int64)


def _tracked_in_order(graph: gs.Graph, st: ChannelState) -> list[str]:
    names = [t.name for t in graph.inputs if t.name in st.atoms]
    for node in graph.nodes:
        names += [t.name for t in node.outputs if t.name in st.atoms]
    return names + [n for n in st.atoms if n not in set(names)]


def _build(graph: gs.Graph, st: ChannelState) -> ChannelAnalysis:
    cls, count, comp = _classes(st)
    group_of_comp: dict[int, int] = {}
    class_group = np.full(count, -1, dtype=np.int64)
    class_local = np.full(count, -1, dtype=np.int64)
    sizes: list[int] = []
    for name in _tracked_in_order(graph, st):
        for c in cls[st.atoms[name]].tolist():
            if class_group[c] >= 0:
                continue
            gid = group_of_comp.setdefault(int(comp[c]), len(group_of_comp))
            if gid == len(sizes):
                sizes.append(0)
            class_group[c], class_local[c] = gid, sizes[gid]
            sizes[gid] += 1
    offsets = (
        np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)
    )
    groups = [ChannelGroup(gid, size) for gid, size in enumerate(sizes)]
    for atom, reasons in st.pins.items():
        group = groups[class_group[cls[atom]]]
        for reason in reasons:
            if reason not in group.reasons and len(group.reasons) < MAX_REASONS:
                group.reasons.append(reason)
    global_ids = offsets[class_group] + class_local
    tensor_classes = {name: global_ids[cls[ids]] for name, ids in st.atoms.items()}
    _add_members(graph, st, groups, class_group[cls], class_local[cls])
    for segment in st.segments:
        gids, locs = class_group[cls[segment]], class_local[cls[segment]]
        for gid in np.unique(gids).tolist():
            groups[gid].segments.append(np.unique(locs[gids == gid]))
    return ChannelAnalysis(groups, tensor_classes, offsets)


def _role(node: gs.Node, tensor: gs.Tensor, is_output: bool, st: ChannelState, atom: int) -> Role:
    if is_output:
        return "source" if st.origin[atom] == node.name else "through"
    if node.op == "Conv" and int(node.attrs.get("group", 1)) == 1 and tensor is node.inputs[0]:
        return "consumer"
    if node.op == "Gemm" and tensor is node.inputs[0]:
        return "consumer"
    return "through"


def _add_members(
    graph: gs.Graph, st: ChannelState, groups: list[ChannelGroup], atom_group: IntArray, atom_local: IntArray
) -> None:
    for node in graph.nodes:
        io = [(t, False) for t in node.inputs] + [(t, True) for t in node.outputs]
        for tensor, is_output in io:
            ids = st.get(tensor)
            if ids is None or not len(ids):
                continue
            gids, locs = atom_group[ids], atom_local[ids]
            role = _role(node, tensor, is_output, st, int(ids[0]))
            for gid in dict.fromkeys(gids.tolist()):
                index = np.where(gids == gid, locs, -1)
                groups[gid].members.append(Member(node.name, node.op, tensor.name, role, index))


def summarize(analysis: ChannelAnalysis) -> dict[str, Any]:
    """Counts for reports: groups, prunable groups, channels, prunable channels."""
    prunable = analysis.prunable()
    return {
        "groups": len(analysis.groups),
        "prunable_groups": len(prunable),
        "channels": int(sum(g.size for g in analysis.groups)),
        "prunable_channels": int(sum(g.size for g in prunable)),
    }
