#!/usr/bin/env bash
# The paper's experiments as SLURM job arrays (one Hydra multirun = one array per comparison).
# Usually called through launch/sweep_paper_resnet20.sh or launch/sweep_paper_wrn16_4.sh.
#
#   launch/sweep_paper.sh dense    [overrides...]  # stage 1: dense model(s), one per seed
#   launch/sweep_paper.sh compress [overrides...]  # stage 2: LR, GLR and pruning sweeps, fine-tuned
#                                                  #          from PRETRAINED (a dense checkpoint)
#   launch/sweep_paper.sh all      [overrides...]  # stage 1, then stage 2 from its checkpoint
#
# Each stage blocks until its arrays finish (run it in tmux/screen or with nohup on the login
# node); every sweep folder gets sweep_summary.csv and the accuracy-vs-cost plots.
# Extra arguments are Hydra overrides added to every command, e.g. hydra.launcher.partition=gpu.
#
# Environment (defaults in brackets; lists are Hydra sweep lists, comma separated):
#   DENSE_EXPERIMENT     experiment config of stage 1               [paper/resnet20_cifar10_dense]
#   FINETUNE_EXPERIMENT  experiment config of stage 2               [paper/resnet20_cifar10_finetune]
#   PRETRAINED           dense checkpoint for stage 2 (required by `compress`)
#   SEEDS                [0]        RANKS_LR  [0.125,0.25,0.5]   RANKS_GLR [0.125,0.25,0.5]
#   GLR_GROUPS           [2,4,8]    SPARSITIES [0.5,0.7,0.9]
#   PRUNING              [prune_unstructured,prune_channel,prune_pattern]
#   HW                   crossbar preset(s) for the cost report; every value retrains    [the experiment's]
#   LAUNCHER             hydra/launcher: slurm | submitit_local | local     [slurm]
#   OUT                  folder of the sweep folders                         [outputs/paper/<stage 1 experiment>/<time>]
#   PYTHON               interpreter                                          [.venv/bin/python]
#   DRY_RUN=1            print the commands instead of running them
set -euo pipefail
cd "$(dirname "$0")/.."

STAGE=${1:-}
[ $# -gt 0 ] && shift
DENSE_EXPERIMENT=${DENSE_EXPERIMENT:-paper/resnet20_cifar10_dense}
FINETUNE_EXPERIMENT=${FINETUNE_EXPERIMENT:-paper/resnet20_cifar10_finetune}
SEEDS=${SEEDS:-0}
RANKS_LR=${RANKS_LR:-0.125,0.25,0.5}
RANKS_GLR=${RANKS_GLR:-0.125,0.25,0.5}
GLR_GROUPS=${GLR_GROUPS:-2,4,8}
SPARSITIES=${SPARSITIES:-0.5,0.7,0.9}
PRUNING=${PRUNING:-prune_unstructured,prune_channel,prune_pattern}
HW=${HW:-}
LAUNCHER=${LAUNCHER:-slurm}
OUT=${OUT:-outputs/paper/${DENSE_EXPERIMENT//\//_}/$(date +%Y-%m-%d_%H-%M-%S)}
PYTHON=${PYTHON:-.venv/bin/python}

run() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
  if [ "${DRY_RUN:-0}" != 1 ]; then
    "$@"
  fi
}

# One multirun (= one SLURM array) into $OUT/<sweep name>.
sweep() {
  local name=$1
  shift
  local hw=()
  [ -n "$HW" ] && hw=("hw=$HW")
  run "$PYTHON" src/train.py -m "hydra/launcher=$LAUNCHER" "hydra.sweep.dir=$OUT/$name" "$@" ${hw[@]+"${hw[@]}"} ${EXTRA[@]+"${EXTRA[@]}"}
}

stage_dense() {
  # test_ckpt=last: the dense accuracy reported is that of last.ckpt (the final epoch), which
  # the compress stage loads
  sweep dense "experiment=$DENSE_EXPERIMENT" compression=none "seed=$SEEDS" test_ckpt=last
}

stage_compress() {
  local pretrained=${1:-${PRETRAINED:-}}
  if [ -z "$pretrained" ]; then
    echo "sweep_paper.sh compress: set PRETRAINED=<dense checkpoint> (e.g. <dense sweep>/0/checkpoints/last.ckpt)" >&2
    exit 2
  fi
  local common=("experiment=$FINETUNE_EXPERIMENT" "pretrained=$pretrained" "seed=$SEEDS")
  sweep lr "${common[@]}" compression=lr "rank=$RANKS_LR"
  sweep glr "${common[@]}" compression=glr "group=$GLR_GROUPS" "rank=$RANKS_GLR"
  sweep pruning "${common[@]}" "compression=$PRUNING" "sparsity=$SPARSITIES"
}

EXTRA=("$@")
case "$STAGE" in
  dense) stage_dense ;;
  compress) stage_compress ;;
  all)
    stage_dense
    stage_compress "$OUT/dense/0/checkpoints/last.ckpt"
    ;;
  *)
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
