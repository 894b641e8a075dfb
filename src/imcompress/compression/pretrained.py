"""Load the weights of a dense training run into a freshly built model (stage 2 of the recipe)."""

from __future__ import annotations

import pickle
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


def load_checkpoint_safely(file: Path) -> object:
    """Load ``file`` with ``torch.load(weights_only=True)``: tensors and plain data only.

    A pickle that would import a function or class outside the allow-list (code execution, e.g.
    ``os.system``) is refused before anything in it runs; text, truncated or otherwise unreadable
    files raise :class:`NotACheckpointError` naming the path.
    """
    try:
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip()
        if "weights only load failed" in reason.lower():
            detail = next(
                (line.strip() for line in reason.splitlines() if "GLOBAL" in line.upper()),
                "an object that is not plain data",
            )
            raise NotACheckpointError(
                f"pretrained checkpoint {file} was refused: loading it would import code "
                f"({detail}). Only checkpoints holding tensors and plain data are loaded "
                "(torch.load weights_only=True); use a checkpoint written by src/train.py."
            ) from None
        raise _not_a_checkpoint(file, error) from None
    except Exception as error:  # garbage input fails anywhere in the unpickler (IndexError, ...)
        raise _not_a_checkpoint(file, error) from None


def _not_a_checkpoint(file: Path, error: BaseException) -> NotACheckpointError:
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return NotACheckpointError(
        f"pretrained={file} is not a PyTorch/Lightning checkpoint (it is truncated, corrupt or "
        f"another kind of file: {type(error).__name__}: {reason}). Pass the .ckpt file of a dense "
        "train.py run, e.g. outputs/quickstart/runs/<time>/checkpoints/last.ckpt"
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

    ``path=None`` (config ``pretrained: null``) returns ``model`` unchanged.

    Raises FileNotFoundError for a missing path, :class:`NotACheckpointError` for a file that is
    not a checkpoint or would run code when loaded, and ValueError naming the missing,
    unexpected and shape-mismatched keys when the checkpoint does not match the model. Call it before
    :func:`apply_compression` (the SVD init and pruning masks come from these weights).
    """
    if path is None:
        return model
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"pretrained checkpoint not found: {file}")
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
