#!/usr/bin/env bash
# The analog-robustness study of docs/results.md ("Accuracy on a non-ideal crossbar"): the
# checkpoints of the frontier study (launch/study_frontier.sh) and its dense model evaluated under the
# `quant` and `noisy` presets (5 programmings with fresh noise), then a few hardware-aware
# fine-tuning jobs (analog=noisy analog.train=true) from the same dense checkpoint.
# An analog pass costs ~10x a digital one on the CPU (aihwkit-lightning unfolds every conv), so
# every evaluation uses the first $SAMPLES test images; digital accuracy is taken on the same images.
# Resumable: per-job results are kept (STUDY_DIR/analog/<job>.json) and completed
# fine-tuning jobs are skipped.
# Usage: launch/study_analog.sh [FRONTIER_DIR] [OUT_DIR]
#   env: PY, SAMPLES (default 500), HWA=0|1, JOBS (regex of frontier job names; default: seed 1 at
#   keep 0.25 and 0.06, and the most aggressive planned point of each series; '.' for every job)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
FRONTIER=${1:-outputs/frontier}
OUT=${2:-outputs/analog_frontier}
SAMPLES=${SAMPLES:-500}
JOBS=${JOBS:-'(_k0\.25_s1|_k0\.06_s1|planned_glr_imc64_c0\.50_s1|planned_glr_imc256_c0\.87_s1|planned_pattern_imc64_c0\.50_s1)$'}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # docs/analog.md: busy-waiting threads stall the unfold
frontier_abs=$(cd "$FRONTIER" && pwd)

# 1. Robustness of the digitally fine-tuned checkpoints
mkdir -p "$OUT/finetune"
for job in "$frontier_abs"/finetune/*; do
  [[ -f "$job/summary.json" && "$(basename "$job")" =~ $JOBS ]] || continue
  ln -sfn "$job" "$OUT/finetune/$(basename "$job")"
done
# the dense model as the reference row
[ -f "$frontier_abs/dense/summary.json" ] && ln -sfn "$frontier_abs/dense" "$OUT/finetune/dense"
"$PY" -m imcompress.studies.analog "$OUT" --presets quant,noisy --repeats 5 --test-samples "$SAMPLES" \
  || exit 1

# 2. Hardware-aware fine-tuning of a few points: the same recipe as the frontier jobs, with noisy
#    analog tiles in the forward pass; the run ends with the same analog test (noisy, 5 repeats).
[ "${HWA:-1}" = 1 ] || exit 0
checkpoint="$frontier_abs/dense/checkpoints/last.ckpt"  # the dense run's final epoch
FINETUNE="trainer.max_epochs=1 trainer.limit_train_batches=40 trainer.limit_val_batches=0.5 trainer.limit_test_batches=0.5 callbacks.progress_bar.refresh_rate=0"
ANALOG="analog=noisy analog.train=true analog.repeats=5 analog.test_samples=$SAMPLES"
mkdir -p "$OUT/hwa"
failed=0
while IFS='|' read -r name experiment overrides; do
  dir="$OUT/hwa/$name"
  if grep -q '"status": "completed"' "$dir/summary.json" 2>/dev/null; then continue; fi
  ckpt=null; ls "$dir"/checkpoints/*.ckpt >/dev/null 2>&1 && ckpt=auto
  echo "== $(date +%T) $dir"
  # shellcheck disable=SC2086
  "$PY" src/train.py experiment="$experiment" $overrides $FINETUNE $ANALOG \
    pretrained="$checkpoint" name="hwa_$name" hydra.run.dir="$dir" ckpt_path=$ckpt > "$dir.log" 2>&1 \
    || { echo "   failed: see $dir.log"; failed=$((failed + 1)); }
done <<'JOBS'
glr4_k0.06_s1|study/fmnist_glr4|rank=0.0415 seed=1
channel_k0.06_s1|study/fmnist_channel|sparsity=0.94 seed=1
JOBS
echo "hardware-aware: $failed job(s) failed"
[ "$failed" = 0 ]
