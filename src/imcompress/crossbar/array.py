"""One crossbar array: its size and how many cells a weight takes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Crossbar:
    """A ``rows`` x ``cols`` crossbar (word lines x bit lines).

    A weight of ``weight_bits`` is sliced over ``ceil(weight_bits / cell_bits)`` adjacent columns
    (twice as many with ``differential``), so only ``weight_cols`` columns hold distinct weights.
    """

    rows: int
    cols: int
    weight_bits: int = 1
    cell_bits: int = 1
    differential: bool = False

    def __post_init__(self) -> None:
        for field in ("rows", "cols", "weight_bits", "cell_bits"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Crossbar.{field} must be an integer >= 1, got {value!r}")
        if self.weight_cols < 1:
            raise ValueError(
                f"Crossbar.cols={self.cols} is smaller than the {self.slices} columns one weight "
                f"needs (weight_bits={self.weight_bits}, cell_bits={self.cell_bits}, "
                f"differential={self.differential})"
            )

    @property
    def slices(self) -> int:
        """Physical columns per weight."""
        per_sign = -(-self.weight_bits // self.cell_bits)
        return per_sign * (2 if self.differential else 1)

    @property
    def weight_cols(self) -> int:
        """Columns usable for distinct weights: ``floor(cols / slices)``."""
        return self.cols // self.slices
