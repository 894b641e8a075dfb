"""Matched kept weights: the rank or sparsity at which a method keeps a target fraction of the
compressed convs' weights, counted on the real built model.

The kept fraction is ``params_after / params_before`` of :func:`apply_compression`'s summary
over the compressed layers (pruning: unmasked weights, channel pruning's masked input rows of
the next conv included; low rank: the factors' weights). It is a step function of the setting
(ranks and channel counts are integers), so :func:`solve_step` searches the setting whose
achieved fraction is nearest the target; the study tables show the achieved fraction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imcompress.reporting.vocabulary import LOWRANK_METHODS, PRUNING_METHODS

TOLERANCE = 0.05  # relative: achieved kept fraction within +-5 % of the target (issue 17)


@dataclass(frozen=True)
class Match:
    """A setting (``rank`` or ``sparsity``, as the top-level config key takes it) and the kept
    fraction it achieves."""

    key: str
    value: int | float
    kept: float
    target: float

    @property
    def error(self) -> float:
        """Relative deviation of the achieved kept fraction from the target."""
        return self.kept / self.target - 1.0

    @property
    def within(self) -> bool:
        return abs(self.error) <= TOLERANCE + 1e-12


def solve_step(
    kept_of: Callable[[float], float],
    target: float,
    lo: float,
    hi: float,
    increasing: bool,
    iterations: int = 30,
) -> tuple[float, float]:
    """(setting, kept) in ``[lo, hi]`` with the kept fraction nearest ``target``, for a monotone
    step function ``kept_of``: bisect to the step that crosses ``target``, then take the nearer
    of the values just below and just above it."""
    below, above = (lo, hi) if increasing else (hi, lo)  # kept(below) <= kept(above)
    kept_below, kept_above = kept_of(below), kept_of(above)
    if kept_above <= target:
        return above, kept_above
    if kept_below >= target:
        return below, kept_below
    for _ in range(iterations):
        middle = (below + above) / 2
        kept = kept_of(middle)
        if kept >= target:
            above, kept_above = middle, kept
        else:
            below, kept_below = middle, kept
    if target - kept_below < kept_above - target:
        return below, kept_below
    return above, kept_above


def shortest_equal(value: float, kept: float, kept_of: Callable[[float], float]) -> float:
    """``value`` rounded to the fewest decimals (2 to 8) that keep the same kept fraction, so the
    job list holds a readable number that builds exactly the matched model."""
    for decimals in range(2, 9):
        rounded = round(value, decimals)
        if rounded > 0 and kept_of(rounded) == kept:
            return rounded
    return value


def best_match(target: float, key: str, candidates: Iterable[tuple[int | float, float]]) -> Match:
    """The candidate (setting, kept) nearest ``target`` (ties: the first)."""
    value, kept = min(candidates, key=lambda c: abs(c[1] - target))
    return Match(key, value, kept, target)


def match_lowrank(target: float, kept_of: Callable[[int | float], float]) -> Match:
    """The rank setting (a ratio in (0, 1] or an int per-group rank) nearest ``target``: one ratio
    rounds every layer's rank on its own width, one int gives every layer the same rank, and
    either may land nearer; both are uniform settings."""
    ratio, kept = solve_step(kept_of, target, 1e-6, 1.0, increasing=True)
    candidates: list[tuple[int | float, float]] = [(shortest_equal(ratio, kept, kept_of), kept)]
    for rank in range(1, 4097):
        try:
            kept_int = kept_of(rank)
        except ValueError:  # above the smallest selected layer's maximum rank
            break
        candidates.append((rank, kept_int))
        if kept_int > target:
            break
    return best_match(target, "rank", candidates)


def match_sparsity(target: float, kept_of: Callable[[float], float]) -> Match:
    """The pruning sparsity nearest ``target`` kept weights."""
    sparsity, kept = solve_step(kept_of, target, 0.0, 0.999, increasing=False, iterations=12)
    return Match("sparsity", shortest_equal(sparsity, kept, kept_of), kept, target)


def match(method: str, target: float, kept_of: Callable[[Any], float]) -> Match:
    """The setting of ``method`` (``lr``, ``glr``, ``prune_*``) nearest ``target`` kept weights."""
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target kept fraction must be in (0, 1], got {target}")
    if method in LOWRANK_METHODS:
        return match_lowrank(target, kept_of)
    if method in PRUNING_METHODS:
        return match_sparsity(target, kept_of)
    raise ValueError(
        f"method {method!r} has no kept-weights setting; valid: {LOWRANK_METHODS + PRUNING_METHODS}"
    )


# --- the real built model ----------------------------------------------------------------------


def counting_options(compression: Mapping[str, Any]) -> dict[str, Any]:
    """``compression`` with the data-dependent choices set to their data-free defaults (the
    whitened factorization and the activation criterion keep the same number of weights as SVD
    and magnitude) and no BatchNorm re-estimation: counting needs no data."""
    options = dict(compression)
    for key, free in (
        ("factorization", "svd"),
        ("criterion", "magnitude"),
        ("bn_recalibration_batches", 0),
        ("schedule", "oneshot"),
    ):
        if key in options:
            options[key] = free
    return options


def kept_fraction(build: Callable[[], Any], compression: Mapping[str, Any]) -> float:
    """Kept fraction of the compressed layers' weights of ``build()`` under ``compression``."""
    from imcompress.compression import apply_compression

    result = apply_compression(build(), counting_options(compression))
    result.apply_final_masks()
    summary = result.summary()
    if not summary["params_before"]:
        raise ValueError(f"compression {dict(compression)} selected no layer")
    return float(summary["params_after"]) / float(summary["params_before"])


