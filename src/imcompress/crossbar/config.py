"""Hardware configuration of the cost model: a dataclass that is also the Hydra ``hw`` schema.

Every constant carries its source (``field.metadata["source"]``, also returned by
:func:`constant_sources`). The YAML presets in ``conf/hw/`` start from the schema registered by
:func:`register_hw_schema`, so a misspelled key or a wrong type fails when Hydra composes the
config; value ranges are checked when the config becomes a :class:`HardwareConfig`
(:meth:`HardwareConfig.from_cfg`; the entry scripts do it first, in
:func:`imcompress.config.check_required`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imcompress.crossbar.array import Crossbar
from imcompress.crossbar.options import Convention, Search, parse_option

if TYPE_CHECKING:
    from hydra.core.config_store import ConfigStore

ISAAC = "ISAAC (Shafiee et al., ISCA 2016), Table 6, 32 nm"
# Largest array side (rows or cols) accepted: fabricated RRAM/SRAM IMC macros are 64-1024 a side
# (ISAAC 128, PRIME 256, NeuRRAM 256), and the exact mapping search allocates per candidate window
# in proportion to the array, so a 10^6 side would try to allocate hundreds of GiB.
MAX_ARRAY_SIDE = 4096

ADC_ENERGY_PJ_BY_BITS: dict[int, float] = {
    4: 0.79,
    5: 0.99,
    6: 1.20,
    7: 1.42,
    8: 1.67,
    9: 1.97,
    10: 2.38,
}
ADC_ENERGY_SOURCE = (
    "8 bit: 2 mW at 1.2 GS/s SAR ADC (Kull et al., ISSCC 2013) as used by ISAAC = 1.67 pJ/conversion; "
    "other resolutions: capacitive-DAC scaling of that ADC (docs/cost-model.md#constants)"
)


def _const(default: Any, unit: str, source: str) -> Any:
    return field(default=default, metadata={"unit": unit, "source": source})


@dataclass
class HardwareConfig:
    """Crossbar accelerator constants (ISAAC-style, 32 nm) and mapping options.

    Sizes are counts, energies pJ (cells fJ), areas um^2, times ns. ``*_scale`` fields multiply
    the matching energy (or area) term, for sensitivity studies.
    """

    name: str = "isaac32"
    # array geometry and bits
    rows: int = _const(128, "word lines per array", ISAAC + ": 128x128 arrays")
    cols: int = _const(128, "bit lines per array", ISAAC + ": 128x128 arrays")
    weight_bits: int = _const(
        1, "bits", "docs/cost-model.md#bits: default 1 (published tables ignore bits)"
    )
    cell_bits: int = _const(1, "bits per cell", "docs/cost-model.md#bits: default 1")
    differential: bool = _const(
        False, "flag", "docs/cost-model.md#bits: two cells per weight slice when true"
    )
    input_bits: int = _const(1, "bits", "docs/cost-model.md#bits: default 1 (bit-serial inputs)")
    dac_bits: int = _const(1, "bits", ISAAC + ": 1-bit DACs")
    adc_bits: int = _const(8, "bits", ISAAC + ": 8-bit ADC for 128 rows, 2-bit cells, 1-bit DAC")
    cycle_ns: float = _const(
        100.0, "ns per array read", ISAAC + ": 128 columns per ADC at 1.28 GS/s"
    )
    columns_per_adc: int = _const(
        128, "columns sharing one ADC", ISAAC + ": one ADC per 128-column array"
    )
    # energy per action
    adc_energy_pj: float | None = _const(
        None, "pJ per conversion (null: table by adc_bits)", ADC_ENERGY_SOURCE
    )
    dac_energy_pj: float = _const(
        0.39,
        "pJ per row per input cycle",
        ISAAC + ": 8x128 1-bit DACs 4 mW per IMA -> 3.9 uW x 100 ns",
    )
    cell_energy_fj: float = _const(
        1.83,
        "fJ per cell per input cycle",
        ISAAC + ": 0.3 mW per 128x128 array x 100 ns = 30 pJ / 16384 cells",
    )
    shift_add_energy_pj: float = _const(
        0.021,
        "pJ per column per input cycle",
        ISAAC + ": shift-and-add units, 0.2 mW per 8x128 columns x 100 ns",
    )
    psum_add_energy_pj: float = _const(
        0.021,
        "pJ per partial-sum add",
        "assumption: one digital add of two partial sums costs one ISAAC shift-and-add operation",
    )
    prune_periphery_energy_pj: float = _const(
        0.121,
        "pJ per active row per input cycle (row-skipping layers only)",
        "assumption: one extra input-register access per active row (index lookup + input mux), "
        "costed as ISAAC's 2 KB input register: 1.24 mW x 100 ns / (8 arrays x 128 rows)",
    )
    # area
    cell_area_um2: float = _const(
        0.00153, "um^2 per cell", ISAAC + ": 8 arrays of 128x128 in 0.0002 mm^2"
    )
    adc_area_um2: float = _const(1200.0, "um^2 per ADC", ISAAC + ": 8 ADCs in 0.0096 mm^2 (8 bit)")
    dac_area_um2: float = _const(0.166, "um^2 per row", ISAAC + ": 8x128 DACs in 0.00017 mm^2")
    sample_hold_area_um2: float = _const(
        0.039, "um^2 per column", ISAAC + ": 8x128 sample-and-hold in 0.00004 mm^2"
    )
    shift_add_area_um2: float = _const(
        30.0,
        "um^2 per array",
        ISAAC + ": 4 shift-and-add units in 0.00024 mm^2 per IMA of 8 arrays",
    )
    prune_periphery_area_um2_per_row: float = _const(
        4.1,
        "um^2 per row of an array that skips rows",
        "assumption: a 16-bit row-index entry plus an input-mux slice per row, each sized as 2 B of "
        "ISAAC's input register (2 KB in 0.0021 mm^2, about 1.03 um^2 per byte)",
    )
    # scale factors (sensitivity studies)
    adc_energy_scale: float = _const(1.0, "factor", "user knob, 1 = as cited")
    dac_energy_scale: float = _const(1.0, "factor", "user knob, 1 = as cited")
    cell_energy_scale: float = _const(1.0, "factor", "user knob, 1 = as cited")
    shift_add_energy_scale: float = _const(1.0, "factor", "user knob, 1 = as cited")
    psum_energy_scale: float = _const(1.0, "factor", "user knob, 1 = as cited")
    periphery_energy_scale: float = _const(1.0, "factor", "user knob, 1 = as cited")
    area_scale: float = _const(1.0, "factor", "user knob, 1 = as cited")
    # mapping options
    search: Search = field(
        default=Search.exact,
        metadata={"unit": "option", "source": "docs/cost-model.md#vw-sdk-search"},
    )
    convention: Convention = field(
        default=Convention.physical,
        metadata={"unit": "option", "source": "docs/cost-model.md#conventions"},
    )
    pack_groups: bool = _const(True, "option", "docs/cost-model.md#grouped-conv")
    pipeline: bool = _const(False, "option", "docs/cost-model.md#low-rank-pair (pair latency)")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field outside its valid range."""
        for name in (
            "rows",
            "cols",
            "weight_bits",
            "cell_bits",
            "input_bits",
            "dac_bits",
            "adc_bits",
            "columns_per_adc",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"hw.{name} must be an integer >= 1, got {value!r}")
        for name in ("rows", "cols"):
            if getattr(self, name) > MAX_ARRAY_SIDE:
                raise ValueError(
                    f"hw.{name}={getattr(self, name)} is larger than the estimator supports "
                    f"(1..{MAX_ARRAY_SIDE}; fabricated arrays are 64-1024 a side)"
                )
        if not self.cycle_ns > 0:
            raise ValueError(f"hw.cycle_ns must be > 0, got {self.cycle_ns!r}")
        for f in dataclasses.fields(self):
            if f.name.endswith(("_pj", "_fj", "_um2", "_um2_per_row", "_scale")):
                value = getattr(self, f.name)
                if value is None and f.name == "adc_energy_pj":
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"hw.{f.name} must be a number >= 0, got {value!r}")
        if self.adc_energy_pj is None and self.adc_bits not in ADC_ENERGY_PJ_BY_BITS:
            raise ValueError(
                f"hw.adc_bits={self.adc_bits} has no tabulated energy (valid: "
                f"{min(ADC_ENERGY_PJ_BY_BITS)}..{max(ADC_ENERGY_PJ_BY_BITS)}); set hw.adc_energy_pj"
            )
        self.search = parse_option(Search, self.search, "hw.search")
        self.convention = parse_option(Convention, self.convention, "hw.convention")
        self.crossbar()  # checks that a weight fits into the columns

    def crossbar(self) -> Crossbar:
        """The array geometry used by the mapping."""
        return Crossbar(
            rows=self.rows,
            cols=self.cols,
            weight_bits=self.weight_bits,
            cell_bits=self.cell_bits,
            differential=bool(self.differential),
        )

    @property
    def input_cycles(self) -> int:
        """Bit-serial input cycles per MVM: ``ceil(input_bits / dac_bits)``."""
        return -(-self.input_bits // self.dac_bits)

    @property
    def adc_energy(self) -> float:
        """pJ per conversion, scaled."""
        base = (
            self.adc_energy_pj
            if self.adc_energy_pj is not None
            else ADC_ENERGY_PJ_BY_BITS[self.adc_bits]
        )
        return float(base) * self.adc_energy_scale

    def array_area_um2(self) -> float:
        """Area of one array with its ADCs, DACs, sample-and-hold and shift-and-add, scaled."""
        adcs = -(-self.cols // self.columns_per_adc)
        area = (
            self.rows * self.cols * self.cell_area_um2
            + adcs * self.adc_area_um2
            + self.rows * self.dac_area_um2
            + self.cols * self.sample_hold_area_um2
            + self.shift_add_area_um2
        )
        return area * self.area_scale

    def periphery_area_um2(self) -> float:
        """Extra area of one array whose layer skips rows (index memory and input mux), scaled."""
        return self.rows * self.prune_periphery_area_um2_per_row * self.area_scale

    def to_dict(self) -> dict[str, Any]:
        """Plain values (enums as strings), e.g. for JSON."""
        out = dataclasses.asdict(self)
        out["search"] = self.search.value
        out["convention"] = self.convention.value
        return out

    @classmethod
    def from_cfg(cls, cfg: Any) -> HardwareConfig:
        """Build (and validate) from a HardwareConfig, an OmegaConf node or a mapping."""
        if isinstance(cfg, HardwareConfig):
            return cfg
        if cfg is None:
            return cls()
        if not isinstance(cfg, Mapping):
            try:
                from omegaconf import DictConfig, OmegaConf
            except ImportError as error:  # pragma: no cover - omegaconf is a dependency
                raise TypeError(
                    f"cannot build a HardwareConfig from {type(cfg).__name__}"
                ) from error
            if not isinstance(cfg, DictConfig):
                raise TypeError(f"cannot build a HardwareConfig from {type(cfg).__name__}")
            cfg = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
        values = dict(cfg)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown hw fields {unknown}; valid: {sorted(known)}")
        return cls(**values)


def constant_sources() -> dict[str, str]:
    """Field name -> source string, for every constant of :class:`HardwareConfig`."""
    return {
        f.name: f.metadata["source"]
        for f in dataclasses.fields(HardwareConfig)
        if "source" in f.metadata
    }


def register_hw_schema(cs: ConfigStore) -> None:
    """Store :class:`HardwareConfig` as group ``hw``, name ``base_hw`` (presets extend it)."""
    cs.store(group="hw", name="base_hw", node=HardwareConfig)
