#!/usr/bin/env bash
# Plans of the frontier study: planned GLR (cycle budgets on imc64 and imc256) and planned
# array-wise pattern pruning at equal cycles (imc64), from the dense checkpoint.
set -uo pipefail
PY=${PY:-.venv/bin/python}
STUDY=${1:-outputs/frontier}
ck=$STUDY/dense/checkpoints/last.ckpt  # the dense run's final epoch (docs/reliability.md)
mkdir -p $STUDY/plans
plan() { # name hw ratio extra...
  local name=$1 hw=$2 ratio=$3; shift 3
  [ -f $STUDY/plans/$name.yaml ] || "$PY" src/plan.py data=fashion_mnist pretrained=$ck hw=$hw \
    plan.budget.metric=cycles plan.budget.ratio=$ratio plan.out=$STUDY/plans/$name.yaml \
    hydra.run.dir=$STUDY/plans/$name.run "$@" > $STUDY/plans/$name.log 2>&1 || echo "plan $name failed"
}
plan glr_imc64_c0.90 imc64 0.90
plan glr_imc64_c0.75 imc64 0.75
plan glr_imc64_c0.60 imc64 0.60
plan glr_imc64_c0.50 imc64 0.50
plan glr_imc256_c0.93 imc256 0.93
plan glr_imc256_c0.87 imc256 0.87
plan pattern_imc64_c0.75 imc64 0.75 compression=prune_pattern compression.pattern_dim=input_channel
plan pattern_imc64_c0.50 imc64 0.50 compression=prune_pattern compression.pattern_dim=input_channel
