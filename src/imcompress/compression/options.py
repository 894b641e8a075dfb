"""Turn the ``compression`` config node into the method's checked, typed schema instance.

Accepts a DictConfig, a mapping or a schema dataclass. An unknown method or field, a value
outside an option's vocabulary and the method's own checks raise ValueError here, before any
module is touched; checks that need the model (groups dividing channels, ranks) are the
method's ``check_layers`` (:mod:`imcompress.compression.registry`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Any

from omegaconf import DictConfig, OmegaConf

from imcompress.compression.choices import parse_choice
from imcompress.compression.registry import get_method
from imcompress.compression.schemas import CompressionConfig


def _as_dict(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {"method": "none"}
    if isinstance(cfg, DictConfig):
        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict)
        return {str(k): v for k, v in container.items()}
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise ValueError(f"compression config must be a mapping, got {type(cfg).__name__}")


def _typed(schema: type[CompressionConfig], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with every option of a vocabulary (StrEnum field) as its enum member."""
    hints = typing.get_type_hints(schema)
    out = dict(values)
    for name, value in values.items():
        kind = hints.get(name)
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            out[name] = parse_choice(kind, value, f"compression.{name}")
    for name in ("include", "exclude"):
        if isinstance(out.get(name), str):
            out[name] = [out[name]]
    return out


def parse_options(cfg: Any) -> CompressionConfig:
    """The checked schema instance of ``cfg``'s method (a :class:`CompressionConfig` subclass)."""
    values = _as_dict(cfg)
    values["method"] = values.get("method") or "none"
    method = get_method(values["method"])
    known = {f.name for f in dataclasses.fields(method.schema)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown compression field(s) {unknown} for method={values['method']}; "
            f"valid: {sorted(known)}"
        )
    opts = method.schema(**_typed(method.schema, values))
    check_common(opts)
    method.check(opts)
    return opts


def check_common(opts: CompressionConfig) -> None:
    """ValueError for a bad value of the fields every method has."""
    for name, low in (("bn_recalibration_batches", 0), ("calibration_batches", 1)):
        value = getattr(opts, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"compression.{name} must be an integer >= {low}, got {value!r}")


def options_record(opts: CompressionConfig) -> dict[str, Any]:
    """JSON-ready dict of ``opts`` (vocabulary members as their strings)."""
    return {
        key: value.value if isinstance(value, Enum) else value
        for key, value in dataclasses.asdict(opts).items()
    }
