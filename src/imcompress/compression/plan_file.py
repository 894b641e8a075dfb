"""The plan file of ``src/plan.py``: one typed :class:`Plan`, read, validated and written here.

A plan gives every planned conv a **method and that method's own per-layer settings** (the
fields of the method's ``layer_type``, e.g. ``rank``/``groups`` for ``glr``, ``sparsity`` for a
pruning method; ``method: none`` keeps the conv dense). The planner writes it
(:func:`write_plan`, atomic) and compression reads it (:func:`read_plan`); both share this
module, so the format has one definition. Every field's type is checked on reading and a bad
one is reported with the layer, the field, the value and the expected type. Plans written
before the format had per-layer methods (top-level ``method``, ``dense: true``, ``group``) are
read too. See docs/planner.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from imcompress.runs import atomic

__all__ = [
    "COST_KEYS",
    "FORMAT",
    "Plan",
    "PlanLayer",
    "conv_digest",
    "read_plan",
    "settings_entry",
    "settings_from_entry",
    "write_plan",
]

FORMAT = 2  # version of the file layout (1: one method per plan, no `format` key)
COST_KEYS = ("cycles", "latency_us", "energy_uj", "arrays")  # per-layer costs on the plan's hw
LAYER_KEYS = ("method", "shape", *COST_KEYS, "error")  # every entry has these besides settings


@dataclass(frozen=True)
class PlanLayer:
    """One planned conv: its ``method`` (``none`` = dense) and that method's ``settings``
    (an instance of the method's ``layer_type``; None for ``none``), the conv's weight
    ``shape``, its own ``costs`` on the plan's hw and its unweighted relative ``error``."""

    method: str
    settings: Any
    shape: tuple[int, ...]
    costs: dict[str, float | int] = field(default_factory=dict)
    error: float = 0.0


@dataclass
class Plan:
    """A per-layer compression plan (the YAML of docs/planner.md)."""

    model: str | None  # the model config's name the plan was made for
    input_shape: tuple[int, ...]  # (C, H, W) of one input image
    model_convs: int  # number of nn.Conv2d of the planned model
    model_digest: str  # hash of every conv's name and weight shape (see conv_digest)
    hw: str  # hw preset whose costs `predicted` and the per-layer costs are
    mapping: str  # sdk | vwsdk | im2col
    methods: list[str]  # the methods the plan chose from (besides `none`)
    options: dict[str, dict[str, Any]]  # per method: the options the plan depends on
    budget: dict[str, Any]  # metric, value (absolute) and, if given, ratio
    predicted: dict[str, float | int]  # whole-model totals on hw/mapping, plus `error`
    dense: dict[str, float | int]  # the dense model's totals on the same hw/mapping
    layers: dict[str, PlanLayer]
    sensitivity: str = "uniform"
    proxy: str = "weight"  # output (calibration data) | weight
    uniform: dict[str, Any] | None = None  # best single setting within the budget
    uniform_cheapest: dict[str, Any] | None = None  # when no single setting fits
    note: str = ""  # what a reader should know about `predicted` (e.g. which metric may differ)

    def to_dict(self) -> dict[str, Any]:
        """The YAML-ready mapping (enum members as their strings)."""
        layers = {name: _layer_entry(layer) for name, layer in self.layers.items()}
        head = {k: getattr(self, k) for k in _HEAD_KEYS}
        head["input_shape"] = [int(v) for v in self.input_shape]
        out = {"format": FORMAT, **head, "layers": layers}
        if self.uniform_cheapest is None:
            out.pop("uniform_cheapest")
        if not self.note:
            out.pop("note")
        return _plain(out)


_HEAD_KEYS = (
    "model",
    "input_shape",
    "model_convs",
    "model_digest",
    "hw",
    "mapping",
    "methods",
    "options",
    "budget",
    "predicted",
    "dense",
    "sensitivity",
    "proxy",
    "uniform",
    "uniform_cheapest",
    "note",
)


def conv_digest(model: nn.Module) -> tuple[int, str]:
    """Number of ``nn.Conv2d`` in ``model`` and a short hash of their names and weight shapes
    (two models with the same digest have the same convs under the same names)."""
    convs = [
        f"{name}:{list(m.weight.shape)}"
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    return len(convs), hashlib.sha256("\n".join(convs).encode()).hexdigest()[:16]


def settings_entry(settings: Any) -> dict[str, Any]:
    """The file fields of a method's per-layer settings (a dataclass instance, or None)."""
    if settings is None:
        return {}
    return {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}


def _layer_entry(layer: PlanLayer) -> dict[str, Any]:
    return {
        "method": layer.method,
        **settings_entry(layer.settings),
        "shape": [int(v) for v in layer.shape],
        **{k: layer.costs[k] for k in COST_KEYS if k in layer.costs},
        "error": float(layer.error),
    }


def _plain(value: Any) -> Any:
    """``value`` with enum members as strings and tuples as lists (for yaml.safe_dump)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _type_name(kind: Any) -> str:
    if isinstance(kind, type):
        return kind.__name__
    return str(kind).replace("typing.", "")


def _matches(value: Any, kind: Any) -> bool:
    """Whether ``value`` (read from YAML) has the annotated type ``kind`` (bool is no number)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, k) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return value in {m.value for m in kind} or isinstance(value, kind)
    if kind is str:
        return isinstance(value, str)
    return True  # containers etc.: the method's check_layers judges them


def settings_from_entry(
    layer_type: type | None, values: Mapping[str, Any]
) -> tuple[Any, list[str]]:
    """The method's settings built from a plan entry's fields, and the problems (unknown or
    missing fields, wrong types; each line names the field, the value and the expected type)."""
    if layer_type is None:
        extra = sorted(values)
        return None, [
            f"fields {extra} are not settings of this method (it has none)"
        ] if extra else []
    hints = typing.get_type_hints(layer_type)
    names = [f.name for f in dataclasses.fields(layer_type)]
    problems = [
        f"unknown field {key!r}; valid: {names}" for key in sorted(set(values) - set(names))
    ]
    problems += [f"missing field {name!r}" for name in names if name not in values]
    problems += [
        f"{name}: {values[name]!r} is not {_type_name(hints[name])}"
        for name in names
        if name in values and not _matches(values[name], hints[name])
    ]
    if problems:
        return None, problems
    return layer_type(**{name: values[name] for name in names}), []


def _check_head(raw: Mapping[str, Any]) -> list[str]:
    """Type problems of the plan's top-level fields."""
    expected: dict[str, Any] = {
        "model": str | None,
        "hw": str,
        "mapping": str,
        "model_convs": int,
        "model_digest": str,
        "methods": list,
        "options": dict,
        "budget": dict,
        "predicted": dict,
        "dense": dict,
    }
    problems = []
    for key, kind in expected.items():
        value = raw.get(key)
        ok = isinstance(value, kind) if kind in (list, dict) else _matches(value, kind)
        if not ok:
            problems.append(f"{key}: {value!r} is not {_type_name(kind)}")
    shape = raw.get("input_shape")
    if not isinstance(shape, list) or not all(_matches(v, int) for v in shape):
        problems.append(f"input_shape: {shape!r} is not a list of int")
    return problems


def _upgrade_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """A plan of format 1 (one top-level ``method``) in the current layout."""
    method = raw.get("method")
    out = {k: v for k, v in raw.items() if k not in ("method", "options")}
    out["methods"] = [method]
    out["options"] = {method: raw.get("options") or {}}
    out.setdefault("model_convs", 0)  # unknown: format 1 did not record the model's convs
    out.setdefault("model_digest", "")
    layers = raw.get("layers")
    if isinstance(layers, dict):
        upgraded = {}
        for name, entry in layers.items():
            if isinstance(entry, dict):
                entry = dict(entry)
                dense = entry.pop("dense", False)
                if "group" in entry:
                    entry["groups"] = entry.pop("group")
                entry["method"] = method if dense is False else "none"
                if dense not in (True, False):
                    entry["method"] = f"<dense: {dense!r} is not bool>"
            upgraded[name] = entry
        out["layers"] = upgraded
    return out


def _parse_layer(name: str, entry: Any) -> tuple[PlanLayer | None, list[str]]:
    """One layer entry, typed; problems prefixed with the layer name."""
    from imcompress.compression.registry import METHODS

    if not isinstance(entry, dict):
        return None, [f"{name}: entry must be a mapping, got {entry!r}"]
    method = entry.get("method")
    if method not in METHODS:
        return None, [f"{name}: method {method!r} is not registered; valid: {sorted(METHODS)}"]
    problems = []
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_matches(v, int) for v in shape):
        problems.append(f"{name}: shape: {shape!r} is not a list of int")
    costs = {k: entry[k] for k in COST_KEYS if k in entry}
    problems += [
        f"{name}: {k}: {v!r} is not float" for k, v in costs.items() if not _matches(v, float)
    ]
    error = entry.get("error", 0.0)
    if not _matches(error, float):
        problems.append(f"{name}: error: {error!r} is not float")
    values = {k: v for k, v in entry.items() if k not in LAYER_KEYS}
    settings, bad = settings_from_entry(METHODS[method].layer_type, values)
    problems += [f"{name}: {line}" for line in bad]
    if problems:
        return None, problems
    assert isinstance(shape, list)
    return PlanLayer(str(method), settings, tuple(shape), costs, float(error)), []


