"""Train (and optionally compress) a CNN; see conf/train.yaml and `python src/train.py --help`.

python src/train.py experiment=quickstart
python src/train.py compression=glr hw=imc256 -m group=1,2,4
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from imcompress.cli import run_main
from imcompress.cli.warnings_filter import install_warning_filters
from imcompress.config import register_configs
from imcompress.jobs.train import configure_torch_threads, train

install_warning_filters()
register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    configure_torch_threads()
    return train(cfg)


if __name__ == "__main__":
    run_main(main)
