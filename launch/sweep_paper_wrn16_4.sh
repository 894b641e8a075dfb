#!/usr/bin/env bash
# The paper's WRN-16-4 sweeps on a SLURM cluster (GPU nodes advised): see launch/sweep_paper.sh.
#   launch/sweep_paper_wrn16_4.sh all hydra.launcher.partition=gpu hydra.launcher.gpus_per_node=1 trainer=gpu
set -euo pipefail
export DENSE_EXPERIMENT=${DENSE_EXPERIMENT:-paper/wrn16_4_cifar100_dense}
export FINETUNE_EXPERIMENT=${FINETUNE_EXPERIMENT:-paper/wrn16_4_cifar100_finetune}
exec "$(dirname "$0")/sweep_paper.sh" "$@"
