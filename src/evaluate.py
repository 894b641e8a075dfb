"""Analog accuracy of a trained checkpoint on non-ideal crossbar tiles (aihwkit-lightning).

python src/evaluate.py ckpt=outputs/<name>/runs/<time>/checkpoints/last.ckpt analog=noisy analog.repeats=5
python src/evaluate.py ckpt=outputs/<name>/runs/<time> analog=quant analog.test_samples=1000
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: on a CPU shared with other jobs, OpenMP's default busy-waiting makes
# the im2col (unfold) of the analog convolutions many times slower; passive waiting avoids it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import hydra
from omegaconf import DictConfig

from imcompress.cli import run_main
from imcompress.cli.warnings_filter import install_warning_filters
from imcompress.config import register_configs
from imcompress.jobs.evaluate import run_evaluate
from imcompress.runs.summary import SUMMARY_FILE

install_warning_filters()
register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    accuracy = run_evaluate(cfg)
    print(f"summary: {Path(cfg.paths.output_dir) / SUMMARY_FILE}")
    return accuracy


if __name__ == "__main__":
    run_main(main)
