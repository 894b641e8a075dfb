"""When pruning masks are computed: one-shot, or the gradual cubic ramp of Zhu & Gupta (2017).

Pure data and arithmetic, no training framework: :class:`SparsitySchedule` is what a pruning
config asks for; :meth:`SparsitySchedule.resolve` turns it into a :class:`CubicSchedule` once
the run length is known (the training layer calls it at fit start, see
``imcompress.training.callbacks.pruning.PruningCallback``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# `schedule` option: masks from the current weights before training | cubic ramp during training.
Schedule = StrEnum("Schedule", ["oneshot", "gradual"])


@dataclass(frozen=True)
class CubicSchedule:
    """``s(t) = s_f + (s_i - s_f) * (1 - (t - t0) / (end - t0))^3`` for ``t0 <= t <= end``.

    Epochs are the time unit; masks change only every ``frequency`` epochs from ``start_epoch``
    (``t`` is rounded down to that grid) and stay at ``final`` from ``end_epoch`` on. Before
    ``start_epoch`` there is no pruning (:meth:`sparsity_at` returns None).
    """

    final: float
    initial: float = 0.0
    start_epoch: int = 0
    end_epoch: int = 0
    frequency: int = 1

    def sparsity_at(self, epoch: int) -> float | None:
        """Target sparsity for ``epoch`` (None before ``start_epoch``)."""
        if epoch < self.start_epoch:
            return None
        span = self.end_epoch - self.start_epoch
        if span <= 0 or epoch >= self.end_epoch:
            return self.final
        step = (epoch - self.start_epoch) // self.frequency * self.frequency
        progress = step / span
        return self.final + (self.initial - self.final) * (1.0 - progress) ** 3


def default_end_epoch(start_epoch: int, max_epochs: int) -> int:
    """End of the ramp when the config leaves it open: half-way through training."""
    return max(start_epoch, max_epochs // 2)


@dataclass(frozen=True)
class SparsitySchedule:
    """The schedule a pruning config asks for, before the number of epochs is known.

    ``kind=oneshot``: the final masks are set by ``apply_compression``; nothing changes during
    training. ``kind=gradual``: ramp from ``initial`` to ``final`` between ``start_epoch`` and
    ``end_epoch`` (None: half of the run), every ``frequency`` epochs.
    """

    final: float
    kind: Schedule = Schedule["oneshot"]
    initial: float = 0.0
    start_epoch: int = 0
    end_epoch: int | None = None
    frequency: int = 1

    @property
    def gradual(self) -> bool:
        """True when masks change during training."""
        return self.kind == Schedule["gradual"]

    def resolve(self, max_epochs: int | None) -> CubicSchedule | None:
        """The cubic ramp for a run of ``max_epochs`` (None: one-shot, nothing to drive).

        ``end_epoch=None`` becomes :func:`default_end_epoch`; ValueError when that needs an
        unbounded ``max_epochs`` or when ``end_epoch`` is never reached.
        """
        if not self.gradual:
            return None
        bounded = max_epochs is not None and max_epochs > 0
        end = self.end_epoch
        if end is None:
            if max_epochs is None or not bounded:
                raise ValueError(
                    "gradual pruning with compression.end_epoch=null needs trainer.max_epochs"
                )
            end = default_end_epoch(self.start_epoch, max_epochs)
        if max_epochs is not None and bounded and end >= max_epochs:
            raise ValueError(
                f"compression.end_epoch={end} is not reached with trainer.max_epochs={max_epochs};"
                f" valid: {self.start_epoch}..{max_epochs - 1}"
            )
        return CubicSchedule(
            final=self.final,
            initial=self.initial,
            start_epoch=self.start_epoch,
            end_epoch=end,
            frequency=self.frequency,
        )
