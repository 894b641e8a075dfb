#!/usr/bin/env bash
# The measured study of docs/results.md, on this machine (2 CPU cores, Fashion-MNIST offline):
#   1. dense ResNet-20 (experiment study/fmnist_dense), reused if it already completed;
#   2. every method compressed from the dense checkpoint and fine-tuned for the same epochs
#      (one multirun, with the sweep aggregation: sweep_summary.csv + plots);
#   3. crossbar costs of every method on 64x64 and 256x256 arrays (estimate.py multirun; the
#      one-shot pruning masks come from the same dense weights, so they equal the trained ones);
#   4. the results table (python -m imcompress.studies.results_table).
# Usage: launch/study_fmnist.sh [STUDY_DIR]   env: SEEDS=1,2 (default 1), PY=.venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-1}
STUDY=${1:-outputs/study_fmnist}
METHODS=study/fmnist_none,study/fmnist_lr,study/fmnist_glr2,study/fmnist_glr4,study/fmnist_unstructured,study/fmnist_channel,study/fmnist_pattern,study/fmnist_pattern_kernel

dense="$STUDY/dense"
if ! grep -q '"status": "completed"' "$dense/summary.json" 2>/dev/null; then
  time "$PY" src/train.py experiment=study/fmnist_dense hydra.run.dir="$dense" ckpt_path=auto \
    test_ckpt=last  # the dense accuracy reported is that of the checkpoint compressed below
fi
checkpoint="$dense/checkpoints/last.ckpt"  # the dense run's final epoch (docs/reliability.md)

time "$PY" src/train.py -m experiment="$METHODS" seed="$SEEDS" pretrained="$checkpoint" \
  hydra.sweep.dir="$STUDY/finetune" callbacks.progress_bar.refresh_rate=50

time "$PY" src/estimate.py -m experiment="$METHODS" hw=imc64,imc256 pretrained="$checkpoint" \
  hydra.sweep.dir="$STUDY/costs"

"$PY" -m imcompress.studies.results_table "$STUDY" | tee "$STUDY/results.md"
