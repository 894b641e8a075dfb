"""The layer table: one row per mapped layer, every shape as a 1-D integer array."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

KINDS = ("conv", "linear", "lowrank")

# Integer columns of the table, in order. ``rank_channels > 0`` marks a low-rank pair.
INT_COLUMNS = (
    "height",
    "width",
    "kernel_h",
    "kernel_w",
    "stride_h",
    "stride_w",
    "padding_h",
    "padding_w",
    "in_channels",
    "out_channels",
    "groups",
    "rank_channels",
    "l_groups",
    "in_kept",
    "out_kept",
    "nonzero_weights",
)


@dataclass
class LayerSpec:
    """One layer as the extractor (or a user) describes it.

    A conv is ``in_channels -> out_channels`` with ``groups``. A low-rank pair has
    ``rank_channels = g*k > 0``: ``R`` is the KxK conv ``in_channels -> rank_channels`` with
    ``groups`` and ``L`` the 1x1 conv ``rank_channels -> out_channels`` with ``l_groups``.
    Pruning: ``in_kept``/``out_kept`` are the channels left after whole-channel removal
    (``groups`` times the largest per-group count), ``patterns`` the kept kernel positions per
    input channel (union over the group's output channels), shape ``(groups, in/groups, K_h, K_w)``.
    """

    name: str
    height: int
    width: int
    kernel_h: int
    kernel_w: int
    in_channels: int
    out_channels: int
    stride_h: int = 1
    stride_w: int = 1
    padding_h: int = 0
    padding_w: int = 0
    groups: int = 1
    kind: str = "conv"
    rank_channels: int = 0
    l_groups: int = 1
    in_kept: int | None = None
    out_kept: int | None = None
    nonzero_weights: int | None = None
    patterns: npt.NDArray[np.bool_] | None = None


@dataclass(frozen=True)
class LayerTable:
    """Layer shapes as parallel 1-D arrays (see :class:`LayerSpec` for the meaning of columns)."""

    name: tuple[str, ...]
    kind: tuple[str, ...]
    height: IntArray
    width: IntArray
    kernel_h: IntArray
    kernel_w: IntArray
    stride_h: IntArray
    stride_w: IntArray
    padding_h: IntArray
    padding_w: IntArray
    in_channels: IntArray
    out_channels: IntArray
    groups: IntArray
    rank_channels: IntArray
    l_groups: IntArray
    in_kept: IntArray
    out_kept: IntArray
    nonzero_weights: IntArray
    patterns: tuple[npt.NDArray[np.bool_] | None, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.patterns:
            object.__setattr__(self, "patterns", (None,) * len(self.name))
        n = len(self.name)
        if len(self.kind) != n or len(self.patterns) != n:
            raise ValueError("LayerTable: name, kind and patterns must have one entry per layer")
        for column in INT_COLUMNS:
            values = np.asarray(getattr(self, column), dtype=np.int64).reshape(-1)
            if values.shape != (n,):
                raise ValueError(f"LayerTable.{column}: expected {n} entries, got {values.size}")
            values.setflags(write=False)
            object.__setattr__(self, column, values)
        _validate(self)

    def __len__(self) -> int:
        return len(self.name)

    @classmethod
    def from_shapes(
        cls,
        height: Any,
        width: Any = None,
        kernel: Any = 3,
        in_channels: Any = 1,
        out_channels: Any = 1,
        stride: Any = 1,
        padding: Any = 0,
        groups: Any = 1,
        *,
        kernel_w: Any = None,
        names: Sequence[str] | None = None,
    ) -> LayerTable:
        """Build a table of plain convolutions; scalars broadcast, ``width=None`` means square."""
        columns = {
            "height": height,
            "width": height if width is None else width,
            "kernel_h": kernel,
            "kernel_w": kernel if kernel_w is None else kernel_w,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "stride": stride,
            "padding": padding,
            "groups": groups,
        }
        arrays = [np.atleast_1d(np.asarray(v)) for v in columns.values()]
        try:
            shaped = np.broadcast_arrays(*arrays)
        except ValueError as error:
            sizes = {k: a.size for k, a in zip(columns, arrays, strict=True)}
            raise ValueError(
                f"LayerTable.from_shapes: lengths do not broadcast: {sizes}"
            ) from error
        values = dict(
            zip(columns, (_as_int(k, a) for k, a in zip(columns, shaped, strict=True)), strict=True)
        )
        n = values["height"].size
        if names is None:
            names = [f"layer{i}" for i in range(n)]
        if len(names) != n:
            raise ValueError(f"LayerTable.from_shapes: {len(names)} names for {n} layers")
        specs = [
            LayerSpec(
                name=str(names[i]),
                height=int(values["height"][i]),
                width=int(values["width"][i]),
                kernel_h=int(values["kernel_h"][i]),
                kernel_w=int(values["kernel_w"][i]),
                in_channels=int(values["in_channels"][i]),
                out_channels=int(values["out_channels"][i]),
                stride_h=int(values["stride"][i]),
                stride_w=int(values["stride"][i]),
                padding_h=int(values["padding"][i]),
                padding_w=int(values["padding"][i]),
                groups=int(values["groups"][i]),
            )
            for i in range(n)
        ]
        return cls.from_specs(specs)

    @classmethod
    def from_specs(cls, specs: Sequence[LayerSpec]) -> LayerTable:
        """Build a table from per-layer descriptions (fills the pruning defaults)."""
        columns: dict[str, list[int]] = {c: [] for c in INT_COLUMNS}
        for spec in specs:
            if spec.kind not in KINDS:
                raise ValueError(f"layer {spec.name!r}: kind={spec.kind!r}, valid: {KINDS}")
            row = {f.name: getattr(spec, f.name) for f in fields(spec)}
            if row["in_kept"] is None:
                row["in_kept"] = spec.in_channels
            if row["out_kept"] is None:
                row["out_kept"] = spec.out_channels
            if row["nonzero_weights"] is None:
                row["nonzero_weights"] = _dense_weights(spec)
            for column in INT_COLUMNS:
                columns[column].append(int(row[column]))
        return cls(
            name=tuple(s.name for s in specs),
            kind=tuple(s.kind for s in specs),
            patterns=tuple(s.patterns for s in specs),
            **{c: np.asarray(v, dtype=np.int64) for c, v in columns.items()},
        )

    @property
    def is_pair(self) -> npt.NDArray[np.bool_]:
        """True for low-rank pairs."""
        return self.rank_channels > 0

    @property
    def is_pruned(self) -> npt.NDArray[np.bool_]:
        """True where whole channels are removed or kernel patterns are present."""
        has_pattern = np.array([p is not None for p in self.patterns], dtype=bool)
        return (self.in_kept < self.in_channels) | (self.out_kept < self.out_channels) | has_pattern

    def dense(self) -> LayerTable:
        """The uncompressed model: pairs become their original conv, pruning is dropped."""
        pair = self.is_pair
        groups = np.where(pair, 1, self.groups)
        dense_weights = (
            self.in_channels // groups * self.kernel_h * self.kernel_w * self.out_channels
        )
        return replace(
            self,
            kind=tuple("conv" if p else k for p, k in zip(pair, self.kind, strict=True)),
            groups=groups,
            rank_channels=np.zeros(len(self), dtype=np.int64),
            l_groups=np.ones(len(self), dtype=np.int64),
            in_kept=self.in_channels,
            out_kept=self.out_channels,
            nonzero_weights=dense_weights,
            patterns=(None,) * len(self),
        )

    def select(self, index: npt.ArrayLike) -> LayerTable:
        """A table with the rows at ``index`` (integer or boolean; an empty list selects none)."""
        wanted = np.asarray(index)
        if wanted.size == 0:  # np.asarray([]) is float, which numpy refuses as an index
            wanted = wanted.astype(np.int64)
        idx = np.arange(len(self))[wanted]
        values: dict[str, Any] = {c: getattr(self, c)[idx] for c in INT_COLUMNS}
        return LayerTable(
            name=tuple(self.name[i] for i in idx),
            kind=tuple(self.kind[i] for i in idx),
            patterns=tuple(self.patterns[i] for i in idx),
            **values,
        )


def _as_int(name: str, values: npt.NDArray[Any]) -> IntArray:
    if not np.all(np.equal(np.mod(values, 1), 0)):
        raise ValueError(f"LayerTable.from_shapes: {name} must be integers, got {values.tolist()}")
    return values.astype(np.int64)


def _dense_weights(spec: LayerSpec) -> int:
    kernel = spec.kernel_h * spec.kernel_w
    if spec.rank_channels > 0:
        r_weights = spec.in_channels // max(spec.groups, 1) * kernel * spec.rank_channels
        l_weights = spec.rank_channels // max(spec.l_groups, 1) * spec.out_channels
        return r_weights + l_weights
    return spec.in_channels // max(spec.groups, 1) * kernel * spec.out_channels


def _fail(table: LayerTable, bad: npt.NDArray[np.bool_], message: str, column: str) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = int(getattr(table, column)[i])
        raise ValueError(f"layer {table.name[i]!r}: {column}={value} {message}")


def _validate(table: LayerTable) -> None:
    """Reject shapes no mapping can handle; the message names the layer and the value."""
    for column in ("height", "width", "kernel_h", "kernel_w", "stride_h", "stride_w"):
        _fail(table, getattr(table, column) < 1, "must be >= 1", column)
    for column in ("in_channels", "out_channels", "groups", "l_groups"):
        _fail(table, getattr(table, column) < 1, "must be >= 1", column)
    for column in ("padding_h", "padding_w", "rank_channels", "in_kept", "out_kept"):
        _fail(table, getattr(table, column) < 0, "must be >= 0", column)
    pair = table.is_pair
    _fail(table, table.in_channels % table.groups != 0, "does not divide in_channels", "groups")
    mapped_out = np.where(pair, table.rank_channels, table.out_channels)
    _fail(table, mapped_out % table.groups != 0, "does not divide the output channels", "groups")
    _fail(
        table,
        pair & (table.rank_channels % table.l_groups != 0),
        "does not divide rank_channels",
        "l_groups",
    )
    _fail(
        table,
        pair & (table.out_channels % table.l_groups != 0),
        "does not divide out_channels",
        "l_groups",
    )
    _fail(table, table.in_kept > table.in_channels, "exceeds in_channels", "in_kept")
    _fail(table, table.out_kept > table.out_channels, "exceeds out_channels", "out_kept")
    _fail(table, table.in_kept % table.groups != 0, "is not a multiple of groups", "in_kept")
    _fail(
        table,
        ~pair & (table.out_kept % table.groups != 0),
        "is not a multiple of groups",
        "out_kept",
    )
    padded_h = table.height + 2 * table.padding_h
    padded_w = table.width + 2 * table.padding_w
    _fail(table, padded_h < table.kernel_h, "(+2*padding) is smaller than the kernel", "height")
    _fail(table, padded_w < table.kernel_w, "(+2*padding) is smaller than the kernel", "width")
    for i, pattern in enumerate(table.patterns):
        if pattern is None:
            continue
        expected = (
            int(table.groups[i]),
            int(table.in_channels[i] // table.groups[i]),
            int(table.kernel_h[i]),
            int(table.kernel_w[i]),
        )
        if pattern.shape != expected:
            raise ValueError(
                f"layer {table.name[i]!r}: kernel pattern shape {pattern.shape}, expected {expected}"
            )
