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

import sys

from imcompress.sweep.dashboard import dashboard_main


def main(argv: list[str] | None = None) -> int:
    """Build the workspace, then save it or just describe it (see the module docstring)."""
    return dashboard_main(argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
