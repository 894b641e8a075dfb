"""Training-speed options that are not ``lightning.pytorch.Trainer`` arguments.

They live in the trainer config (``conf/trainer/*.yaml``) next to the Trainer's own arguments:

- ``trainer.memory_format``: ``channels_last`` (default) or ``contiguous`` (NCHW). The model's
  4-D weights and every batch are converted; on CPU, oneDNN then runs direct NHWC conv kernels
  (grouped GLR convs included) instead of reordering layouts around every conv (measured in
  docs/benchmarks.md). Outputs agree with NCHW within float rounding; checkpoints load either way.
- ``trainer.compile``: ``false`` (default) or ``true``: ``torch.compile`` (inductor) of the
  LightningModule's forward. It pays off only for runs much longer than the compile time.

:func:`performance_options` reads and checks the two keys, :func:`trainer_config` returns the
trainer config without them (for ``hydra.utils.instantiate``), :func:`prepare_model` applies them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, open_dict
from torch import nn

MEMORY_FORMATS: dict[str, torch.memory_format] = {
    "channels_last": torch.channels_last,
    "contiguous": torch.contiguous_format,
}
PERFORMANCE_KEYS = ("memory_format", "compile")


@dataclass(frozen=True)
class PerformanceOptions:
    """Checked values of ``trainer.memory_format`` and ``trainer.compile``.

    ``compile_backend`` is the ``torch.compile`` backend (not a config key: ``inductor`` generates
    the fast kernels; tests use ``eager`` to check graph capture without code generation).
    """

    memory_format: str = "channels_last"
    compile: bool = False
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(
                f"trainer.memory_format={self.memory_format!r} is not valid; "
                f"choose one of {list(MEMORY_FORMATS)}"
            )
        if not isinstance(self.compile, bool):
            raise ValueError(f"trainer.compile must be true or false, got {self.compile!r}")

    @property
    def torch_memory_format(self) -> torch.memory_format:
        """The ``torch.memory_format`` of :attr:`memory_format`."""
        return MEMORY_FORMATS[self.memory_format]


def performance_options(trainer_cfg: Any) -> PerformanceOptions:
    """Read ``memory_format`` and ``compile`` from the trainer config (missing: the defaults)."""
    values = {key: trainer_cfg.get(key) for key in PERFORMANCE_KEYS}
    return PerformanceOptions(**{key: value for key, value in values.items() if value is not None})


def trainer_config(trainer_cfg: DictConfig) -> DictConfig:
    """A copy of the trainer config without :data:`PERFORMANCE_KEYS`, for ``instantiate``.

    The copy keeps its parent, so interpolations such as ``${paths.output_dir}`` still resolve.
    """
    node = copy.deepcopy(trainer_cfg)
    with open_dict(node):
        for key in PERFORMANCE_KEYS:
            node.pop(key, None)
    return node


def prepare_model(module: nn.Module, options: PerformanceOptions) -> nn.Module:
    """Apply ``options`` to ``module`` in place (after compression) and return it.

    The memory format converts every 4-D parameter and buffer (pruning's ``weight_orig`` and
    ``weight_mask`` included); the state dict keys are unchanged, so checkpoints load into either
    format. ``compile`` uses :meth:`torch.nn.Module.compile` on ``module`` itself: pass the
    LightningModule, whose forward calls ``module.model``. ``module.model`` then stays eager, so
    the crossbar estimator, which calls it with forward hooks on the R and L convs of low-rank
    pairs, sees every layer whatever runs in training.
    """
    module.to(memory_format=options.torch_memory_format)  # type: ignore[call-overload]  # documented, missing from the overloads
    if options.compile:
        module.compile(backend=options.compile_backend)
    return module


def memory_format_of(module: nn.Module) -> torch.memory_format:
    """The layout of ``module``'s conv weights: ``channels_last`` or ``contiguous_format``.

    Decided by the first 4-D parameter for which the two layouts differ (a 1x1 kernel or a
    single input channel is both); ``contiguous_format`` when there is none.
    """
    for parameter in module.parameters():
        if parameter.dim() != 4:
            continue
        nchw = parameter.is_contiguous()
        nhwc = parameter.is_contiguous(memory_format=torch.channels_last)
        if nchw != nhwc:
            return torch.channels_last if nhwc else torch.contiguous_format
    return torch.contiguous_format
