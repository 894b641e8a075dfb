"""Energy, latency and area of a mapping (docs/cost-model.md#energy), per layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imcompress.crossbar.config import HardwareConfig
from imcompress.crossbar.mapping import MappingResult

FloatArray = npt.NDArray[np.float64]

ENERGY_TERMS = ("adc", "dac", "cell", "shift_add", "psum", "periphery")


@dataclass(frozen=True)
class LayerCosts:
    """Per-layer costs of one mapping, one image. Energies in pJ, latency in ns, area in um^2."""

    latency_ns: FloatArray
    adc_pj: FloatArray
    dac_pj: FloatArray
    cell_pj: FloatArray
    shift_add_pj: FloatArray
    psum_pj: FloatArray
    periphery_pj: FloatArray
    area_um2: FloatArray
    periphery_area_um2: FloatArray

    @property
    def energy_pj(self) -> FloatArray:
        """All terms, pruning periphery included."""
        return self.energy_no_periphery_pj + self.periphery_pj

    @property
    def energy_no_periphery_pj(self) -> FloatArray:
        """All terms except the row-skipping periphery."""
        return self.adc_pj + self.dac_pj + self.cell_pj + self.shift_add_pj + self.psum_pj

    def term(self, name: str) -> FloatArray:
        """Energy term by name (see ``ENERGY_TERMS``), pJ."""
        value: FloatArray = getattr(self, f"{name}_pj")
        return value


def layer_costs(mapping: MappingResult, hw: HardwareConfig) -> LayerCosts:
    """Latency ``cycles * input_cycles * t_cycle``; energy per action; area ``arrays * per-array``."""
    bits = hw.input_cycles
    columns = mapping.col_activations.astype(np.float64) * bits
    rows = mapping.row_activations.astype(np.float64) * bits
    skipping = mapping.row_skipping
    periphery_area = np.where(skipping, mapping.arrays * hw.periphery_area_um2(), 0.0)
    return LayerCosts(
        latency_ns=mapping.cycles.astype(np.float64) * bits * hw.cycle_ns,
        adc_pj=columns * hw.adc_energy,
        dac_pj=rows * hw.dac_energy_pj * hw.dac_energy_scale,
        cell_pj=mapping.cell_reads.astype(np.float64)
        * bits
        * hw.cell_energy_fj
        * 1e-3
        * hw.cell_energy_scale,
        shift_add_pj=columns * hw.shift_add_energy_pj * hw.shift_add_energy_scale,
        psum_pj=mapping.partial_sum_adds.astype(np.float64)
        * hw.psum_add_energy_pj
        * hw.psum_energy_scale,
        periphery_pj=np.where(
            skipping, rows * hw.prune_periphery_energy_pj * hw.periphery_energy_scale, 0.0
        ),
        area_um2=np.asarray(
            mapping.arrays * hw.array_area_um2() + periphery_area, dtype=np.float64
        ),
        periphery_area_um2=periphery_area,
    )
