"""Structured schema of the ``analog`` config group and the resolved tile settings.

Pure Python: importing this module (done by ``register_configs`` for every job) imports
nothing of ``aihwkit_lightning``, so ``analog=none`` costs nothing. The YAMLs in
``conf/analog/`` start with ``defaults: [base_analog, _self_]``; a misspelt key or a value
outside an option's vocabulary (a :class:`Calibration` ``StrEnum`` field) fails at compose time,
a value out of range in :func:`resolve_settings` before any work starts.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

MIN_BITS, MAX_BITS = 2, 16


class Calibration(enum.StrEnum):
    """How each tile's static DAC input range is set: one of the library's post-training
    ``InputRangeCalibrationType`` (aihwkit-lightning ``calibrate_input_ranges``), or ``none`` (no
    input range: exact tiles). Members compare equal to their strings."""

    cache_quantile = "cache_quantile"
    max = "max"
    moving_std = "moving_std"
    moving_quantile = "moving_quantile"
    none = "none"


@dataclass
class InputRangeConfig:
    """Static DAC input range per tile, calibrated post-training on training batches."""

    calibration: Calibration = Calibration.cache_quantile
    """cache_quantile | max | moving_std | moving_quantile (library types) | none (no range)"""
    quantile: float = 0.99995
    """cache_quantile/moving_quantile: quantile of |x| per tile, in (0, 1]"""
    batches: int = 10
    """training batches fed through the model to calibrate [count]"""
    max_samples: int = 1000
    """cache_quantile: input vectors cached per layer [count]"""


@dataclass
class HwaTrainingConfig:
    """Hardware-aware fine-tuning (``analog.train: true``): noise in the forward pass."""

    weight_noise: float | None = None
    """std of per-step weight noise [fraction of per-column w_max]; None = programming_noise"""
    clip_sigma: float = 2.5
    """weights clipped to +-sigma * std per output channel after each step; <= 0: off"""
    input_range_init_batches: int = 100
    """first training batches that initialise the learned input ranges [count]"""


@dataclass
class AnalogConfig:
    """One analog preset: tile resolution, ranges, noise, and how to evaluate or train."""

    name: str = "none"
    """the preset's name (its file in conf/analog/), recorded in summary.json"""
    enabled: bool = False
    """false: digital model, nothing of aihwkit-lightning is imported"""
    bits_from_hw: bool = False
    """take input/output/weight bits from the hw preset (input_bits, adc_bits, weight_bits)"""
    input_bits: int | None = None
    """DAC resolution [bits]; None = no input quantization"""
    output_bits: int | None = None
    """ADC resolution [bits]; None = no output quantization"""
    weight_bits: int | None = None
    """conductance levels [bits] per column; None = exact weights"""
    out_bound: float = 0.0
    """ADC range [input range x column w_max]; 0 = unbounded"""
    out_noise: float = 0.0
    """read noise std at each tile output [same units as out_bound]"""
    programming_noise: float = 0.0
    """weight programming noise std [fraction of per-column w_max], drawn once per repeat"""
    noise_on_zero_weights: bool = False
    """false: exactly-zero (pruned) cells stay unprogrammed, no noise"""
    tile_rows: int | None = None
    """rows per tile (library max_input_size) [count]; None = hw.rows; 0 = no split"""
    tile_cols: int | None = None
    """output channels per tile [count]; None = the hw arrays' weight columns; 0 = no split"""
    exclude: list[str] = field(default_factory=list)
    """glob patterns of module names kept digital"""
    input_range: InputRangeConfig = field(default_factory=InputRangeConfig)
    """the static DAC input range per tile and its calibration"""
    repeats: int = 1
    """evaluations with fresh noise (programming + read); 1 pass without noise"""
    seed: int = 0
    """noise seed: repeat i uses seed + i"""
    test_samples: int | None = None
    """evaluate on the first N test images [count]; None = all"""
    evaluate_after_fit: bool = True
    """train.py: analog test evaluation after trainer.test"""
    train: bool = False
    """train.py: hardware-aware fine-tuning with analog layers in the model"""
    hwa: HwaTrainingConfig = field(default_factory=HwaTrainingConfig)
    """hardware-aware fine-tuning options (with ``train: true``)"""


