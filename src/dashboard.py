"""Build (and save) the W&B workspace that compares compression methods against crossbar cost.

    python src/dashboard.py --entity E --project P                 # build and save (needs an API key)
    python src/dashboard.py --entity E --project P --group smoke-2026-01-01_12-00-00
    python src/dashboard.py --entity E --project P --dry-run --spec-out workspace.json

Panels: val/acc, val/loss, train/loss curves grouped by `compression.method`; accuracy against
`hw/<mapping>/speedup` (vs the dense model on im2col) and `hw/<mapping>/energy_uj` for every
mapping; accuracy against `group`; parallel coordinates over method, group, rank, sparsity, hw
and accuracy. Runs are grouped and coloured by `compression.method`; panels show up to
--max-runs runs. Offline runs must be uploaded first
(`wandb sync <job dir>/wandb/offline-run-*`, see docs/wandb.md).
Exit status: 0 saved (or --dry-run), 1 no API key / save failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imcompress.sweep.dashboard import (
    DEFAULT_MAPPINGS,
    DEFAULT_MAX_RUNS,
    DEFAULT_NAME,
    MissingApiKeyError,
    build_workspace,
    panels_by_section,
    save_workspace,
    workspace_spec,
)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, build the workspace, then save it or just describe it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
