"""The registry of compression methods: one class per method holds its schema, checks and apply.

A method is a subclass of :class:`CompressionMethod` decorated with :func:`register_method`
(the pattern of timm's ``register_model``). Its module lives in
:mod:`imcompress.compression.methods`, which imports every module it holds, so adding a method
is one module there plus one YAML in ``conf/compression/`` (docs/adding-a-method.md).

:func:`imcompress.compression.apply_compression` drives every method the same way:

1. ``parse_options`` builds the method's ``schema`` dataclass from the config and calls
   :meth:`CompressionMethod.check` (checks that need no model);
2. the layers are selected (``include``/``exclude``, for schemas with selection fields);
3. :meth:`CompressionMethod.layer_settings` gives every selected layer its own settings, the
   same for all layers from the config. **Per-layer plans hook in here**: a plan file
   (:mod:`imcompress.compression.plan`) gives each planned layer a method and that method's
   settings (an instance of its :attr:`CompressionMethod.layer_type`), which then take steps 4
   and 5 of that method, exactly as a uniform config's settings do;
4. :meth:`CompressionMethod.check_layers` lists every layer that cannot take its settings; if
   any, one ValueError names them all and nothing is changed;
5. :meth:`CompressionMethod.apply` converts the layers in place and returns a
   :class:`Conversion` (per-layer records; a pruner and its schedule for mask methods).

The planner (:mod:`imcompress.planner`) asks each method for its per-layer candidates with
:meth:`CompressionMethod.plan_items`; a method without that hook cannot be planned.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from torch import nn

from imcompress.compression.pruning.base import MaskedPruner
from imcompress.compression.schedule import SparsitySchedule
from imcompress.compression.schemas import CompressionConfig
from imcompress.errors import ConfigError, group_problems

if TYPE_CHECKING:
    from hydra.core.config_store import ConfigStore

__all__ = [
    "METHODS",
    "CompressionMethod",
    "Conversion",
    "Targets",
    "describe",
    "get_method",
    "plannable_methods",
    "raise_problems",
    "register_compression_schemas",
    "register_method",
]

Targets = list[tuple[str, nn.Conv2d]]
OptionsT = TypeVar("OptionsT", bound=CompressionConfig)
SettingsT = TypeVar("SettingsT")


@dataclass
class Conversion:
    """What :meth:`CompressionMethod.apply` changed.

    ``layers``: one record per converted layer (keys ``name``, ``method``, ``shape``, ``rank``,
    ``groups``, ``params_before``, ``params_after``, ``sparsity``; None where not applicable).
    Mask methods also return their ``pruner`` and the ``schedule`` the training layer drives.
    """

    layers: list[dict[str, Any]] = field(default_factory=list)
    pruner: MaskedPruner | None = None
    schedule: SparsitySchedule | None = None


class CompressionMethod(ABC, Generic[OptionsT, SettingsT]):
    """One compression method: ``compression.method=<name>`` selects it.

    ``schema`` is the dataclass of its config node, stored in Hydra's ConfigStore as
    ``schema_name`` (default ``base_<name>``; methods may share one schema). ``SettingsT`` is
    what one layer needs (for example rank and groups); the config gives every selected layer
    the same settings and a per-layer plan may give each its own.
    """

    name: ClassVar[str]
    schema: ClassVar[type[CompressionConfig]]
    schema_name: ClassVar[str] = ""
    #: the dataclass of one layer's settings (``SettingsT``); plan files hold its fields
    layer_type: ClassVar[type | None] = None
    #: options a plan depends on: recorded in the plan and checked when it is applied
    plan_option_keys: ClassVar[tuple[str, ...]] = ()

    def check(self, opts: OptionsT) -> None:
        """Raise ValueError for option values that are wrong whatever the model."""

    @abstractmethod
    def layer_settings(self, opts: OptionsT, targets: Targets) -> dict[str, SettingsT]:
        """The settings of every target layer, by name, as the config gives them."""

    def check_layers(
        self, opts: OptionsT, targets: Targets, settings: Mapping[str, SettingsT]
    ) -> list[str]:
        """One line per layer that cannot take its settings (empty: all can)."""
        return []

    @abstractmethod
    def apply(
        self,
        model: nn.Module,
        targets: Targets,
        opts: OptionsT,
        settings: Mapping[str, SettingsT],
    ) -> Conversion:
        """Convert ``targets`` of ``model`` in place (called only after ``check_layers`` passed)."""

    def plan_items(self, opts: OptionsT, space: Any) -> list[Any]:
        """Planner hook: the candidates of every target of ``space`` (a
        :class:`imcompress.planner.items.PlanSpace`) as :class:`imcompress.planner.items.Item`
        s, each candidate's settings an instance of :attr:`layer_type`, candidate 0 dense
        (method ``none``). Build them with the helpers of :mod:`imcompress.planner.items`
        (``weight_items`` for any method that changes weights in place)."""
        raise ValueError(f"compression method {self.name!r} has no planner candidates")

    def uniform_settings(
        self, opts: OptionsT, shape: tuple[int, ...], grid: tuple[float, ...] = ()
    ) -> list[tuple[dict[str, Any], SettingsT]]:
        """Planner hook: the single settings a uniform config gives a layer of ``shape``,
        each with its label (e.g. ``{"sparsity": 0.5}``); the plan reports the best one that
        every layer can take within the budget. None by default."""
        return []

    def plan_options(self, opts: OptionsT) -> dict[str, Any]:
        """The :attr:`plan_option_keys` of ``opts`` as plain values (recorded in a plan)."""
        values = {key: getattr(opts, key) for key in self.plan_option_keys}
        return {k: v.value if isinstance(v, Enum) else v for k, v in values.items()}

    @classmethod
    def config_name(cls) -> str:
        """The ConfigStore name of :attr:`schema` in group ``compression``."""
        return cls.schema_name or f"base_{cls.name}"


MethodT = TypeVar("MethodT", bound=type[CompressionMethod[Any, Any]])

METHODS: dict[str, CompressionMethod[Any, Any]] = {}


def register_method(cls: MethodT) -> MethodT:
    """Class decorator: make ``cls`` selectable as ``compression.method=<cls.name>``."""
    existing = METHODS.get(cls.name)
    same_class = existing is not None and (
        (type(existing).__module__, type(existing).__qualname__)
        == (cls.__module__, cls.__qualname__)
    )  # the same class imported again (a module reload) replaces itself
    if existing is not None and not same_class:
        raise ValueError(
            f"compression method {cls.name!r} is already registered by "
            f"{type(existing).__module__}.{type(existing).__qualname__}"
        )
    METHODS[cls.name] = cls()
    return cls


def plannable_methods() -> list[str]:
    """Names of the registered methods that supply planner candidates."""
    return sorted(
        name
        for name, method in METHODS.items()
        if type(method).plan_items is not CompressionMethod.plan_items
    )


def get_method(name: object) -> CompressionMethod[Any, Any]:
    """The registered method ``name``; ValueError listing the registered ones."""
    method = METHODS.get(name) if isinstance(name, str) else None
    if method is None:
        raise ValueError(
            f"compression.method={name!r} is not valid; choose one of {sorted(METHODS)}"
        )
    return method


def register_compression_schemas(store: ConfigStore) -> None:
    """Store every registered method's schema in group ``compression`` (``base_lowrank``, ...)."""
    for method in METHODS.values():
        store.store(group="compression", name=method.config_name(), node=method.schema)


def describe(conv: nn.Conv2d) -> str:
    """``OC=.., IC=.., kernel=KxK`` of a conv, for error messages."""
    kernel = "x".join(str(s) for s in conv.kernel_size)
    return f"OC={conv.out_channels}, IC={conv.in_channels}, kernel={kernel}"


def raise_problems(problems: list[str], method: str) -> None:
    """One ConfigError listing every problem, layers with the same one on one line (no-op if none)."""
    lines = group_problems(problems)
    if len(lines) == 1:
        raise ConfigError(f"compression={method}: {lines[0]}; nothing was changed")
    if lines:
        listing = "\n  ".join(lines)
        raise ConfigError(f"compression={method}: nothing was changed:\n  {listing}")