@dataclass(frozen=True)
class TileSettings:
    """The resolved, validated analog settings of one job (bits, tile size, noise)."""

    name: str
    input_bits: int | None
    output_bits: int | None
    weight_bits: int | None
    out_bound: float
    out_noise: float
    programming_noise: float
    noise_on_zero_weights: bool
    tile_rows: int
    tile_cols: int
    calibration: Calibration
    quantile: float
    calibration_batches: int
    max_samples: int
    exclude: tuple[str, ...]
    repeats: int
    seed: int
    test_samples: int | None
    train: bool
    hwa_weight_noise: float
    hwa_clip_sigma: float
    hwa_init_batches: int

    @property
    def noisy(self) -> bool:
        """Whether two evaluations can differ (programming or read noise is on)."""
        return self.programming_noise > 0 or self.out_noise > 0

    @property
    def uses_input_range(self) -> bool:
        """Whether tiles need a (calibrated or learned) static input range."""
        return self.calibration != Calibration.none

    def record(self) -> dict[str, Any]:
        """Plain dict for summary.json."""
        return {
            **asdict(self),
            "calibration": self.calibration.value,
            "exclude": list(self.exclude),
        }


def register_analog_schema(cs: ConfigStore) -> None:
    """Store :class:`AnalogConfig` as group ``analog``, name ``base_analog``."""
    cs.store(group="analog", name="base_analog", node=AnalogConfig)


def is_enabled(cfg: Any) -> bool:
    """True when the job's ``analog`` node asks for analog tiles (None/missing: no)."""
    analog = cfg.get("analog") if isinstance(cfg, DictConfig) else None
    return bool(analog is not None and analog.get("enabled", False))


def _bits(value: Any, field_name: str, source: str) -> int | None:
    if value is None:
        return None
    bits = int(value)
    if not MIN_BITS <= bits <= MAX_BITS:
        raise ValueError(
            f"analog.{field_name}={bits} ({source}) is out of range: an analog tile needs "
            f"{MIN_BITS}..{MAX_BITS} bits or null (no quantization). A 1-bit hw preset describes "
            "bit-serial cost-model arrays, not a tile resolution: use analog.bits_from_hw=false, "
            "or an 8-bit preset such as hw=imc128_8bit"
        )
    return bits


def _weight_columns(hw: DictConfig | None) -> int | None:
    """Distinct weights per array row of the cost model: ``floor(cols / slices)``
    (:attr:`imcompress.crossbar.array.Crossbar.weight_cols`)."""
    if hw is None or hw.get("cols") is None:
        return None
    from imcompress.crossbar.array import Crossbar  # pure Python

    return Crossbar(
        rows=int(hw.get("rows", 1)),
        cols=int(hw.cols),
        weight_bits=int(hw.get("weight_bits", 1)),
        cell_bits=int(hw.get("cell_bits", 1)),
        differential=bool(hw.get("differential", False)),
    ).weight_cols


def _tile(value: Any, hw_value: Any, field_name: str, hw_field: str) -> int:
    if value is None:
        if hw_value is None:
            raise ValueError(f"analog.{field_name}=null takes hw.{hw_field}, but there is no hw")
        value = hw_value
    size = int(value)
    if size < 0:
        raise ValueError(f"analog.{field_name}={size}: valid: >= 1, 0 (no split) or null (hw)")
    return size


def resolve_settings(analog: DictConfig | AnalogConfig, hw: DictConfig | None) -> TileSettings:
    """Validate ``analog`` and fill in what it takes from ``hw`` (bits, tile size).

    Raises ValueError naming the value and the valid choices; runs before any data or model work.
    """
    node: Any = OmegaConf.structured(analog) if isinstance(analog, AnalogConfig) else analog
    bits = resolve_bits(node, hw)
    calibration = parse_calibration(node.input_range.calibration)
    check_finite_values(node)
    check_input_range_needed(node, bits, calibration)
    check_counts(node)
    weight_noise = hwa_weight_noise(node)
    ir, hwa = node.input_range, node.hwa
    hw_rows = hw.get("rows") if hw is not None else None
    return TileSettings(
        name=str(node.name),
        **bits,
        out_bound=float(node.out_bound),
        out_noise=float(node.out_noise),
        programming_noise=float(node.programming_noise),
        noise_on_zero_weights=bool(node.noise_on_zero_weights),
        tile_rows=_tile(node.tile_rows, hw_rows, "tile_rows", "rows"),
        tile_cols=_tile(node.tile_cols, _weight_columns(hw), "tile_cols", "cols"),
        calibration=calibration,
        quantile=float(ir.quantile),
        calibration_batches=int(ir.batches),
        max_samples=int(ir.max_samples),
        exclude=tuple(str(name) for name in node.exclude),
        repeats=int(node.repeats),
        seed=int(node.seed),
        test_samples=None if node.test_samples is None else int(node.test_samples),
        train=bool(node.train),
        hwa_weight_noise=weight_noise,
        hwa_clip_sigma=float(hwa.clip_sigma),
        hwa_init_batches=int(hwa.input_range_init_batches),
    )


