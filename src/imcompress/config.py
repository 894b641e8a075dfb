"""Config-store registration and the checks that run before any expensive work."""

from __future__ import annotations

from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.object_type import ObjectType
from omegaconf import DictConfig, OmegaConf

from imcompress.analog.schema import register_analog_schema
from imcompress.compression import register_compression_schemas
from imcompress.crossbar.config import HardwareConfig, register_hw_schema

SCHEMA_PREFIX = "base_"  # ConfigStore names of the structured schemas that YAMLs extend


def register_configs() -> None:
    """Register the structured schemas that validate the ``hw``, ``compression`` and ``analog`` groups,
    and the ``imcompress.config_groups`` resolver of the ``--help`` page."""
    store = ConfigStore.instance()
    register_hw_schema(store)
    register_compression_schemas(store)
    register_analog_schema(store)
    OmegaConf.register_new_resolver("imcompress.config_groups", config_groups_help, replace=True)


def config_groups_help() -> str:
    """``group: option, ...`` for every group the running script's config uses.

    The ``--help`` listing of ``conf/hydra/help/imcompress.yaml``: Hydra's own lists every
    group under ``conf/`` and the schemas (``base_*``) too.
    """
    loader = GlobalHydra.instance().config_loader()
    lines = []
    for group in sorted(HydraConfig.get().runtime.choices):
        if group == "hydra" or group.startswith("hydra/"):
            continue
        options = _group_options(loader, group)
        if options:
            lines.append(f"{group}: {', '.join(options)}")
    return "\n".join(lines)


def _group_options(loader: ConfigLoader, group: str, prefix: str = "") -> list[str]:
    options = [
        prefix + name
        for name in loader.get_group_options(group, ObjectType.CONFIG)
        if not name.startswith(SCHEMA_PREFIX)
    ]
    for sub in loader.get_group_options(group, ObjectType.GROUP):
        options += _group_options(loader, f"{group}/{sub}", f"{prefix}{sub}/")
    return options


def check_required(cfg: DictConfig) -> None:
    """Checks that cost nothing, run before any data or model is touched.

    Mandatory values (``???``) left unset, hardware values out of range (the ``base_hw`` schema
    catches typos and types at compose time; ranges are checked here), trainer numbers out of
    range (:func:`check_trainer`), a ``pretrained`` checkpoint or run folder that is missing or
    required but not given (:func:`check_pretrained`).
    """
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ValueError(
            f"required config values are not set: {', '.join(missing)}; pass them on the "
            f"command line, e.g. {missing[0]}=..."
        )
    if cfg.get("hw") is not None:
        HardwareConfig.from_cfg(cfg.hw)
    if cfg.get("trainer") is not None:
        check_trainer(cfg.trainer)
        from imcompress.training.performance import performance_options  # imports torch

        performance_options(cfg.trainer)  # trainer.memory_format / trainer.compile values
    check_pretrained(cfg)


def check_pretrained(cfg: DictConfig) -> None:
    """``pretrained``: auto (the dense stage, imcompress.training.dense_stage), none (from scratch), or a
    checkpoint file or run folder that exists; an explicit one where ``require_pretrained``."""
    from imcompress.compression.pretrained import AUTO, pretrained_choice, resolve_checkpoint

    choice = pretrained_choice(cfg.get("pretrained"))
    if cfg.get("require_pretrained") and choice in (None, AUTO):
        raise ValueError(
            f"this experiment fine-tunes a given dense model, pretrained={cfg.get('pretrained')!r}"
            " is not enough: pass pretrained=<checkpoint or run folder of a dense train.py run>, "
            "e.g. outputs/quickstart/runs/<time>"
        )
    if choice not in (None, AUTO):
        resolve_checkpoint(choice, announce=False)  # a missing file, an unfinished run folder


