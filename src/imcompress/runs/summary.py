"""What a job tells the user and leaves behind: start banner, final table, ``summary.json``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SUMMARY_FILE = "summary.json"
COST_REPORT_FILE = "cost_report.json"  # the crossbar callback's report (CrossbarCostCallback)
# Accuracies shown in the final table when logged (every metric is in summary.json and
# csv/metrics.csv); val/acc_at_compression: right after compression, before fine-tuning.
SHOWN_ACCURACY = (
    "test/acc",
    "test/acc_top5",
    "val/acc_best",
    "val/acc_at_compression",
)


def make_console() -> Console:
    """A rich console; wide enough in logs (non-terminals) that paths are not cut."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def git_commit(start: Path | None = None) -> str | None:
    """The commit of the source tree (suffixed ``-dirty`` with uncommitted changes), or None."""
    where = str(start or Path(__file__).resolve().parent)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=where, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def to_number(value: Any) -> Any:
    """Tensors and numpy scalars to plain floats (NaN/inf to None) for JSON."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def slurm_job() -> dict[str, str]:
    """SLURM identifiers of this job, when it runs under SLURM."""
    keys = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT")
    return {key.lower(): os.environ[key] for key in keys if key in os.environ}


def write_summary(output_dir: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``summary.json`` atomically (:func:`imcompress.runs.atomic.write_json`): a crash never
    leaves half a file, a failed write leaves no temporary file, and a full disk raises
    ``DiskFullError`` (``disk full (ENOSPC) writing .../summary.json``)."""
    from imcompress.runs.atomic import write_json

    record, non_finite = json_safe(dict(summary))
    if non_finite:  # NaN/inf are not JSON: kept as null and named, never a lost record
        record["non_finite"] = sorted(set(record.get("non_finite") or []) | set(non_finite))
    return write_json(output_dir / SUMMARY_FILE, record, default=str)


def json_safe(value: Any, path: str = "") -> tuple[Any, list[str]]:
    """``value`` with every NaN/inf float replaced by None, and the dotted keys replaced."""
    if isinstance(value, float) and not math.isfinite(value):
        return None, [path or "<root>"]
    if isinstance(value, Mapping):
        out, found = {}, []
        for key, item in value.items():
            out[key], bad = json_safe(item, f"{path}.{key}" if path else str(key))
            found += bad
        return out, found
    if isinstance(value, (list, tuple)):
        items = [json_safe(item, f"{path}[{index}]") for index, item in enumerate(value)]
        return [item for item, _ in items], [key for _, bad in items for key in bad]
    return value, []


# Top-level knobs and the methods that read them; other methods (none, ...) do not show them.
KNOB_READERS = {
    "group": lambda method: method == "glr",
    "rank": lambda method: method in ("lr", "glr"),
    "sparsity": lambda method: method.startswith("prune_"),
}
KNOWN_METHODS = ("none", "lr", "glr", "prune_unstructured", "prune_channel", "prune_pattern")