def lowrank_kept_function(
    build: Callable[[], Any], compression: Mapping[str, Any]
) -> Callable[[Any], float]:
    """``rank -> kept fraction`` of a low-rank method without factorizing: the method's own rank
    resolution per selected layer and the parameters of the factor pair it would build (on the
    ``meta`` device). :func:`verified_match` checks the chosen rank on the real model."""
    from imcompress.compression.lowrank import LowRankConv2d
    from imcompress.compression.options import parse_options
    from imcompress.compression.registry import get_method
    from imcompress.compression.selection import select_layers

    model = build()

    def kept_of(rank: Any) -> float:
        opts: Any = parse_options(counting_options({**compression, "rank": rank}))
        method: Any = get_method(opts.method)
        targets = select_layers(model, opts.include, opts.exclude)
        settings = method.layer_settings(opts, targets)
        ranks, problems = method.layer_ranks(opts, targets, settings)
        if problems:
            raise ValueError(problems[0])
        before = after = 0
        for name, conv in targets:
            pair = LowRankConv2d(
                conv.in_channels, conv.out_channels, (conv.kernel_size[0], conv.kernel_size[1]),
                ranks[name],
                groups=settings[name].groups, group_dim=opts.group_dim,
                bias=conv.bias is not None, device="meta",
            )  # fmt: skip
            before += sum(p.numel() for p in conv.parameters())
            after += sum(p.numel() for p in pair.parameters())
        return after / before

    return kept_of


def kept_function(
    build: Callable[[], Any], compression: Mapping[str, Any]
) -> Callable[[Any], float]:
    """``value -> kept fraction`` of ``compression`` with its rank (low rank) or sparsity
    (pruning) set to ``value`` (results cached)."""
    method = compression.get("method")
    if method in LOWRANK_METHODS:
        count = lowrank_kept_function(build, compression)
    else:

        def count(value: Any) -> float:
            return kept_fraction(build, {**compression, "sparsity": value})

    cache: dict[tuple[str, Any], float] = {}

    def kept_of(value: Any) -> float:
        cache_key = (type(value).__name__, value)
        if cache_key not in cache:
            cache[cache_key] = count(value)
        return cache[cache_key]

    return kept_of


def verified_match(
    build: Callable[[], Any], compression: Mapping[str, Any], target: float
) -> Match:
    """The matched setting of ``compression`` for ``target`` kept weights, its kept fraction
    recounted on the real model after :func:`apply_compression` (RuntimeError if the search's
    count differs: the search would have been wrong)."""
    found = match(str(compression.get("method")), target, kept_function(build, compression))
    real = kept_fraction(build, {**compression, found.key: found.value})
    if abs(real - found.kept) > 1e-12:
        raise RuntimeError(
            f"kept-fraction search for {dict(compression)} found {found.kept} at "
            f"{found.key}={found.value} but the built model keeps {real}"
        )
    return found
