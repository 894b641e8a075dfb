"""Sparsity schedules: one-shot, or the gradual cubic ramp of Zhu & Gupta (2017), per epoch."""

from __future__ import annotations

from dataclasses import dataclass


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
