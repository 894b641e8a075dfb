"""One reader of a run folder (a ``train.py``/``estimate.py`` job folder) with one policy for bad files.

A run folder holds ``summary.json``, ``.hydra/{config,overrides,hydra}.yaml`` and
``checkpoints/``. :class:`RunFolder` reads each of them for every consumer (report.py, the
studies, the frontier, the analog study, ``evaluate.py``, the sweep launchers):

* **Corrupt or hand-edited records** (invalid or truncated JSON/YAML, ``NaN``, a list where an
  object belongs, ``test/acc: "high"``, a cost as a string) raise :class:`CorruptRecordError`
  naming the file and the field. Readers of many folders skip such a job and count it in their
  output (``skipped 1 run folder: <path>: summary.json field metrics/test/acc is 'high', not a
  number``); nothing is printed as if it were valid.
* **No code from files.** :meth:`RunFolder.config` refuses every ``_target_`` that is not a
  model or data-module class of the project (or of a package in ``IMCOMPRESS_TRUSTED_TARGETS``)
  before anything is instantiated; YAML is read with safe loaders only.
* **Paths inside a run folder resolve relative to the folder**, so a moved folder still finds its
  checkpoints, and a copy without ``checkpoints/`` is refused instead of silently reading the
  original's files.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from imcompress.runs.summary import SUMMARY_FILE

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from torch import nn

    from imcompress.compression import CompressionResult

CHECKPOINT_DIR = (
    "checkpoints"  # as imcompress.training.checkpoints (not imported: it loads Lightning)
)
LAST = "last.ckpt"
LAST_IN_FOLDER = f"{CHECKPOINT_DIR}/{LAST}"  # relative to the run folder
CONFIG_FILE = ".hydra/config.yaml"
OVERRIDES_FILE = ".hydra/overrides.yaml"
HYDRA_FILE = ".hydra/hydra.yaml"
# Sections of summary.json whose values are all numbers (or null; lists of numbers in metrics).
NUMBER_SECTIONS = ("metrics", "cost", "parameters")
OBJECT_SECTIONS = ("config", "best", "compression", "tested", "slurm", "identity")
NUMBER_FIELDS = {
    "best": ("val/acc",),
    "compression": ("params_before", "params_after", "model_params_before", "model_params_after",
                    "compression_ratio"),
    "tested": ("epoch", "global_step"),
}  # fmt: skip
# Config nodes the readers never instantiate (only a training job does, from its own config).
TRAINING_ONLY_NODES = ("hydra", "trainer", "callbacks", "logger", "optimizer", "scheduler")
ALLOWED_PACKAGES = ("imcompress",)
# What a saved config may build: models and data modules (base classes named, not imported).
ALLOWED_BASES = (
    "torch.nn.modules.module.Module",
    "lightning.pytorch.core.datamodule.LightningDataModule",
)
TRUSTED_TARGETS_VARIABLE = "IMCOMPRESS_TRUSTED_TARGETS"  # extra packages, comma-separated

Checkpoint = Literal["tested", "best", "last"]


class CorruptRecordError(ValueError):
    """A run folder's file cannot be read or holds a value of the wrong kind."""

    def __init__(self, file: Path, problem: str) -> None:
        super().__init__(f"{file}: {problem}")
        self.file = file
        self.problem = problem


class RefusedTargetError(ValueError):
    """A saved config names a ``_target_`` that reading the folder must not import or call."""


# --- summary.json ----------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_number(value: Any, where: str, file: Path, lists: bool = False) -> None:
    if value is None or _is_number(value):
        return
    if lists and isinstance(value, list) and all(_is_number(item) for item in value):
        return
    shown = "NaN/inf" if isinstance(value, float) else repr(value)
    raise CorruptRecordError(file, f"{SUMMARY_FILE} field {where} is {shown}, not a number")


