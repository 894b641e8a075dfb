"""The fields that compression methods share, as structured-config dataclasses.

A method's own schema (in its module under :mod:`imcompress.compression.methods`) extends one
of these; its YAML in ``conf/compression/`` starts with ``defaults: [base_<kind>, _self_]`` so
that Hydra merges it onto that dataclass: a misspelt field, a value outside an option's
vocabulary (an ``enum.StrEnum`` field) or a wrong type fails at compose time. Values that need
more than a type (ranges, combinations) are checked by the method's ``check`` before any module
is modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from imcompress.compression.schedule import Schedule


@dataclass
class CompressionConfig:
    """The field every method has; alone it is ``method: none`` (model left unchanged)."""

    method: str = "none"  # a registered method name (imcompress.compression.registry)
    # BatchNorm statistics re-estimated on this many training batches after compression
    # (compression/batchnorm.py); 0 = off. Read by the training pipeline, not by the methods.
    bn_recalibration_batches: int = 16
    # training batches whose layer inputs feed the data-aware options (factorization=whitened,
    # criterion=activation; compression/calibration.py)
    calibration_batches: int = 8


@dataclass
class SelectionFields(CompressionConfig):
    """Which layers: empty ``include`` = default selection; globs on dotted module names."""

    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    plan: str | None = None  # per-layer plan file from src/plan.py; replaces include/exclude


@dataclass
class PruneScheduleFields(SelectionFields):
    """Target sparsity and when the masks are computed (one-shot or Zhu & Gupta cubic ramp)."""

    sparsity: float = 0.5
    schedule: Schedule = Schedule["oneshot"]
    initial_sparsity: float = 0.0
    start_epoch: int = 0
    end_epoch: int | None = None  # None: max(start_epoch, max_epochs // 2)
    frequency: int = 1
