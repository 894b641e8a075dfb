"""Build the layer table of a torch model and estimate its crossbar costs.

Shapes come from forward hooks on one dummy input (batch 1); they are cached per model and
structure. Weights are re-read on every call, because masks and zeros change during training.

Recognized layers: ``nn.Conv2d`` (any stride, padding, groups; dilation 1), ``nn.Linear`` (a 1x1
conv), and low-rank pairs: any module with ``is_low_rank_pair = True`` and two ``nn.Conv2d``
children ``R`` (KxK) and ``L`` (1x1). Pruning: a ``weight_mask`` buffer (``torch.nn.utils.prune``)
if present, else the exact zeros of ``weight``.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from imcompress.crossbar.cost_report import CostReport, build_report
from imcompress.crossbar.layer_table import LayerSpec, LayerTable
from imcompress.crossbar.mapping import METHODS
from imcompress.crossbar.options import Convention, Method, Search


@dataclass(frozen=True)
class _Traced:
    """One layer call seen during the dummy forward pass."""

    name: str
    kind: str
    module: nn.Module
    height: int
    width: int


_TRACES_PER_MODEL = 8
_TRACE_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple[Any, ...], list[_Traced]]] = (
    weakref.WeakKeyDictionary()
)


def estimate(
    model: nn.Module,
    input_shape: Sequence[int],
    hw: Any = None,
    mappings: Sequence[Method | str] = METHODS,
    *,
    search: Search | str | None = None,
    convention: Convention | str | None = None,
) -> CostReport:
    """Cost report of ``model`` for one input of ``input_shape = (C, H, W)`` on ``hw``.

    ``hw``: a :class:`~imcompress.crossbar.config.HardwareConfig`, an OmegaConf node or a dict of
    its fields (None: ISAAC-style defaults). ``search``/``convention`` override ``hw``'s.
    """
    table = extract_layers(model, input_shape)
    return build_report(table, hw, mappings, search=search, convention=convention)


def extract_layers(model: nn.Module, input_shape: Sequence[int]) -> LayerTable:
    """The layer table of ``model``: traced shapes (cached) plus the current zero structure."""
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"input_shape must be (C, H, W) with positive sizes, got {tuple(input_shape)}"
        )
    traced = _trace(model, shape)
    return LayerTable.from_specs([_spec(entry) for entry in traced])


def _pairs_and_layers(model: nn.Module) -> tuple[list[tuple[str, nn.Module]], set[str]]:
    """Modules to hook (pairs, convs, linears) and the names inside pairs (not hooked)."""
    hooked: list[tuple[str, nn.Module]] = []
    inside: set[str] = set()
    for name, module in model.named_modules():
        if name in inside or any(name.startswith(p + ".") for p in inside):
            continue
        if getattr(module, "is_low_rank_pair", False):
            r, l_ = getattr(module, "R", None), getattr(module, "L", None)
            if not isinstance(r, nn.Conv2d) or not isinstance(l_, nn.Conv2d):
                raise ValueError(
                    f"layer {name!r}: a low-rank pair needs nn.Conv2d children R and L"
                )
            hooked.append((name, module))
            inside.update({f"{name}.R" if name else "R", f"{name}.L" if name else "L"})
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            hooked.append((name, module))
    return hooked, inside


def _pair_children(name: str, module: nn.Module) -> tuple[nn.Conv2d, nn.Conv2d]:
    r, l_ = getattr(module, "R", None), getattr(module, "L", None)
    if not isinstance(r, nn.Conv2d) or not isinstance(l_, nn.Conv2d):
        raise ValueError(f"layer {name!r}: a low-rank pair needs nn.Conv2d children R and L")
    return r, l_


def _signature(hooked: list[tuple[str, nn.Module]], shape: tuple[int, ...]) -> tuple[Any, ...]:
    parts: list[Any] = [shape]
    for name, module in hooked:
        parts.append(id(module))  # a module swapped for an equal-shaped one needs a new trace
        if isinstance(module, nn.Linear):
            parts.append((name, "linear", tuple(module.weight.shape)))
        elif isinstance(module, nn.Conv2d):
            parts.append(
                (
                    name,
                    "conv",
                    tuple(module.weight.shape),
                    module.stride,
                    module.padding,
                    module.groups,
                )
            )
        else:
            r, l_ = _pair_children(name, module)
            parts.append(
                (
                    name,
                    "pair",
                    tuple(r.weight.shape),
                    r.stride,
                    r.padding,
                    r.groups,
                    tuple(l_.weight.shape),
                    l_.groups,
                )
            )
    return tuple(parts)


def _trace(model: nn.Module, shape: tuple[int, ...]) -> list[_Traced]:
    hooked, _ = _pairs_and_layers(model)
    key = _signature(hooked, shape)
    per_model = _TRACE_CACHE.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    if len(per_model) >= _TRACES_PER_MODEL:  # the structure keeps changing: keep the newest only
        per_model.clear()
    calls: list[_Traced] = []
    seen: dict[str, int] = {}

    def hook_for(name: str, module: nn.Module) -> Any:
        kind = (
            "linear"
            if isinstance(module, nn.Linear)
            else "conv"
            if isinstance(module, nn.Conv2d)
            else "lowrank"
        )

        def record(_: nn.Module, inputs: tuple[Any, ...]) -> None:
            x = inputs[0]
            if kind == "linear":
                height, width = int(np.prod(x.shape[1:-1])) if x.dim() > 2 else 1, 1
            else:
                height, width = int(x.shape[-2]), int(x.shape[-1])
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name}#{seen[name]}"
            calls.append(_Traced(label or type(module).__name__, kind, module, height, width))

        target = _pair_children(name, module)[0] if kind == "lowrank" else module
        return target.register_forward_pre_hook(record)

    handles = [hook_for(name, module) for name, module in hooked]
    modes = {m: m.training for m in model.modules()}
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # batch 1: threads only add contention
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        dtype = (
            parameter.dtype
            if parameter is not None and parameter.is_floating_point()
            else torch.float32
        )
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *shape), device=device, dtype=dtype))
    finally:
        torch.set_num_threads(threads)
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    per_model[key] = calls
    return calls


class _ConvGeometry(TypedDict):
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    padding_h: int
    padding_w: int


def _conv_geometry(name: str, conv: nn.Conv2d) -> _ConvGeometry:
    if tuple(conv.dilation) != (1, 1):
        raise ValueError(
            f"layer {name!r}: dilation={tuple(conv.dilation)} is not supported (only 1)"
        )
    kernel_h, kernel_w = conv.kernel_size
    padding: tuple[int, ...]
    if isinstance(conv.padding, str):  # "same" / "valid"
        padding = (0, 0) if conv.padding == "valid" else ((kernel_h - 1) // 2, (kernel_w - 1) // 2)
    else:
        padding = tuple(conv.padding)
    return {
        "kernel_h": int(kernel_h),
        "kernel_w": int(kernel_w),
        "stride_h": int(conv.stride[0]),
        "stride_w": int(conv.stride[1]),
        "padding_h": int(padding[0]),
        "padding_w": int(padding[1]),
    }


def _spec(entry: _Traced) -> LayerSpec:
    module = entry.module
    if entry.kind == "lowrank":
        r, l_ = _pair_children(entry.name, module)
        if l_.kernel_size != (1, 1) or l_.stride != (1, 1) or tuple(l_.padding) != (0, 0):
            raise ValueError(
                f"layer {entry.name!r}: L of a low-rank pair must be a 1x1 conv, stride 1, no padding"
            )
        if l_.in_channels != r.out_channels:
            raise ValueError(
                f"layer {entry.name!r}: R has {r.out_channels} outputs but L takes {l_.in_channels} inputs"
            )
        return LayerSpec(
            name=entry.name,
            kind="lowrank",
            height=entry.height,
            width=entry.width,
            in_channels=r.in_channels,
            out_channels=l_.out_channels,
            groups=r.groups,
            rank_channels=r.out_channels,
            l_groups=l_.groups,
            **_conv_geometry(entry.name, r),
        )
    if isinstance(module, nn.Linear):
        weight = _weights(module).reshape(module.out_features, module.in_features, 1, 1)
        spec = LayerSpec(
            name=entry.name,
            kind="linear",
            height=entry.height,
            width=entry.width,
            kernel_h=1,
            kernel_w=1,
            in_channels=module.in_features,
            out_channels=module.out_features,
        )
        return with_zero_structure(spec, weight)
    if not isinstance(module, nn.Conv2d):  # pragma: no cover - the tracer records only these
        raise TypeError(f"layer {entry.name!r}: unexpected {type(module).__name__}")
    spec = LayerSpec(
        name=entry.name,
        kind="conv",
        height=entry.height,
        width=entry.width,
        in_channels=module.in_channels,
        out_channels=module.out_channels,
        groups=module.groups,
        **_conv_geometry(entry.name, module),
    )
    return with_zero_structure(spec, _weights(module))


def _weights(module: nn.Module) -> npt.NDArray[Any]:
    """The ``weight_mask`` buffer if present, else ``weight``, as numpy (no copy on CPU).

    Read with numpy: small torch ops on a busy machine cost far more than the numpy scan.
    """
    mask = getattr(module, "weight_mask", None)
    tensor = mask if isinstance(mask, torch.Tensor) else module.weight
    assert isinstance(tensor, torch.Tensor)
    tensor = tensor.detach()
    if tensor.device.type != "cpu" or tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.float().cpu()
    return tensor.numpy()


def with_zero_structure(spec: LayerSpec, weights: npt.NDArray[Any]) -> LayerSpec:
    """Fill in removed channels and, if kernels are partly zero, the per-channel patterns."""
    nonzero = int(np.count_nonzero(weights))
    if nonzero == weights.size:
        return spec
    kept = weights != 0
    groups = spec.groups
    out_channels, in_per_group, kernel_h, kernel_w = kept.shape
    by_group = kept.reshape(groups, out_channels // groups, in_per_group, kernel_h, kernel_w)
    patterns = by_group.any(axis=1)  # (g, IC/g, K_h, K_w): union over the group's outputs
    in_alive = patterns.reshape(groups, in_per_group, -1).any(axis=2)
    out_alive = by_group.reshape(groups, out_channels // groups, -1).any(axis=2)
    spec.in_kept = groups * int(in_alive.sum(axis=1).max())
    spec.out_kept = groups * int(out_alive.sum(axis=1).max())
    spec.nonzero_weights = nonzero
    full = patterns.reshape(groups, in_per_group, -1).all(axis=2)
    if bool((full != in_alive).any()):  # alive channels with some zero kernel positions
        spec.patterns = patterns
    return spec
