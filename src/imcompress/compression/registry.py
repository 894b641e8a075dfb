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
   same for all layers from the config. **Per-layer plans hook in here**: a mapping of layer
   names to settings may replace or restrict these before step 4;
4. :meth:`CompressionMethod.check_layers` lists every layer that cannot take its settings; if
   any, one ValueError names them all and nothing is changed;
5. :meth:`CompressionMethod.apply` converts the layers in place and returns a
   :class:`Conversion` (per-layer records; a pruner and its schedule for mask methods).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from torch import nn

from imcompress.compression.pruning.base import MaskedPruner
from imcompress.compression.schedule import SparsitySchedule
from imcompress.compression.schemas import CompressionConfig

if TYPE_CHECKING:
    from hydra.core.config_store import ConfigStore

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
    """One ValueError listing every problem (no-op when there is none)."""
    if problems:
        listing = "\n  ".join(problems)
        raise ValueError(
            f"compression={method}: invalid for {len(problems)} layer(s), "
            f"nothing was changed:\n  {listing}"
        )
