"""Channel atoms: the bookkeeping under channel groups.

Every channel of every tracked tensor (axis 1 of an NCHW activation, axis 1 of an [N, C]
matrix) is labelled with an *atom* id. An op that creates channels (a Conv) creates fresh
atoms; an op that passes channels through (Relu, BatchNormalization, MaxPool) gives its
output the same atoms; an op that ties two tensors' channels together (a residual Add)
*unites* their atoms; Concat concatenates atom vectors, Slice/Split cut them. Atoms that
are united form a *class*: channels that must be kept or removed together.

An atom can be *pinned* with a reason (it reaches a graph output, a detection-head
Reshape, an op the slimmer does not understand): its class, and the group it belongs to,
is then never pruned. Nothing here knows about scoring or about how an op is sliced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx_graphsurgeon as gs

from edgesdk.graph._util import static_shape

IntArray = np.ndarray
"""1-D int64 array."""


class UnionFind:
    """Union-find over consecutive integer ids (path halving, union by size)."""

    def __init__(self) -> None:
        self._parent: list[int] = []
        self._size: list[int] = []

    def __len__(self) -> int:
        return len(self._parent)

    def add(self, count: int) -> IntArray:
        """``count`` new singleton ids."""
        start = len(self._parent)
        self._parent.extend(range(start, start + count))
        self._size.extend([1] * count)
        return np.arange(start, start + count, dtype=np.int64)

    def find(self, item: int) -> int:
        """The representative of ``item``'s set."""
        parent = self._parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        """Merge the sets of ``a`` and ``b``."""
        ra, rb = self.find(int(a)), self.find(int(b))
        if ra == rb:
            return
        if self._size[ra] < self._size[rb]:
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._size[ra] += self._size[rb]

    def roots(self) -> IntArray:
        """The representative of every id, as an array indexed by id."""
        return np.array([self.find(i) for i in range(len(self._parent))], dtype=np.int64)


@dataclass
class ChannelState:
    """Atoms per tensor while the coupling rules walk the graph.

    Attributes:
        atoms: tensor name -> atom id per channel (axis 1).
        origin: per atom, the key of what created it: a node name (Conv/Gemm sources),
            ``input:<name>`` for graph inputs, ``opaque:<node>`` for outputs of ops the
            slimmer cannot see through.
        pins: atom -> reasons it must never be removed.
        uf: the union-find over atoms.
        segments: channel ranges cut out by a Split/Slice on the channel axis; each must
            keep at least one channel (an empty tensor is not a valid ONNX value).
        opset: the graph's default-domain opset (some defaults depend on it).
    """

    atoms: dict[str, IntArray] = field(default_factory=dict)
    origin: list[str] = field(default_factory=list)
    pins: dict[int, list[str]] = field(default_factory=dict)
    uf: UnionFind = field(default_factory=UnionFind)
    segments: list[IntArray] = field(default_factory=list)
    opset: int = 13

    def fresh(self, tensor: gs.Tensor, count: int, origin: str, pin: str | None = None) -> IntArray:
        """Give ``tensor`` ``count`` new atoms created by ``origin`` (pinned when ``pin`` is set)."""
        ids = self.new(count, origin, pin)
        self.atoms[tensor.name] = ids
        return ids

    def new(self, count: int, origin: str, pin: str | None = None) -> IntArray:
        """``count`` new atoms created by ``origin`` that no tensor carries yet."""
        ids = self.uf.add(count)
        self.origin.extend([origin] * count)
        if pin is not None:
            self.pin(ids, pin)
        return ids

    def set(self, tensor: gs.Tensor, ids: IntArray) -> None:
        """``tensor`` carries the channels ``ids`` (pass-through, concatenation, slice)."""
        self.atoms[tensor.name] = np.asarray(ids, dtype=np.int64)

    def get(self, tensor: gs.Tensor) -> IntArray | None:
        """The atoms of ``tensor`` (None: not tracked, e.g. a constant or a shape tensor)."""
        return self.atoms.get(tensor.name)

    def unite(self, a: IntArray, b: IntArray) -> None:
        """Channel ``i`` of ``a`` and channel ``i`` of ``b`` share one decision (equal lengths)."""
        for x, y in zip(a.tolist(), b.tolist()):
            self.uf.union(x, y)

    def pin(self, ids: IntArray | None, reason: str) -> None:
        """Never remove the channels ``ids`` (a no-op for None)."""
        if ids is None:
            return
        for atom in np.unique(ids).tolist():
            reasons = self.pins.setdefault(int(atom), [])
            if reason not in reasons:
                reasons.append(reason)

    def pin_tensor(self, tensor: gs.Tensor, reason: str) -> None:
        """Pin every channel of ``tensor`` (if tracked)."""
        self.pin(self.get(tensor), reason)


def channels(tensor: gs.Tensor) -> int | None:
    """The size of axis 1 of a rank >= 2 tensor with a static channel dimension, else None."""
    shape = tensor.shape
    if shape is None or len(shape) < 2:
        return None
    dim = shape[1]
    if isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim >= 0:
        return int(dim)
    return None


def rank(tensor: gs.Tensor) -> int | None:
    """The tensor's rank if known."""
    return None if tensor.shape is None else len(tensor.shape)


def spatial_size(tensor: gs.Tensor) -> int | None:
    """Product of the dimensions after the channel axis (1 for [N, C]); None if not static."""
    shape = static_shape(tensor)
    if shape is None or len(shape) < 2:
        return None
    return int(np.prod(shape[2:], dtype=np.int64))