# Trainer numbers the pipeline depends on: name -> (what it accepts, predicate). ``None`` always
# means "Lightning's default" and passes. Booleans are never numbers here.
_INT_AT_LEAST_1 = ("an integer >= 1", lambda v: _is_int(v) and v >= 1)
_FRACTION_OR_COUNT = (
    "a fraction in (0, 1] or a batch count >= 1",
    lambda v: (_is_int(v) and v >= 1) or (_is_float(v) and 0.0 < v <= 1.0),
)
TRAINER_RANGES: dict[str, tuple[str, Any]] = {
    "max_epochs": _INT_AT_LEAST_1,  # also the cosine schedule's T_max (conf/train.yaml)
    "min_epochs": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "max_steps": ("-1 (no limit) or an integer >= 1", lambda v: _is_int(v) and (v == -1 or v >= 1)),
    "limit_train_batches": _FRACTION_OR_COUNT,
    "limit_val_batches": _FRACTION_OR_COUNT,  # val/acc picks the best checkpoint
    "limit_test_batches": _FRACTION_OR_COUNT,
    "log_every_n_steps": _INT_AT_LEAST_1,
    "check_val_every_n_epoch": _INT_AT_LEAST_1,
    "val_check_interval": _FRACTION_OR_COUNT,
    "num_sanity_val_steps": ("-1 (all) or an integer >= 0", lambda v: _is_int(v) and v >= -1),
    "accumulate_grad_batches": _INT_AT_LEAST_1,
    "num_nodes": _INT_AT_LEAST_1,
    "devices": (
        "-1 (all), an integer >= 1, 'auto' or a list of device ids",
        lambda v: (_is_int(v) and (v == -1 or v >= 1)) or isinstance(v, str) or _is_list(v),
    ),
    "gradient_clip_val": ("a number >= 0", lambda v: (_is_int(v) or _is_float(v)) and v >= 0),
    "fast_dev_run": (
        "true/false or an integer >= 0",
        lambda v: isinstance(v, bool) or (_is_int(v) and v >= 0),
    ),
}


def check_trainer(trainer: Any) -> None:
    """Range-check the trainer numbers the pipeline depends on, naming the value and the valid range.

    Lightning accepts some of these values (``max_epochs=-1`` trains forever) or rejects them
    only after the data is loaded; here they fail before anything runs.
    """
    problems = []
    for key, (valid, accepts) in TRAINER_RANGES.items():
        value = trainer.get(key)
        if value is not None and not accepts(value):
            problems.append(f"trainer.{key}={value!r}: must be {valid}")
    max_epochs, min_epochs = trainer.get("max_epochs"), trainer.get("min_epochs")
    every = trainer.get("check_val_every_n_epoch")
    if not problems and _is_int(max_epochs):
        if _is_int(every) and every > max_epochs:
            problems.append(
                f"trainer.check_val_every_n_epoch={every} > trainer.max_epochs={max_epochs}: "
                f"validation would never run (no val/acc, no best checkpoint); use 1..{max_epochs}"
            )
        if _is_int(min_epochs) and min_epochs > max_epochs:
            problems.append(
                f"trainer.min_epochs={min_epochs} > trainer.max_epochs={max_epochs}; use 0..{max_epochs}"
            )
    if problems:
        raise ValueError("invalid trainer settings:\n  " + "\n  ".join(problems))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, float)


def _is_list(value: Any) -> bool:
    return OmegaConf.is_list(value) or isinstance(value, (list, tuple))


def config_essentials(cfg: DictConfig) -> dict[str, Any]:
    """The fields that identify a job in summaries and dashboards."""
    compression = cfg.get("compression") or {}
    return {
        "name": cfg.get("name"),
        "model": cfg.model.get("name"),
        "data": cfg.data.get("name"),
        "compression": compression.get("method", "none"),
        "hw": cfg.get("hw", {}).get("name") if cfg.get("hw") is not None else None,
        "group": cfg.get("group"),
        "rank": cfg.get("rank"),
        "sparsity": cfg.get("sparsity"),
        "seed": cfg.get("seed"),
        "max_epochs": cfg.trainer.get("max_epochs") if "trainer" in cfg else None,
        "pretrained": cfg.get("pretrained"),
    }
