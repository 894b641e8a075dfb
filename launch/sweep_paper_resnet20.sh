#!/usr/bin/env bash
# The paper's ResNet-20 / CIFAR-10 sweeps on a SLURM cluster: see launch/sweep_paper.sh.
#   launch/sweep_paper_resnet20.sh all hydra.launcher.partition=gpu
#   PRETRAINED=<dense last.ckpt> launch/sweep_paper_resnet20.sh compress
set -euo pipefail
export DENSE_EXPERIMENT=${DENSE_EXPERIMENT:-paper/resnet20_cifar10_dense}
export FINETUNE_EXPERIMENT=${FINETUNE_EXPERIMENT:-paper/resnet20_cifar10_finetune}
exec "$(dirname "$0")/sweep_paper.sh" "$@"
