"""Load the weights of a dense training run into a freshly built model (stage 2 of the recipe)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

_WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile, DataParallel
_MAX_LISTED = 10


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

    Raises FileNotFoundError for a missing path and ValueError naming the missing, unexpected
    and shape-mismatched keys when the checkpoint does not match the model. Call it before
    :func:`apply_compression` (the SVD init and pruning masks come from these weights).
    """
    if path is None:
        return model
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"pretrained checkpoint not found: {file}")
    checkpoint = torch.load(file, map_location="cpu", weights_only=False)
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
