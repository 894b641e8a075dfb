"""Plain-loop implementations of the mappings, written from docs/cost-model.md, one layer at a time.

They share no code with ``imcompress.crossbar`` and visit every candidate window, like the
published code; the vectorized estimator must agree with them.
"""

from __future__ import annotations

from dataclasses import dataclass


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Layer:
    height: int
    width: int
    kernel: int
    in_channels: int
    out_channels: int
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class Choice:
    cycles: int
    outputs_h: int  # i
    outputs_w: int  # j
    row_tiles: int
    col_tiles: int


def outputs(layer: Layer, convention: str) -> tuple[int, int, int]:
    """(O_h, O_w, stride) under a convention."""
    if convention == "physical":
        o_h = (layer.height + 2 * layer.padding - layer.kernel) // layer.stride + 1
        o_w = (layer.width + 2 * layer.padding - layer.kernel) // layer.stride + 1
        return o_h, o_w, layer.stride
    return layer.height - layer.kernel + 1, layer.width - layer.kernel + 1, 1


def count(o: int, i: int, convention: str) -> int:
    return o // i if convention == "reference_floor" else cdiv(o, i)


def im2col(layer: Layer, rows: int, cols: int, convention: str) -> Choice:
    o_h, o_w, _ = outputs(layer, convention)
    rt = cdiv(layer.kernel**2 * layer.in_channels, rows)
    ct = cdiv(layer.out_channels, cols)
    return Choice(o_h * o_w * rt * ct, 1, 1, rt, ct)


def sdk(layer: Layer, rows: int, cols: int, convention: str) -> Choice:
    """Square windows that fit im2col's arrays; ties pick the larger; the window never exceeds
    the output (checked with the capped window)."""
    o_h, o_w, s = outputs(layer, convention)
    k, ic, oc = layer.kernel, layer.in_channels, layer.out_channels
    ur, uc = cdiv(k * k * ic, rows), cdiv(oc, cols)
    best = im2col(layer, rows, cols, convention)
    i = 1
    while i < max(o_h, o_w):
        i += 1
        ih, iw = min(i, o_h), min(i, o_w)
        pw_h, pw_w = k + (ih - 1) * s, k + (iw - 1) * s
        if pw_h * pw_w * ic <= rows * ur and ih * iw * oc <= cols * uc:
            cycles = count(o_h, ih, convention) * count(o_w, iw, convention) * ur * uc
            if cycles <= best.cycles:
                best = Choice(cycles, ih, iw, ur, uc)
        else:
            break
    return best


def vwsdk(layer: Layer, rows: int, cols: int, convention: str, search: str) -> Choice:
    """Every (i, j) in the published order; exact minimum or the published FIFO selection."""
    o_h, o_w, s = outputs(layer, convention)
    k, ic, oc = layer.kernel, layer.in_channels, layer.out_channels
    top_h, top_w = (o_h, o_w) if search == "exact" else (o_h - 1, o_w - 1)
    queue: list[Choice] = []
    best: Choice | None = None
    for j in range(1, top_w + 1):
        for i in range(1, top_h + 1):
            pw_h, pw_w = k + (i - 1) * s, k + (j - 1) * s
            ict, oct_ = rows // (pw_h * pw_w), cols // (i * j)
            if ict == 0 or oct_ == 0:
                continue
            rt, ct = cdiv(ic, ict), cdiv(oc, oct_)
            c = Choice(
                count(o_h, i, convention) * count(o_w, j, convention) * rt * ct, i, j, rt, ct
            )
            if search == "exact":
                if best is None or (c.cycles, rt * ct) < (
                    best.cycles,
                    best.row_tiles * best.col_tiles,
                ):
                    best = c
            else:
                if i == 1:
                    queue.append(c)
                if queue[0].cycles > c.cycles:
                    queue.pop(0)
                    queue.append(c)
    if search != "exact":
        best = queue[0] if queue else None
    fallback = im2col(layer, rows, cols, convention)
    if best is None or best.cycles >= fallback.cycles:
        return fallback
    return best


def lowrank_vwsdk_exact(
    layer: Layer, rank: int, rows: int, cols: int, convention: str = "physical"
) -> int:
    """VW-SDK for a low-rank pair (R: KxK IC->rank, L: 1x1 rank->OC), searched jointly:
    minimum over windows of R cycles + L cycles, L as I_N kron L^T with whole blocks packed."""
    o_h, o_w, s = outputs(layer, convention)
    k, ic, oc = layer.kernel, layer.in_channels, layer.out_channels

    def l_arrays(n: int) -> int:
        if rank <= rows and oc <= cols:
            per_array = min(rows // rank, cols // oc)
            return cdiv(n, per_array)
        return n * cdiv(rank, rows) * cdiv(oc, cols)

    windows = o_h * o_w
    best = windows * cdiv(k * k * ic, rows) * cdiv(rank, cols) + windows * l_arrays(1)
    for j in range(1, o_w + 1):
        for i in range(1, o_h + 1):
            pw_h, pw_w = k + (i - 1) * s, k + (j - 1) * s
            ict, oct_ = rows // (pw_h * pw_w), cols // (i * j)
            if ict == 0 or oct_ == 0:
                continue
            n_pw = cdiv(o_h, i) * cdiv(o_w, j)
            total = n_pw * cdiv(ic, ict) * cdiv(rank, oct_) + n_pw * l_arrays(i * j)
            best = min(best, total)
    return best