def validate_summary(data: Any, file: Path) -> dict[str, Any]:
    """``data`` (parsed ``summary.json``) if every field has the kind the writers give it."""
    if not isinstance(data, dict):
        raise CorruptRecordError(
            file, f"{SUMMARY_FILE} holds a JSON {type(data).__name__}, not an object"
        )
    if not isinstance(data.get("status", ""), str):
        raise CorruptRecordError(
            file, f"{SUMMARY_FILE} field status is {data['status']!r}, not a string"
        )
    for section in (*NUMBER_SECTIONS, *OBJECT_SECTIONS):
        value = data.get(section)
        if value is not None and not isinstance(value, dict):
            raise CorruptRecordError(
                file, f"{SUMMARY_FILE} field {section} is {value!r}, not an object"
            )
    for section in NUMBER_SECTIONS:
        for key, value in (data.get(section) or {}).items():
            _check_number(value, f"{section}/{key}", file, lists=section == "metrics")
    for section, keys in NUMBER_FIELDS.items():
        for key in keys:
            _check_number((data.get(section) or {}).get(key), f"{section}/{key}", file)
    for key in ("epochs", "wall_time_s"):
        _check_number(data.get(key), key, file)
    return data


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _read_text(file: Path) -> str | None:
    """The text of ``file``; None when missing; CorruptRecordError when it cannot be read."""
    try:
        return file.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise CorruptRecordError(file, f"cannot be read ({error})") from None