def print_banner(console: Console, essentials: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    """One table with what is about to run (without the knobs the chosen method does not read)."""
    table = Table(title="imcompress: starting", show_header=False, title_justify="left")
    table.add_column(style="bold cyan")
    table.add_column()
    method = str(essentials.get("compression") or "none")
    for key, value in {**essentials, **extra}.items():
        reads = KNOB_READERS.get(str(key))
        if reads is not None and method in KNOWN_METHODS and not reads(method):
            continue
        if value is not None:
            table.add_row(str(key), str(value))
    console.print(table)


def hw_assumptions(output_dir: str | Path | None) -> str | None:
    """The bit widths and timing the cost numbers assume, read from the job's ``cost_report.json``
    (written by the crossbar callback, with the hw preset it used); None without a report."""
    if output_dir is None:
        return None
    try:
        hw = json.loads((Path(output_dir) / COST_REPORT_FILE).read_text()).get("hw") or {}
    except (OSError, ValueError, AttributeError):
        return None
    if not hw:
        return None
    cells = f"{hw.get('cell_bits')}-bit cells" + (
        " in differential pairs" if hw.get("differential") else ""
    )
    return (
        f"{hw.get('name')}: {hw.get('rows')}x{hw.get('cols')} arrays, "
        f"{hw.get('weight_bits')}-bit weights in {cells}, {hw.get('input_bits')}-bit inputs "
        f"({hw.get('dac_bits')}-bit DACs), {hw.get('adc_bits')}-bit ADCs, "
        f"{hw.get('cycle_ns'):g} ns per cycle"
    )


def cost_mappings(cost: Mapping[str, Any]) -> list[str]:
    """Mappings with totals in ``cost`` (``<mapping>/cycles``), without the ``_naive`` variants
    and the dense reference."""
    names = [key[: -len("/cycles")] for key in cost if key.endswith("/cycles")]
    return [name for name in names if not name.endswith("_naive") and not name.startswith("dense_")]


def headline_numbers(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of the final table, flat (the W&B run summary gets exactly these):
    accuracy, parameters, whole-model and compressed-layer compression ratios (two decimals),
    and per mapping cycles, energy, speedup and energy ratio against the dense model on the same
    mapping and array (``*_vs_dense``) and against it on im2col (``speedup``, ``energy_ratio``)."""
    out: dict[str, Any] = {}
    metrics = summary.get("metrics") or {}
    for key in SHOWN_ACCURACY:
        if isinstance(metrics.get(key), (int, float)):
            out[key] = metrics[key]
    compression = summary.get("compression") or {}
    params = (summary.get("parameters") or {}).get("total")
    dense = compression.get("model_params_before")
    after = compression.get("model_params_after") or params
    if params is not None:
        out["parameters"] = params
    if dense:
        out["parameters_dense"] = dense
        if after:
            out["compression/model_ratio"] = round(dense / after, 2)
    if compression.get("compression_ratio") is not None:
        out["compression/layer_ratio"] = round(float(compression["compression_ratio"]), 2)
        out["compression/layers"] = len(compression.get("layers") or [])
    cost = summary.get("cost") or {}
    for mapping in cost_mappings(cost):
        for key, name in (
            ("cycles", "cycles"),
            ("speedup_vs_dense", "speedup_vs_dense"),
            ("speedup_vs_im2col", "speedup"),
            ("energy_uj", "energy_uj"),
            ("energy_ratio_vs_dense", "energy_ratio_vs_dense"),
            ("energy_ratio_vs_im2col", "energy_ratio"),
        ):
            value = cost.get(f"{mapping}/{key}")
            if isinstance(value, (int, float)):
                out[f"hw/{mapping}/{name}"] = (
                    round(value, 2) if "ratio" in name or name.startswith("speedup") else value
                )
    return out


def _mapping_cell(numbers: Mapping[str, Any], mapping: str, compressed: bool) -> str:
    """``5,009 cycles, 0.964 uJ; 0.74x speed, 0.96x energy vs dense sdk; 2.27x, 0.78x vs dense
    im2col`` (a dense run: its own costs, and against itself on im2col)."""
    text = (
        f"{numbers[f'hw/{mapping}/cycles']:,.0f} cycles, "
        f"{numbers.get(f'hw/{mapping}/energy_uj', float('nan')):.4g} uJ"
    )
    if compressed and f"hw/{mapping}/speedup_vs_dense" in numbers:
        text += (
            f"; {numbers[f'hw/{mapping}/speedup_vs_dense']:.2f}x speed, "
            f"{numbers.get(f'hw/{mapping}/energy_ratio_vs_dense', float('nan')):.2f}x energy "
            f"vs dense {mapping}"
        )
    if mapping != "im2col" and f"hw/{mapping}/speedup" in numbers:
        text += (
            f"; {numbers[f'hw/{mapping}/speedup']:.2f}x speed, "
            f"{numbers.get(f'hw/{mapping}/energy_ratio', float('nan')):.2f}x energy vs dense im2col"
        )
    return text


def _dense_cell(cost: Mapping[str, Any], mappings: list[str]) -> str | None:
    """``im2col 11,393, sdk 3,713, vwsdk 2,321 cycles``: the dense model on the same arrays."""
    parts = [
        f"{mapping} {cost[f'dense_{mapping}/cycles']:,.0f}"
        for mapping in mappings
        if isinstance(cost.get(f"dense_{mapping}/cycles"), (int, float))
    ]
    return f"{', '.join(parts)} cycles (the reference of the speedups)" if parts else None


def print_final(console: Console, summary: Mapping[str, Any]) -> None:
    """The end-of-run table: status, accuracy, parameters and compression ratios, the hw
    assumptions, one row per mapping (cycles and energy; speedup and energy ratio against the
    dense model on the same mapping and array, and against it on im2col), files."""
    numbers = headline_numbers(summary)
    table = Table(title="imcompress: summary", show_header=False, title_justify="left")
    table.add_column(style="bold green")
    table.add_column()
    table.add_row("status", str(summary.get("status")))
    for key in SHOWN_ACCURACY:
        if key in numbers:
            table.add_row(key, f"{numbers[key]:.4f}")
    if "parameters" in numbers:
        text = f"{numbers['parameters']:,}"
        if (
            "compression/model_ratio" in numbers
            and numbers.get("parameters_dense") != numbers["parameters"]
        ):
            text += (
                f" of {numbers['parameters_dense']:,} dense: whole model "
                f"{numbers['compression/model_ratio']:.2f}x smaller"
            )
        table.add_row("parameters", text)
    if "compression/layer_ratio" in numbers:
        compression = summary.get("compression") or {}
        table.add_row(
            "compressed layers",
            f"{numbers['compression/layers']} layers, {compression.get('params_before', 0):,} -> "
            f"{compression.get('params_after', 0):,} parameters "
            f"({numbers['compression/layer_ratio']:.2f}x smaller)",
        )
    cost = summary.get("cost") or {}
    assumptions = hw_assumptions(summary.get("output_dir"))
    if assumptions:
        table.add_row("hw", assumptions)
    compressed = (summary.get("compression") or {}).get("method", "none") != "none"
    dense = _dense_cell(cost, cost_mappings(cost)) if compressed else None
    if dense:
        table.add_row("dense model", dense)
    for mapping in cost_mappings(cost):
        if f"hw/{mapping}/cycles" in numbers:
            table.add_row(mapping, _mapping_cell(numbers, mapping, compressed))
    best = summary.get("best") or {}
    if best.get("checkpoint"):
        table.add_row("best checkpoint", str(best["checkpoint"]))
    table.add_row("wall time", f"{summary.get('wall_time_s', 0):.1f} s")
    table.add_row("job dir", str(summary.get("output_dir")))
    console.print(table)