def resolve_bits(node: Any, hw: DictConfig | None) -> dict[str, int | None]:
    """The DAC, ADC and weight resolutions: the preset's, or with ``bits_from_hw`` the hw
    preset's ``input_bits``/``adc_bits``/``weight_bits``; each 2..16 bits or None."""
    if not node.bits_from_hw:
        return {key: _bits(node.get(key), key, "analog preset") for key in bits_keys()}
    if hw is None:
        raise ValueError("analog.bits_from_hw=true needs a hw preset")
    source = f"from hw={hw.get('name')}"
    return {
        "input_bits": _bits(hw.get("input_bits"), "input_bits", source + " input_bits"),
        "output_bits": _bits(hw.get("adc_bits"), "output_bits", source + " adc_bits"),
        "weight_bits": _bits(hw.get("weight_bits"), "weight_bits", source + " weight_bits"),
    }


def parse_calibration(value: Any) -> Calibration:
    """``value`` as a :class:`Calibration`. A composed config is already checked by its schema;
    this catches a plain node (e.g. a saved run's config) naming the key and the valid values."""
    try:
        return Calibration(str(value))
    except ValueError:
        valid = [member.value for member in Calibration]
        raise ValueError(f"analog.input_range.calibration={value!r}; valid: {valid}") from None


def check_finite_values(node: Any) -> None:
    """ADC range and noise finite and >= 0; quantile and hwa noise/clip finite (None allowed)."""
    for key in ("out_bound", "out_noise", "programming_noise"):
        if not math.isfinite(float(node.get(key))) or float(node.get(key)) < 0:
            raise ValueError(f"analog.{key}={node.get(key)} must be a finite number >= 0")
    for key, value in (
        ("input_range.quantile", node.input_range.quantile),
        ("hwa.weight_noise", node.hwa.weight_noise),
        ("hwa.clip_sigma", node.hwa.clip_sigma),
    ):
        if value is not None and not math.isfinite(float(value)):
            raise ValueError(f"analog.{key}={value} must be a finite number")


def check_input_range_needed(
    node: Any, bits: dict[str, int | None], calibration: Calibration
) -> None:
    """An ADC needs a range (``out_bound > 0``); DAC/ADC quantization, ADC range and read noise
    are relative to the tile input range, so they need a calibration (or learned ranges)."""
    needs_range = []
    if bits["input_bits"] is not None:
        needs_range.append("input_bits")
    if bits["output_bits"] is not None:
        needs_range.append("output_bits")
        if float(node.out_bound) <= 0:
            raise ValueError(
                f"analog.output_bits={bits['output_bits']} needs an ADC range: set analog.out_bound"
                " > 0 (e.g. 10, the aihwkit StandardHWATrainingPreset value)"
            )
    if float(node.out_bound) > 0:
        needs_range.append("out_bound")
    if float(node.out_noise) > 0:
        needs_range.append("out_noise")
    if needs_range and calibration == Calibration.none and not node.train:
        valid = [member.value for member in Calibration if member != Calibration.none]
        raise ValueError(
            f"analog.{needs_range[0]} is relative to the tile input range, but "
            f"analog.input_range.calibration=none; valid: {valid}"
        )


def check_counts(node: Any) -> None:
    """``repeats >= 1``, ``test_samples >= 1`` or null, ``input_range.batches >= 1`` and
    ``input_range.quantile`` in (0, 1]."""
    if int(node.repeats) < 1:
        raise ValueError(f"analog.repeats={node.repeats} must be >= 1")
    if node.test_samples is not None and int(node.test_samples) < 1:
        raise ValueError(f"analog.test_samples={node.test_samples}: valid: >= 1 or null (all)")
    ir = node.input_range
    if int(ir.batches) < 1 or not 0 < float(ir.quantile) <= 1:
        raise ValueError(
            f"analog.input_range: batches={ir.batches} must be >= 1 and quantile={ir.quantile} "
            "in (0, 1]"
        )


def hwa_weight_noise(node: Any) -> float:
    """The per-step weight noise of hardware-aware training (null: ``programming_noise``),
    checked >= 0 together with ``hwa.input_range_init_batches >= 1``."""
    hwa = node.hwa
    weight_noise = hwa.weight_noise if hwa.weight_noise is not None else node.programming_noise
    if float(weight_noise) < 0 or int(hwa.input_range_init_batches) < 1:
        raise ValueError(
            f"analog.hwa: weight_noise={weight_noise} must be >= 0 and "
            f"input_range_init_batches={hwa.input_range_init_batches} >= 1"
        )
    return float(weight_noise)


def bits_keys() -> tuple[str, str, str]:
    """The three resolution fields of a preset."""
    return ("input_bits", "output_bits", "weight_bits")
