"""Which conv layers a compression method touches.

Default selection (as in the reference pruning works): the KxK (K > 1) convs inside residual
blocks, except the stem conv (it is outside every block), the convs of the shortcut branch
(1x1 projections) and every conv with stride > 1 (the first conv of a down-sampling stage).
A residual block is any module with a child named ``shortcut`` or ``downsample``, or whose class
name ends in ``Block``. ``include`` globs replace the default selection with every dense
``nn.Conv2d`` whose dotted module name matches; ``exclude`` globs then remove layers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import cast

from torch import nn

SHORTCUT_NAMES = ("shortcut", "downsample")


def is_residual_block(module: nn.Module) -> bool:
    """True for modules that look like residual blocks (see module docstring)."""
    children = dict(module.named_children())
    return any(n in children for n in SHORTCUT_NAMES) or type(module).__name__.endswith("Block")


def _in_shortcut(name: str, block_name: str) -> bool:
    rest = name[len(block_name) + 1 :] if block_name else name
    return rest.split(".")[0] in SHORTCUT_NAMES


def default_selection(model: nn.Module) -> list[str]:
    """Names of the convs compressed by default (see module docstring), in module order."""
    blocks = [name for name, m in model.named_modules() if is_residual_block(m) and m is not model]
    selected = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d) or module.groups != 1:
            continue
        owners = [b for b in blocks if name.startswith(b + ".")]
        if not owners or any(_in_shortcut(name, b) for b in owners):
            continue
        if tuple(module.kernel_size) == (1, 1) or tuple(module.stride) != (1, 1):
            continue
        selected.append(name)
    return selected


def dense_convs(model: nn.Module) -> list[str]:
    """Names of all dense (groups=1) ``nn.Conv2d`` modules."""
    return [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.groups == 1 and name
    ]


def select_layers(
    model: nn.Module, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[tuple[str, nn.Conv2d]]:
    """The (name, conv) pairs to compress. Raises ValueError for an include glob matching nothing."""
    candidates = dense_convs(model)
    if include:
        unmatched = [p for p in include if not any(fnmatchcase(n, p) for n in candidates)]
        if unmatched:
            raise ValueError(
                f"include pattern(s) {unmatched} match no dense Conv2d; "
                f"conv names are: {candidates}"
            )
        names = [n for n in candidates if any(fnmatchcase(n, p) for p in include)]
    else:
        names = default_selection(model)
    for pattern in exclude:
        if not any(fnmatchcase(n, pattern) for n in names):
            warnings.warn(f"exclude pattern {pattern!r} matches no selected layer", stacklevel=2)
    names = [n for n in names if not any(fnmatchcase(n, p) for p in exclude)]
    modules = dict(model.named_modules())
    return [(n, cast(nn.Conv2d, modules[n])) for n in names]


def set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule at dotted ``name`` by ``new``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
