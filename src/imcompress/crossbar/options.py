"""The option vocabularies of the cost model: one ``StrEnum`` per option, nothing else.

Each enum is the single definition of its option: the ``hw`` schema fields are typed with them
(so OmegaConf rejects a bad value when Hydra composes the config), ``map_layers`` and
``build_report`` parse their string arguments with :func:`parse_option`, and the report keys use
their values. Members compare equal to their strings (``Method.sdk == "sdk"``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TypeVar


class Method(enum.StrEnum):
    """Weight mapping (docs/cost-model.md#im2col, #sdk, #vw-sdk)."""

    im2col = "im2col"
    sdk = "sdk"
    vwsdk = "vwsdk"


class Search(enum.StrEnum):
    """VW-SDK window search: the true minimum, or the published code's selection
    (docs/cost-model.md#vw-sdk-search)."""

    exact = "exact"
    reference = "reference"


class Convention(enum.StrEnum):
    """How output sizes and parallel windows are counted (docs/cost-model.md#conventions)."""

    physical = "physical"
    reference = "reference"
    reference_floor = "reference_floor"


class LowRankMapping(enum.StrEnum):
    """How a low-rank pair's ``L`` is mapped (docs/cost-model.md#low-rank-pair)."""

    aligned = "aligned"
    naive = "naive"


Option = TypeVar("Option", bound=enum.StrEnum)


def parse_option(kind: type[Option], value: object, label: str) -> Option:
    """``value`` as a member of ``kind``; ValueError naming ``label``, the value and the choices."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value))
    except ValueError:
        raise ValueError(f"{label}={value!r}, valid: {[m.value for m in kind]}") from None


def parse_methods(values: Iterable[object], label: str = "mappings") -> tuple[Method, ...]:
    """Every entry of ``values`` as a :class:`Method`; ValueError listing the unknown ones."""
    values = list(values)
    unknown = [v for v in values if str(v) not in Method.__members__]
    if unknown:
        raise ValueError(f"unknown {label} {unknown}; valid: {[m.value for m in Method]}")
    return tuple(Method(str(v)) for v in values)
