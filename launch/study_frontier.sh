#!/usr/bin/env bash
# The accuracy-vs-cost frontier study of docs/results.md ("Frontier"), on this machine
# (2 CPU cores, Fashion-MNIST offline). Every job compresses the same dense checkpoint
# (launch/study_fmnist.sh stage 1, experiment=study/fmnist_dense) at one of four levels of the
# compressed convs' weights kept (50, 25, 12, 6 %) and fine-tunes it briefly:
#   1 epoch over 40 batches of 256 (10,240 images, a fifth of the training split), lr 0.02,
#   half of the validation split, half of the test split (5,000 images). (The 2-epoch recipe
#   of the first study costs 4-7 min a job; 50 jobs do not fit a session on 2 cores.)
# Pruning keeps 1-s of the weights (sparsity s); LR/GLR keep k(n + g m) ~ keep * m n, i.e. the
# rank ratio r = 9 keep / (9 + g) for 3x3 convs with IC = OC (docs/results.md).
# Resumable: every job has its own folder; a job whose summary.json says completed is skipped,
# any other is resumed from its checkpoints (ckpt_path=auto).
# Usage: launch/study_frontier.sh [STUDY_DIR] [JOB_FILTER_REGEX]   env: PY=.venv/bin/python
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STUDY=${1:-outputs/frontier}
FILTER=${2:-.}
dense="$STUDY/dense"
if ! grep -q '"status": "completed"' "$dense/summary.json" 2>/dev/null; then
  "$PY" src/train.py experiment=study/fmnist_dense hydra.run.dir="$dense" ckpt_path=auto \
    test_ckpt=last || exit 1  # the dense accuracy reported is that of the checkpoint used below
fi
checkpoint="$dense/checkpoints/last.ckpt"  # the dense run's final epoch (docs/reliability.md)
FINETUNE="trainer.max_epochs=1 trainer.limit_train_batches=40 trainer.limit_val_batches=0.5 trainer.limit_test_batches=0.5 callbacks.progress_bar.refresh_rate=0"

# name | experiment | overrides (level: keep 0.50 0.25 0.12 0.06)
jobs() {
  local keeps=(0.50 0.25 0.12 0.06) seed
  for seed in 1 2; do
    # planned points (listed in $STUDY/planned_jobs.txt, same format, once the plans exist) run
    # after the first seed of the uniform ones
    if [ -f "$STUDY/planned_jobs.txt" ]; then
      if [ "$seed" = 2 ]; then
        cat "$STUDY/planned_jobs.txt"
        # second seed of the two most aggressive budgets (smallest c) of every planned series
        sort -t'|' -k1,1 "$STUDY/planned_jobs.txt" | awk -F'|' '{
            series = $1; sub(/_c[0-9.]+$/, "", series)
            if (++count[series] <= 2) { sub(/seed=1/, "seed=2"); print } }'
      fi
    fi
    for keep in "${keeps[@]}"; do
      # the second seed only at the two most aggressive levels
      if [ "$seed" = 2 ] && [ "$keep" != 0.12 ] && [ "$keep" != 0.06 ]; then continue; fi
      local sparsity; sparsity=$(awk "BEGIN{printf \"%.2f\", 1-$keep}")
      local r1 r2 r4
      r1=$(awk "BEGIN{printf \"%.4f\", 9*$keep/10}")
      r2=$(awk "BEGIN{printf \"%.4f\", 9*$keep/11}")
      r4=$(awk "BEGIN{printf \"%.4f\", 9*$keep/13}")
      echo "lr_k$keep|study/fmnist_lr|rank=$r1 seed=$seed"
      echo "glr2_k$keep|study/fmnist_glr2|rank=$r2 seed=$seed"
      echo "glr4_k$keep|study/fmnist_glr4|rank=$r4 seed=$seed"
      echo "unstructured_k$keep|study/fmnist_unstructured|sparsity=$sparsity seed=$seed"
      echo "channel_k$keep|study/fmnist_channel|sparsity=$sparsity seed=$seed"
      echo "pattern_k$keep|study/fmnist_pattern|sparsity=$sparsity seed=$seed"
      echo "pattern_kernel_k$keep|study/fmnist_pattern_kernel|sparsity=$sparsity seed=$seed"
    done
  done
  return 0
}

mkdir -p "$STUDY/finetune"
failed=0
while IFS='|' read -r name experiment overrides; do
  seed=${overrides##*seed=}; seed=${seed%% *}
  dir="$STUDY/finetune/${name}_s$seed"
  [[ "$dir" =~ $FILTER ]] || continue
  if grep -q '"status": "completed"' "$dir/summary.json" 2>/dev/null; then continue; fi
  ckpt=null; ls "$dir"/checkpoints/*.ckpt >/dev/null 2>&1 && ckpt=auto
  echo "== $(date +%T) $dir"
  # shellcheck disable=SC2086
  "$PY" src/train.py experiment="$experiment" $overrides $FINETUNE pretrained="$checkpoint" \
    name="frontier_$name" hydra.run.dir="$dir" ckpt_path=$ckpt > "$dir.log" 2>&1 \
    || { echo "   failed: see $dir.log"; failed=$((failed + 1)); }
done < <(jobs)
echo "frontier: $failed job(s) failed"
[ "$failed" = 0 ]
