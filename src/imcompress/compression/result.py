"""What ``apply_compression`` changed: per-layer records, totals, and a printable table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from imcompress.compression.pruning.base import MaskedPruner
from imcompress.compression.pruning.pattern import PatternPruner
from imcompress.compression.schedule import SparsitySchedule


def count_parameters(model: nn.Module) -> int:
    """Parameters of ``model``; a pruned parameter counts only its unmasked entries."""
    total = 0
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            mask = (
                getattr(module, name[: -len("_orig")] + "_mask", None)
                if name.endswith("_orig")
                else None
            )
            total += int(mask.count_nonzero()) if mask is not None else param.numel()
    return total


@dataclass
class CompressionResult:
    """What :func:`apply_compression` changed.

    ``layers``: one dict per compressed layer (name, method, shape, rank, groups,
    params_before, params_after, sparsity, and method-specific keys). Mask methods also give
    their ``pruner`` and its ``schedule``, from which the training layer builds the callback
    that drives them (``PruningCallback.from_result``).
    """

    method: str = "none"
    layers: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    model_params_before: int | None = None
    model: nn.Module | None = field(default=None, repr=False)
    pruner: MaskedPruner | None = field(default=None, repr=False)
    schedule: SparsitySchedule | None = None
    # BatchNorm re-estimation record, set by the training pipeline (imcompress.training.recalibration)
    bn_recalibration: dict[str, Any] | None = None

    def refresh(self) -> None:
        """Re-read the per-layer records of the pruned layers from the live masks (the other
        layers of a plan that mixes methods keep their records)."""
        if self.pruner is not None:
            live = {record["name"]: record for record in self.pruner.records()}
            kept = [r for r in self.layers if r["name"] not in live]
            self.layers = kept + list(live.values())

    def apply_final_masks(self) -> None:
        """Set pruning masks to the final target now (for cost estimates without training)."""
        if self.pruner is not None and self.schedule is not None:
            self.pruner.prune_to(self.schedule.final)
            self.refresh()

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: method, options, per-layer records and parameter totals."""
        self.refresh()
        before = sum(int(r["params_before"]) for r in self.layers)
        after = sum(int(r["params_after"]) for r in self.layers)
        out: dict[str, Any] = {
            "method": self.method,
            "options": self.options,
            "layers": self.layers,
            "params_before": before,
            "params_after": after,
            "compression_ratio": round(before / after, 4) if after else None,
            "model_params_before": self.model_params_before,
            "model_params_after": count_parameters(self.model) if self.model is not None else None,
        }
        if self.pruner is not None:
            out["sparsity"] = round(self.pruner.sparsity(), 6)
            out.update(
                {k.split("/")[-1]: round(v, 6) for k, v in self.pruner.extra_metrics().items()}
            )
        if isinstance(self.pruner, PatternPruner):
            out["patterns"] = self.pruner.pattern_cells()
        if self.bn_recalibration is not None:
            out["bn_recalibration"] = dict(self.bn_recalibration)
        return out


def _fmt_count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1_000_000 else f"{n / 1e3:.1f}k" if n >= 10_000 else str(n)


def format_compression_table(result: CompressionResult) -> str:
    """Compact text table of ``result.layers`` with a one-line header of totals."""
    if result.method == "none" or not result.layers:
        return f"compression: {result.method} (no layers changed)"
    summary = result.summary()
    head = (
        f"compression: {result.method}, {len(result.layers)} layers, params "
        f"{_fmt_count(summary['params_before'])} -> {_fmt_count(summary['params_after'])}"
        f" ({summary['compression_ratio']}x)"
    )
    if "sparsity" in summary:
        head += f", sparsity {summary['sparsity']:.3f}"
    rows = [("layer", "shape", "rank", "groups", "params", "sparsity")]
    for r in result.layers:
        rank = "-" if r.get("rank") is None else str(r["rank"])
        groups = (
            "-" if r.get("groups") is None else f"{r['groups']}{(r.get('group_dim') or '')[:1]}"
        )
        sparsity = "-" if r.get("sparsity") is None else f"{r['sparsity']:.3f}"
        shape = "x".join(str(s) for s in r.get("shape", []))
        params = f"{_fmt_count(r['params_before'])}->{_fmt_count(r['params_after'])}"
        rows.append((r["name"], shape, rank, groups, params, sparsity))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([head, *(line.rstrip() for line in lines)])
