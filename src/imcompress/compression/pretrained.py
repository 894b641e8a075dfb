"""Load the weights of a dense training run into a freshly built model (stage 2 of the recipe)."""

from __future__ import annotations

import pickletools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

_WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile, DataParallel
_MAX_LISTED = 10
# Globals (besides tensors and plain Python data, which torch's weights-only unpickler always
# accepts) that a checkpoint of this project may hold. A Lightning checkpoint of a train.py run
# (weights, optimizer and scheduler states, loop and callback states) needs none today; add a
# class here only if it is plain data and cannot run code when unpickled.
SAFE_CHECKPOINT_GLOBALS: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = []


class NotACheckpointError(ValueError):
    """A ``pretrained`` file that is not a checkpoint, or one that would need code to load."""


def load_checkpoint_safely(file: Path, option: str = "pretrained") -> object:
    """Load ``file`` with ``torch.load(weights_only=True)``: tensors and plain data only.

    A pickle that would import a function or class outside the allow-list (code execution, e.g.
    ``os.system``) is refused before anything in it runs; text, truncated or otherwise unreadable
    files raise :class:`NotACheckpointError` naming ``option`` and the path. The messages never
    suggest loading the file with fewer checks.
    """
    try:
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # garbage input fails anywhere in the unpickler (IndexError, ...)
        imports = _GLOBAL.findall(str(error)) or _imports_in_pickle(file)
        if imports:
            raise NotACheckpointError(
                f"{option}={file} refused: it would run code when loaded (it imports "
                f"{', '.join(sorted(set(imports)))}). Only checkpoints holding tensors and plain "
                "data are loaded; pass a checkpoint written by src/train.py."
            ) from None
        raise _not_a_checkpoint(file, error, option) from None


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_PUSHES_STRING = ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "SHORT_BINSTRING", "BINSTRING")


def _imports_in_pickle(file: Path) -> list[str]:
    """The ``module.name`` globals a plain (non-zip) pickle would import, read with pickletools
    (which parses opcodes and runs nothing); [] for anything else."""
    found: list[str] = []
    strings: list[str] = []
    try:
        with open(file, "rb") as handle:
            if handle.read(1) != b"\x80":  # PROTO: a binary pickle (text is never scanned)
                return []
            handle.seek(0)
            for opcode, argument, _ in pickletools.genops(handle):
                if opcode.name in _PUSHES_STRING:
                    strings.append(str(argument))
                elif opcode.name in ("GLOBAL", "INST"):
                    found.append(str(argument).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # not a pickle, or one cut short: the opcodes read so far count
        pass
    return found


def _reason(error: BaseException) -> str:
    """The line of ``error`` that says what is wrong, without torch's advice to load the file
    with fewer checks (``weights_only=False``)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    advice = ("weights only load failed", "weights_only", "please file", "check the documentation")
    useful = [line for line in lines if not any(word in line.lower() for word in advice)]
    useful = [line.removeprefix("WeightsUnpickler error:").strip() for line in useful]
    return next((line for line in useful if line), type(error).__name__)


def _not_a_checkpoint(file: Path, error: BaseException, option: str) -> NotACheckpointError:
    reason = _reason(error)
    return NotACheckpointError(
        f"{option}={file} is not a checkpoint: it is not a PyTorch/Lightning checkpoint (it is "
        f"truncated, corrupt or another kind of file: {type(error).__name__}: {reason}). Pass the "
        ".ckpt file of a train.py run, e.g. outputs/quickstart/runs/<time>/checkpoints/last.ckpt"
    )


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > _MAX_LISTED else "")


def extract_state_dict(checkpoint: object) -> dict[str, torch.Tensor]:
    """The model weights of a Lightning checkpoint (``state_dict`` with keys ``model.*``) or of
    a plain state dict, with the ``model.`` (and ``module.``/``_orig_mod.``) prefix removed."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(isinstance(k, str) for k in checkpoint):
        raise ValueError("checkpoint holds no state dict (expected a Lightning .ckpt or a dict)")
    state: dict[str, torch.Tensor] = dict(checkpoint)
    if any(k.startswith("model.") for k in state):  # LightningModule.model; drop other members
        state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    for prefix in _WRAPPER_PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k.removeprefix(prefix): v for k, v in state.items()}
    return state


