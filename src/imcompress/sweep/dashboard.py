"""A saved W&B workspace comparing compression methods against crossbar cost (wandb-workspaces).

Built entirely offline; only :func:`save_workspace` talks to W&B and needs an API key. Keys it
reads from the runs (as logged by ``src/train.py``): config ``compression.method``, ``group``,
``rank``, ``sparsity``, ``hw.name``; history ``val/acc``, ``val/loss``, ``train/loss`` against
``epoch``; summary ``test/acc`` (or another accuracy), ``hw/<mapping>/speedup_vs_dense``
(against the dense model on the same mapping and array), ``hw/<mapping>/speedup`` (against the
dense model on im2col) and ``hw/<mapping>/energy_uj``. Runs are grouped and coloured by
``compression.method`` with the palette of the matplotlib figures (:mod:`imcompress.reporting.figures`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imcompress.crossbar.options import Method
from imcompress.reporting.figures import METHOD_COLOURS as FIGURE_COLOURS

DEFAULT_MAPPINGS = tuple(m.value for m in Method)
DEFAULT_NAME = "imcompress: accuracy vs crossbar cost"
METHOD_KEY = "compression.method"
SWEEP_AXES = ("group", "rank", "sparsity", "hw.name")
CURVES = ("val/acc", "val/loss", "train/loss")
COST_PANELS = (
    ("speedup_vs_dense", "speedup vs dense on the same mapping and array"),
    ("speedup", "speedup vs dense im2col"),
    ("energy_uj", "energy [uJ]"),
)
# One colour per compression method: the palette of the matplotlib figures (imcompress.reporting.figures).
METHOD_COLOURS = dict(FIGURE_COLOURS)
DEFAULT_MAX_RUNS = 100  # runs shown per panel (W&B's default, 10, cuts a study short)


class MissingApiKeyError(RuntimeError):
    """Saving a workspace needs a W&B API key and none is configured."""


def has_api_key(environ: dict[str, str] | None = None) -> bool:
    """True when W&B can authenticate: ``WANDB_API_KEY`` or an api.wandb.ai entry in the netrc file."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(environ.get("NETRC") or Path.home() / ".netrc")
    try:
        return "api.wandb.ai" in netrc.read_text(errors="ignore")
    except OSError:
        return False


def build_workspace(
    entity: str,
    project: str,
    *,
    name: str = DEFAULT_NAME,
    group: str | None = None,
    accuracy: str = "test/acc",
    mappings: Sequence[str] = DEFAULT_MAPPINGS,
    max_runs: int = DEFAULT_MAX_RUNS,
) -> Any:
    """The workspace (a ``wandb_workspaces.workspaces.Workspace``; no network).

    Sections: training curves grouped by compression method; accuracy against the speedup (vs
    the dense model on the same mapping and array, and vs dense im2col) and against the energy
    of every mapping; accuracy against the
    group count; parallel coordinates over method, group, rank, sparsity, hw and accuracy. The
    runset is grouped and coloured by compression method and every panel shows up to
    ``max_runs`` runs. ``group`` restricts the runs to one W&B group (one multirun:
    ``<name>-<sweep dir>``).
    """
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces import expr

    curves: list[Any] = [
        wr.LinePlot(
            title=f"{metric} by compression method",
            x="epoch",
            y=[metric],
            groupby=wr.Config(METHOD_KEY),
            groupby_aggfunc="mean",
            groupby_rangefunc="minmax",
        )
        for metric in CURVES
    ]
    scatters: list[Any] = [
        wr.ScatterPlot(
            title=f"{accuracy} vs {mapping} {label}",
            x=wr.SummaryMetric(f"hw/{mapping}/{quantity}"),
            y=wr.SummaryMetric(accuracy),
        )
        for quantity, label in COST_PANELS
        for mapping in mappings
    ]
    by_group: list[Any] = [
        wr.ScatterPlot(
            title=f"{accuracy} vs group (g of group low-rank)",
            x=wr.Config("group"),
            y=wr.SummaryMetric(accuracy),
        )
    ]
    columns = [
        wr.ParallelCoordinatesPlotColumn(metric=wr.Config(METHOD_KEY), display_name="method")
    ]
    columns += [
        wr.ParallelCoordinatesPlotColumn(metric=wr.Config(key), display_name=key.split(".")[0])
        for key in SWEEP_AXES
    ]
    columns.append(
        wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(accuracy), display_name=accuracy)
    )
    parallel = wr.ParallelCoordinatesPlot(title="sweep axes -> accuracy", columns=columns)
    filters = [expr.Metric("Group") == group] if group else []
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=[
            ws.Section(name="Training curves by compression method", panels=curves, is_open=True),
            ws.Section(name="Accuracy vs crossbar cost", panels=scatters, is_open=True),
            ws.Section(name="Accuracy vs group", panels=by_group, is_open=True),
            ws.Section(name="Sweep axes", panels=[parallel], is_open=True),
        ],
        settings=ws.WorkspaceSettings(x_axis="epoch", max_runs=max_runs),
        runset_settings=ws.RunsetSettings(
            filters=filters,
            groupby=[expr.Config(METHOD_KEY)],
            group_colors=dict[Any, Any](METHOD_COLOURS),
            pinned_columns=[
                "config:group",
                "config:rank",
                "config:sparsity",
                f"summary:{accuracy}",
            ],
        ),
    )


def workspace_spec(workspace: Any) -> dict[str, Any]:
    """The JSON view spec W&B would store for ``workspace`` (computed offline)."""
    model = workspace._to_model()
    spec: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return spec


def panels_by_section(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``section name -> [panel spec, ...]`` of a :func:`workspace_spec` result."""
    sections = spec["spec"]["section"]["panelBankConfig"]["sections"]
    return {section["name"]: list(section["panels"]) for section in sections}


def save_workspace(workspace: Any) -> str:
    """Save (create or update) the workspace in W&B and return its URL; needs an API key."""
    if not has_api_key():
        raise MissingApiKeyError(
            "Saving a W&B workspace needs an API key: set WANDB_API_KEY or run `wandb login`, then "
            "rerun. Nothing was sent; use --dry-run (or --spec-out FILE) to inspect the workspace offline."
        )
    workspace.save()
    return str(workspace.url)