def summary_if_readable(folder: Path) -> dict[str, Any]:
    """``folder``'s ``summary.json`` unvalidated; {} when it is missing, unreadable or not a JSON
    object. For callers that only ask whether a job finished and treat a damaged record as none
    (resume, the dense stage, the study runner); every other reader uses :func:`read_summary`."""
    try:
        data = json.loads((Path(folder) / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_summary(file: Path) -> dict[str, Any] | None:
    """The validated ``summary.json`` at ``file``; None when there is none."""
    text = _read_text(file)
    if text is None:
        return None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        size = len(text.encode())
        raise CorruptRecordError(
            file, f"is not valid JSON ({size} bytes; truncated or hand-edited: {error})"
        ) from None
    return validate_summary(data, file)


# --- saved configs: no code ------------------------------------------------------------------


def trusted_packages(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The project's package plus the comma-separated ``IMCOMPRESS_TRUSTED_TARGETS``."""
    extra = [item.strip() for item in environ.get(TRUSTED_TARGETS_VARIABLE, "").split(",")]
    return (*ALLOWED_PACKAGES, *(item.rstrip(".") for item in extra if item))


def _in_package(module: str, packages: Iterable[str]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


def _locate(path: str) -> Any:
    """The object named ``a.b.C`` (modules imported as needed); raises ImportError/AttributeError."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            found = getattr(found, attribute)
        return found
    raise ImportError(f"no module in {path!r}")


def _allowed_kind(found: Any) -> bool:
    """A class whose instances are models or data modules (checked by name: nothing imported)."""
    if not inspect.isclass(found):
        return False
    return any(f"{base.__module__}.{base.__qualname__}" in ALLOWED_BASES for base in found.__mro__)


def check_target(target: Any, key: str, file: Path, packages: tuple[str, ...]) -> None:
    """Raise :class:`RefusedTargetError` unless ``target`` names a model or data-module class
    defined in one of ``packages`` (the name's package is checked before anything is imported;
    functions, and classes of other kinds, are refused: they could write files or run code)."""
    allowed = ", ".join(f"{package}.*" for package in packages)

    def refuse(why: str) -> RefusedTargetError:
        return RefusedTargetError(
            f"refused: {key}={target} in {file} {why} (allowed: {allowed} model and data-module "
            f"classes; trust more packages with {TRUSTED_TARGETS_VARIABLE}=pkg1,pkg2). Nothing "
            "of that config was run."
        )

    if not isinstance(target, str) or "${" in target:
        raise refuse("is not a plain class name")
    if not _in_package(target, packages):
        raise refuse("is not an allowed class")
    try:
        found = _locate(target)
    except (ImportError, AttributeError) as error:
        raise refuse(f"cannot be found ({error})") from None
    defined_in = getattr(found, "__module__", None) or ""
    if not _in_package(defined_in, packages):
        raise refuse(f"is {defined_in}.{getattr(found, '__name__', '?')}, not an allowed class")
    if not _allowed_kind(found):
        raise refuse("is not a model or data-module class")


def check_targets(node: Any, file: Path, prefix: str = "") -> None:
    """Check every ``_target_`` in ``node`` (a container from a saved config), recursively."""
    packages = trusted_packages()
    items: Iterable[tuple[Any, Any]]
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        where = f"{prefix}{key}" if isinstance(key, str) else f"{prefix.rstrip('.')}[{key}]"
        if key == "_target_":
            check_target(value, where, file, packages)
        elif not (prefix == "" and key in TRAINING_ONLY_NODES):
            check_targets(value, file, f"{where}.")


def load_config(file: Path) -> DictConfig:
    """A saved ``.hydra/config.yaml``, refused (naming the key) if it names code to run."""
    from omegaconf import DictConfig, OmegaConf

    try:
        config = OmegaConf.load(file)  # OmegaConf's loader is yaml's SafeLoader: no Python tags
    except FileNotFoundError:
        raise
    except Exception as error:
        problem = f"is not a valid config ({type(error).__name__}: {error})"
        raise CorruptRecordError(file, problem) from None
    if not isinstance(config, DictConfig):
        raise CorruptRecordError(file, f"holds a {type(config).__name__}, not a mapping")
    check_targets(OmegaConf.to_container(config, resolve=False), file)
    return config


# --- the folder ------------------------------------------------------------------------------


@dataclass
class RunFolder:
    """One job folder. Every reader raises :class:`CorruptRecordError` for a bad file."""

    path: Path
    _summary: dict[str, Any] | None = field(default=None, repr=False)
    _summary_read: bool = field(default=False, repr=False)

    @classmethod
    def containing(cls, path: str | Path, option: str = "ckpt") -> RunFolder:
        """The run folder that is ``path`` or holds the file ``path`` (its config is searched
        upwards, so ``<run>/checkpoints/x.ckpt`` finds ``<run>``)."""
        given = Path(path).expanduser()
        if not given.exists():
            raise FileNotFoundError(
                f"{option}={str(path)!r}: no such checkpoint file or run folder"
            )
        folder = given if given.is_dir() else given.parent
        while not (folder / CONFIG_FILE).is_file():
            if folder.parent == folder:
                raise FileNotFoundError(
                    f"{option}={str(path)!r}: no .hydra/config.yaml in its folder or any parent; "
                    "a train.py run folder is needed to rebuild the model"
                )
            folder = folder.parent
        return cls(folder.absolute())

    @property
    def name(self) -> str:
        return self.path.name

    def summary(self) -> dict[str, Any]:
        """The validated ``summary.json`` ({} when the job has not written one yet)."""
        if not self._summary_read:
            self._summary = read_summary(self.path / SUMMARY_FILE)
            self._summary_read = True
        return dict(self._summary or {})

    @property
    def has_summary(self) -> bool:
        return (self.path / SUMMARY_FILE).is_file()

    def status(self) -> str | None:
        """``completed``, ``failed``, ``running``, ... ; None without ``summary.json``."""
        return self.summary().get("status") if self.has_summary else None

    def metric(self, name: str, required: bool = False) -> float | None:
        """``metrics[name]`` as a float; None when absent (CorruptRecordError if ``required``)."""
        value = (self.summary().get("metrics") or {}).get(name)
        if (value is None and required) or isinstance(value, list):
            problem = "missing" if value is None else f"{value!r}, not a number"
            raise CorruptRecordError(
                self.path / SUMMARY_FILE, f"{SUMMARY_FILE} field metrics/{name} is {problem}"
            )
        return None if value is None else float(value)

    def section(self, name: str) -> dict[str, Any]:
        """A validated object of the summary (``config``, ``cost``, ``compression``, ...)."""
        return dict(self.summary().get(name) or {})

    def overrides(self) -> list[str]:
        """The job's command-line overrides (``.hydra/overrides.yaml``); [] when absent."""
        file = self.path / OVERRIDES_FILE
        data = _read_yaml(file)
        if data is None:
            return []
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise CorruptRecordError(file, f"holds {data!r}, not a list of key=value strings")
        return data

    def experiment(self) -> str | None:
        """The last part of the ``experiment=`` override (``study/fmnist_glr2`` -> ``fmnist_glr2``)."""
        return experiment_name(self.overrides())

    def job_number(self) -> int | None:
        """``hydra.job.num`` of a multirun job (else the folder name if it is a number)."""
        try:
            return int(_read_yaml(self.path / HYDRA_FILE)["hydra"]["job"]["num"])
        except (TypeError, KeyError, ValueError):  # CorruptRecordError is a ValueError
            return int(self.name) if self.name.isdigit() else None

    def config(self) -> DictConfig:
        """The saved config, checked: no ``_target_`` outside the allowed packages."""
        file = self.path / CONFIG_FILE
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing: not a train.py run folder")
        return load_config(file)

    def checkpoint(self, which: Checkpoint = "tested") -> Path:
        """The checkpoint file of this folder: the one its test used, the best or the last.

        Recorded paths are taken relative to this folder (a moved folder keeps working); a
        recorded file that is not inside this folder is refused, never read from its old place.
        """
        summary = self.summary()
        chosen = LAST_IN_FOLDER if which == "last" else None
        tested = summary.get("tested") or {}
        best = summary.get("best") or {}
        if chosen is None and which == "tested" and isinstance(tested.get("checkpoint"), str):
            chosen = tested["checkpoint"]
        elif chosen is None and which == "tested" and best.get("tested") == "last":
            chosen = LAST_IN_FOLDER
        elif chosen is None:
            chosen = best.get("checkpoint") or LAST_IN_FOLDER
        path = self.inside(str(chosen), summary.get("output_dir"))
        if not path.is_file():
            raise FileNotFoundError(
                f"{self.path}: the {which} checkpoint {path.relative_to(self.path)} is missing "
                f"(summary.json names {chosen}). A copy of a run folder needs its "
                f"{CHECKPOINT_DIR}/ folder; the checkpoint is never read from another folder."
            )
        return path

    def inside(self, recorded: str, recorded_root: Any = None) -> Path:
        """A path the job recorded, as a path in this folder: relative paths are joined; an
        absolute one is cut at its recorded run folder (or at ``checkpoints/``)."""
        path = Path(recorded)
        if not path.is_absolute():
            return self.path / path
        if isinstance(recorded_root, str) and path.is_relative_to(recorded_root):
            return self.path / path.relative_to(recorded_root)
        if CHECKPOINT_DIR in path.parts:
            index = len(path.parts) - 1 - path.parts[::-1].index(CHECKPOINT_DIR)
            return self.path.joinpath(*path.parts[index:])
        return self.path / path.name

    def rebuild_model(
        self, channels: int, num_classes: int, checkpoint: Path | None = None
    ) -> nn.Module:
        """The job's model and compression (analog layers for a hardware-aware run) with the
        weights and masks of ``checkpoint`` (default: the tested one)."""
        config = self.config()
        model, _ = build_compressed_model(config, channels, num_classes)
        load_weights(model, checkpoint or self.checkpoint("tested"))
        return model


def experiment_name(overrides: Iterable[str]) -> str | None:
    """The last part of the ``experiment=`` override, or None."""
    for item in overrides:
        key, _, value = str(item).partition("=")
        if key.lstrip("+~") == "experiment" and value:
            return value.rsplit("/", 1)[-1]
    return None


def _read_yaml(file: Path) -> Any:
    """Safe-loaded YAML of ``file``; None when missing; CorruptRecordError when invalid."""
    text = _read_text(file)
    if text is None:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorruptRecordError(file, f"is not valid YAML ({first})") from None


def build_compressed_model(
    config: DictConfig, channels: int, num_classes: int, pretrained: str | None = None
) -> tuple[nn.Module, CompressionResult]:
    """The model of a (checked) saved config (its ``model``, ``compression`` and, for a
    hardware-aware run, ``analog``/``hw`` nodes), ``pretrained`` weights loaded before it is
    compressed as the job did; and the compression result."""
    from imcompress import compression
    from imcompress.analog.schema import resolve_settings
    from imcompress.models.build import build_model

    model = build_model(config.model, channels, num_classes)
    if pretrained:
        compression.load_pretrained(model, pretrained)
    # the weights come from the run's checkpoint: data-aware options need no calibration here
    result = compression.apply_compression(model, config.get("compression"), structure_only=True)
    run_analog = config.get("analog")
    if run_analog is not None and run_analog.get("enabled") and run_analog.get("train"):
        from imcompress.analog.training import convert_for_training

        model = convert_for_training(model, resolve_settings(run_analog, config.get("hw")))
    return model, result


def load_weights(model: nn.Module, checkpoint: Path) -> None:
    """Load a checkpoint's model weights strictly; never unpickles code."""
    from imcompress.compression.pretrained import extract_state_dict, load_checkpoint_safely

    state = load_checkpoint_safely(checkpoint, option="ckpt")
    model.load_state_dict(extract_state_dict(state), strict=True)


def skipped_note(skipped: list[str]) -> str:
    """``skipped 2 run folders: <path>: <reason>; ...`` (empty when none)."""
    if not skipped:
        return ""
    noun = "run folder" if len(skipped) == 1 else "run folders"
    return f"skipped {len(skipped)} {noun}: " + "; ".join(skipped)
