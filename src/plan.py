"""Plan per-layer compression under a crossbar budget; see conf/plan.yaml and docs/planner.md.

python src/plan.py hw=imc64 plan.budget.metric=cycles plan.budget.ratio=0.5
python src/plan.py compression=prune_pattern plan.budget.metric=energy_uj plan.budget.ratio=0.6
"""

from __future__ import annotations

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from imcompress.cli import run_main
from imcompress.cli.warnings_filter import install_warning_filters
from imcompress.config import register_configs
from imcompress.jobs.plan import run_plan
from imcompress.planner.config import register_plan_schema

install_warning_filters()
register_configs()
register_plan_schema(ConfigStore.instance())


@hydra.main(version_base="1.3", config_path="../conf", config_name="plan")
def main(cfg: DictConfig) -> float:
    return run_plan(cfg)


if __name__ == "__main__":
    run_main(main)
