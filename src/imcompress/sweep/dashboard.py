"""A saved W&B workspace comparing compression methods against crossbar cost (wandb-workspaces).

Built entirely offline; only :func:`save_workspace` talks to W&B and needs an API key. Keys it
reads from the runs (as logged by ``src/train.py``): config ``compression.method``, ``group``,
``rank``, ``sparsity``, ``hw.name``; history ``val/acc``, ``val/loss``, ``train/loss`` against
``epoch``; summary ``test/acc`` (or another accuracy), ``hw/<mapping>/speedup_vs_dense``
(against the dense model on the same mapping and array), ``hw/<mapping>/speedup`` (against the
dense model on im2col) and ``hw/<mapping>/energy_uj``. Runs are grouped and coloured by
``compression.method`` with the palette of the matplotlib figures (:mod:`imcompress.reporting.figures`).
:func:`dashboard_main` is the command line of ``src/dashboard.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
    import wandb_workspaces.workspaces as ws

    sections = {
        "Training curves by compression method": _curve_panels(),
        "Accuracy vs crossbar cost": _cost_panels(accuracy, mappings),
        "Accuracy vs group": _group_panels(accuracy),
        "Sweep axes": [_sweep_axes_panel(accuracy)],
    }
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=[
            ws.Section(name=title, panels=panels, is_open=True)
            for title, panels in sections.items()
        ],
        settings=ws.WorkspaceSettings(x_axis="epoch", max_runs=max_runs),
        runset_settings=_runset_settings(group, accuracy),
    )


def _curve_panels() -> list[Any]:
    """One line plot per training curve (``CURVES``), grouped by compression method."""
    import wandb_workspaces.reports.v2 as wr

    return [
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


def _cost_panels(accuracy: str, mappings: Sequence[str]) -> list[Any]:
    """Accuracy against each cost quantity (``COST_PANELS``) of each mapping."""
    import wandb_workspaces.reports.v2 as wr

    return [
        wr.ScatterPlot(
            title=f"{accuracy} vs {mapping} {label}",
            x=wr.SummaryMetric(f"hw/{mapping}/{quantity}"),
            y=wr.SummaryMetric(accuracy),
        )
        for quantity, label in COST_PANELS
        for mapping in mappings
    ]


def _group_panels(accuracy: str) -> list[Any]:
    """Accuracy against the group count of group low-rank."""
    import wandb_workspaces.reports.v2 as wr

    return [
        wr.ScatterPlot(
            title=f"{accuracy} vs group (g of group low-rank)",
            x=wr.Config("group"),
            y=wr.SummaryMetric(accuracy),
        )
    ]


def _sweep_axes_panel(accuracy: str) -> Any:
    """Parallel coordinates over the method, the sweep axes (``SWEEP_AXES``) and accuracy."""
    import wandb_workspaces.reports.v2 as wr

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
    return wr.ParallelCoordinatesPlot(title="sweep axes -> accuracy", columns=columns)


def _runset_settings(group: str | None, accuracy: str) -> Any:
    """Runs of ``group`` (all when None), grouped and coloured by compression method."""
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces import expr

    return ws.RunsetSettings(
        filters=[expr.Metric("Group") == group] if group else [],
        groupby=[expr.Config(METHOD_KEY)],
        group_colors=dict[Any, Any](METHOD_COLOURS),
        pinned_columns=[
            "config:group",
            "config:rank",
            "config:sparsity",
            f"summary:{accuracy}",
        ],
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


CLI_DESCRIPTION = (
    "Build (and save) the W&B workspace that compares compression methods against crossbar cost."
)


def dashboard_parser(description: str = CLI_DESCRIPTION) -> argparse.ArgumentParser:
    """The arguments of ``src/dashboard.py`` (one per :func:`build_workspace` parameter, plus
    ``--spec-out`` and ``--dry-run``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--entity", required=True, help="W&B user or team that owns the project")
    parser.add_argument(
        "--project",
        required=True,
        help="W&B project of the runs (logger.wandb.project; default imcompress)",
    )
    parser.add_argument("--name", default=DEFAULT_NAME, help="name of the saved workspace view")
    parser.add_argument(
        "--group",
        default=None,
        help="only runs of this W&B group (one multirun: <name>-<sweep dir name>)",
    )
    parser.add_argument(
        "--accuracy", default="test/acc", help="summary metric on the accuracy axes"
    )
    parser.add_argument(
        "--mappings", nargs="+", default=list(DEFAULT_MAPPINGS), help="crossbar mappings to plot"
    )
    parser.add_argument(
        "--max-runs",
        type=int,
        default=DEFAULT_MAX_RUNS,
        help=f"runs shown per panel (default {DEFAULT_MAX_RUNS}; W&B's own default is 10)",
    )
    parser.add_argument(
        "--spec-out", type=Path, default=None, help="also write the workspace spec (JSON) here"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="build and describe the workspace; do not save"
    )
    return parser


def dashboard_main(argv: list[str] | None = None, description: str = CLI_DESCRIPTION) -> int:
    """``src/dashboard.py``: parse the arguments, build the workspace, then save it or just
    describe it. Returns the exit status: 0 saved (or ``--dry-run``), 1 no API key / save failed."""
    args = dashboard_parser(description).parse_args(argv)
    workspace = build_workspace(
        args.entity,
        args.project,
        name=args.name,
        group=args.group,
        accuracy=args.accuracy,
        mappings=args.mappings,
        max_runs=args.max_runs,
    )
    spec = workspace_spec(workspace)
    if args.spec_out is not None:
        args.spec_out.write_text(json.dumps(spec, indent=2) + "\n")
        print(f"workspace spec written to {args.spec_out}")
    for section, panels in panels_by_section(spec).items():
        print(f"{section}: {len(panels)} panels")
    if args.dry_run:
        return 0
    return _save_and_report(workspace)


def _save_and_report(workspace: Any) -> int:
    """Save ``workspace`` and print its URL (0), or say on stderr why it was not saved (1)."""
    try:
        url = save_workspace(workspace)
    except MissingApiKeyError as error:
        print(f"dashboard: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # network, permissions, unknown entity/project
        print(
            f"dashboard: saving the workspace failed: {type(error).__name__}: {error}",
            file=sys.stderr,
        )
        return 1
    print(f"workspace saved: {url}")
    return 0
