"""Turn the ``compression`` config node into a checked schema instance.

Accepts a DictConfig, a mapping or a schema dataclass. Unknown fields, unknown values and
out-of-range numbers raise ValueError here, before any module is touched; checks that need
the model (groups dividing channels, ranks) are in :mod:`imcompress.compression.api`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imcompress.compression.factorization import FACTOR_SPLITS, GROUP_DIMS, RANK_MODES
from imcompress.compression.schemas import (
    METHOD_SCHEMAS,
    LowRankCompressionConfig,
    PatternPruneConfig,
    PruneScheduleFields,
    UnstructuredPruneConfig,
)

SCHEDULES = ("oneshot", "gradual")
SCOPES = ("layer", "global")
PATTERN_SETS = ("pconv", "patdnn", "nentry")
PATTERN_DIMS = ("kernel", "input_channel", "layer")


def _as_dict(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {"method": "none"}
    if isinstance(cfg, DictConfig):
        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict)
        return {str(k): v for k, v in container.items()}
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return dataclasses.asdict(cfg)
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise ValueError(f"compression config must be a mapping, got {type(cfg).__name__}")


def _choice(name: str, value: Any, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"compression.{name}={value!r} is not valid; choose one of {list(valid)}")


def _check_lowrank(opts: LowRankCompressionConfig) -> None:
    _choice("group_dim", opts.group_dim, GROUP_DIMS)
    _choice("rank_mode", opts.rank_mode, RANK_MODES)
    _choice("factor_split", opts.factor_split, FACTOR_SPLITS)
    if isinstance(opts.groups, bool) or not isinstance(opts.groups, int) or opts.groups < 1:
        raise ValueError(f"compression.groups must be an int >= 1, got {opts.groups!r}")
    if opts.method == "lr" and opts.groups != 1:
        raise ValueError(
            f"compression=lr is group low-rank with groups=1 (got groups={opts.groups}); "
            "use compression=glr for groups > 1"
        )
    rank = opts.rank
    if isinstance(rank, bool) or not isinstance(rank, int | float):
        raise ValueError(f"compression.rank must be an int >= 1 or a float in (0, 1], got {rank!r}")
    if isinstance(rank, float) and not 0.0 < rank <= 1.0:
        raise ValueError(f"compression.rank ratio must be in (0, 1], got {rank}")
    if isinstance(rank, int) and rank < 1:
        raise ValueError(f"compression.rank must be >= 1, got {rank}")


def _check_fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < 1.0:
        raise ValueError(f"compression.{name} must be in [0, 1), got {value!r}")


def _check_schedule(opts: PruneScheduleFields) -> None:
    _check_fraction("sparsity", opts.sparsity)
    _check_fraction("initial_sparsity", opts.initial_sparsity)
    _choice("schedule", opts.schedule, SCHEDULES)
    if opts.initial_sparsity > opts.sparsity:
        raise ValueError(
            f"compression.initial_sparsity={opts.initial_sparsity} exceeds "
            f"sparsity={opts.sparsity}; valid: 0..{opts.sparsity}"
        )
    if opts.start_epoch < 0:
        raise ValueError(f"compression.start_epoch must be >= 0, got {opts.start_epoch}")
    if opts.frequency < 1:
        raise ValueError(f"compression.frequency must be >= 1, got {opts.frequency}")
    if opts.end_epoch is not None and opts.end_epoch < opts.start_epoch:
        raise ValueError(
            f"compression.end_epoch={opts.end_epoch} is before start_epoch={opts.start_epoch}"
        )


def _check_pattern(opts: PatternPruneConfig) -> None:
    _choice("pattern_set", opts.pattern_set, PATTERN_SETS)
    _choice("pattern_dim", opts.pattern_dim, PATTERN_DIMS)
    if opts.pattern_set == "pconv" and opts.pattern_entries != 4:
        raise ValueError(
            f"pattern_set=pconv has 4-entry patterns; got pattern_entries={opts.pattern_entries}"
        )
    if not 1 <= opts.pattern_entries <= 8:
        raise ValueError(
            f"compression.pattern_entries must be in 1..8 (studied: 1, 2, 4, 6, 8), "
            f"got {opts.pattern_entries}"
        )
    if opts.num_patterns < 1:
        raise ValueError(f"compression.num_patterns must be >= 1, got {opts.num_patterns}")


def parse_options(cfg: Any) -> Any:
    """Checked schema dataclass for ``cfg`` (see :mod:`imcompress.compression.schemas`)."""
    values = _as_dict(cfg)
    method = values.get("method", "none")
    if method is None:
        method = "none"
    _choice("method", method, tuple(METHOD_SCHEMAS))
    schema = METHOD_SCHEMAS[method]
    known = {f.name for f in dataclasses.fields(schema)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown compression field(s) {unknown} for method={method}; valid: {sorted(known)}"
        )
    opts = schema(**{**values, "method": method})
    for name in ("include", "exclude"):
        patterns = getattr(opts, name, [])
        if isinstance(patterns, str):
            setattr(opts, name, [patterns])
    if isinstance(opts, LowRankCompressionConfig):
        _check_lowrank(opts)
    if isinstance(opts, PruneScheduleFields):
        _check_schedule(opts)
    if isinstance(opts, UnstructuredPruneConfig):
        _choice("scope", opts.scope, SCOPES)
    if isinstance(opts, PatternPruneConfig):
        _check_pattern(opts)
    return opts
