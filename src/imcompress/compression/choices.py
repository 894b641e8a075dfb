"""Turning a config string into one member of an option's vocabulary (an ``enum.StrEnum``).

Every option with a fixed set of values is one ``StrEnum`` next to the code that implements
it (``GroupDim`` in :mod:`~imcompress.compression.factorization`, ``Schedule`` in
:mod:`~imcompress.compression.schedule`, ...). The same enum types the schema field, so
OmegaConf rejects a bad value when Hydra composes the config, and :func:`parse_choice` gives
the same answer for configs that do not come from Hydra. Member names equal the config
strings because OmegaConf looks members up by name; names that are Python keywords (``in``,
``global``) are why the enums use the functional API.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

ChoiceT = TypeVar("ChoiceT", bound=StrEnum)


def parse_choice(kind: type[ChoiceT], value: object, name: str) -> ChoiceT:
    """``value`` as a member of ``kind``; ValueError naming the option ``name`` and the choices."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and value in kind.__members__:
        return kind[value]
    raise ValueError(f"{name}={value!r} is not valid; choose one of {[m.value for m in kind]}")