def load_pretrained(model: nn.Module, path: str | Path | None) -> nn.Module:
    """Load the dense checkpoint at ``path`` into ``model`` (strictly) and return ``model``.

    ``path`` None or ``"none"`` (from scratch) returns ``model`` unchanged; a ``train.py`` run
    folder stands for the checkpoint its test used (:func:`resolve_checkpoint`).

    Raises FileNotFoundError for a missing path, :class:`NotACheckpointError` for a file that is
    not a checkpoint or would run code when loaded, and ValueError naming the missing,
    unexpected and shape-mismatched keys when the checkpoint does not match the model. Call it before
    :func:`apply_compression` (the SVD init and pruning masks come from these weights).
    """
    if pretrained_choice(path) is None:
        return model
    assert path is not None
    file = resolve_checkpoint(path)  # a run folder: the checkpoint its test used
    checkpoint = load_checkpoint_safely(file)
    state = extract_state_dict(checkpoint)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        f"{k} (checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)})"
        for k in set(own) & set(state)
        if tuple(state[k].shape) != tuple(own[k].shape)
    )
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing in checkpoint: {_listing(missing)}")
        if unexpected:
            problems.append(f"not in model: {_listing(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatch: {_listing(mismatched)}")
        raise ValueError(
            f"pretrained checkpoint {file} does not match the model ({'; '.join(problems)}). "
            "It must come from a dense run of the same model config (compression=none)."
        )
    model.load_state_dict(state)
    return model


# Run folders ----------------------------------------------------------------------------------
NO_PRETRAINED = ("", "none", "null")  # pretrained=none (or null): train from the random init
AUTO = "auto"  # pretrained=auto: the dense stage of train.py (imcompress.training.dense_stage)


def pretrained_choice(value: object) -> str | None:
    """``pretrained`` as None (from scratch), ``"auto"`` or a path string."""
    if value is None or str(value).strip().lower() in NO_PRETRAINED:
        return None
    return AUTO if str(value).strip().lower() == AUTO else str(value)


def resolve_checkpoint(value: str | Path, key: str = "pretrained", announce: bool = True) -> Path:
    """The checkpoint file that ``key=value`` names: a file as given, or for a ``train.py`` run
    folder (or its ``checkpoints/``) the checkpoint its test used
    (:meth:`imcompress.runs.folder.RunFolder.checkpoint`; ``last.ckpt`` without a summary).

    A run that has not completed, a multirun folder and a missing path are refused, naming the
    key and the value. With ``announce``, prints which file a folder stands for.
    """
    from imcompress.runs.folder import SUMMARY_FILE, RunFolder

    if str(value) == AUTO:
        raise ValueError(
            f"{key}=auto trains or reuses the dense stage of src/train.py only; here pass a "
            "checkpoint file or a train.py run folder"
        )
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(
            f"{key}={str(value)!r}: no such checkpoint file or run folder (pass a .ckpt file "
            "of a train.py run or its run folder, e.g. outputs/quickstart/runs/<time>)"
        )
    if path.name == "checkpoints" and (path.parent / SUMMARY_FILE).is_file():
        path = path.parent
    folder = RunFolder(path.absolute())
    if not folder.has_summary:
        jobs = sorted(p.parent.name for p in path.glob(f"*/{SUMMARY_FILE}"))
        if jobs:
            raise ValueError(
                f"{key}={str(value)!r} is a multirun folder ({len(jobs)} jobs); pass one job's "
                f"folder, e.g. {key}={path / jobs[0]}"
            )
    elif folder.status() != "completed":
        raise ValueError(
            f"{key}={str(value)!r}: that run has not completed (summary.json status "
            f"{folder.status()!r}); wait for it, or pass one of its checkpoint files"
        )
    chosen = folder.checkpoint("tested")
    if announce:
        print(f"{key}={value}: using {chosen} (the checkpoint that run tested)", flush=True)
    return chosen
