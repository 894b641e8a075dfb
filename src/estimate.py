"""Crossbar cost report of a (compressed) model: no data, no training, seconds.

python src/estimate.py model=wrn16_4 compression=glr rank=4 group=2 hw=imc512
python src/estimate.py -m hw=imc64,imc128,imc256,imc512
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from imcompress.cli import run_main
from imcompress.cli.warnings_filter import install_warning_filters
from imcompress.config import register_configs
from imcompress.jobs.estimate import run_estimate

install_warning_filters()
register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="estimate")
def main(cfg: DictConfig) -> float:
    return run_estimate(cfg)


if __name__ == "__main__":
    run_main(main)