def read_plan(path: str | Path) -> Plan:
    """Read and validate a plan file (FileNotFoundError / ValueError naming every problem)."""
    file = Path(path).expanduser()
    where = f"compression.plan={str(path)!r}"
    if not file.is_file():
        raise FileNotFoundError(f"{where}: no such plan file")
    try:
        raw = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"{where} is not valid YAML: {error}") from None
    if (
        not isinstance(raw, dict)
        or "layers" not in raw
        or not ("methods" in raw or "method" in raw)
    ):
        raise ValueError(
            f"{where} is not a plan: it needs the keys ['methods', 'layers'] (write one with "
            "src/plan.py)"
        )
    if "format" not in raw:
        raw = _upgrade_v1(raw)
    elif raw["format"] != FORMAT:
        raise ValueError(f"{where}: format {raw['format']!r} is not supported; valid: {FORMAT}")
    problems = _check_head(raw)
    layers: dict[str, PlanLayer] = {}
    if not isinstance(raw["layers"], dict) or not raw["layers"]:
        problems.append("layers: must be a non-empty mapping of layer names to entries")
    else:
        for name, entry in raw["layers"].items():
            layer, bad = _parse_layer(str(name), entry)
            problems += bad
            if layer is not None:
                layers[str(name)] = layer
    if problems:
        listing = "\n  ".join(problems)
        raise ValueError(f"{where}: {len(problems)} invalid field(s):\n  {listing}")
    head = {k: raw.get(k) for k in _HEAD_KEYS}
    head["input_shape"] = tuple(raw["input_shape"])
    head["sensitivity"] = head["sensitivity"] or "uniform"
    head["proxy"] = head["proxy"] or "weight"
    head["note"] = head["note"] or ""
    return Plan(**head, layers=layers)


def write_plan(plan: Plan, path: str | Path) -> Path:
    """Write ``plan`` to ``path`` atomically (:func:`imcompress.runs.atomic.write_text`: a temporary
    file in the same folder, fsync'ed, renamed over ``path``): a failure (a full disk) leaves
    no plan file, or the previous one, never a partial one."""
    file = Path(path).expanduser()
    file.parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_text(
        file, yaml.safe_dump(plan.to_dict(), sort_keys=False, default_flow_style=None)
    )
