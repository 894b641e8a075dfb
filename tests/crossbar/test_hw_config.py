"""Hardware presets: composed through the ``base_hw`` schema, every constant sourced."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from imcompress.crossbar import HardwareConfig, register_hw_schema
from imcompress.crossbar.config import constant_sources

CONF = Path(__file__).resolve().parents[2] / "conf"
PRESETS = sorted(p.stem for p in (CONF / "hw").glob("*.yaml"))


@pytest.fixture(scope="module", autouse=True)
def schema() -> None:
    register_hw_schema(ConfigStore.instance())


def _compose(overrides: list[str], conf: Path = CONF):
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose(config_name=None, overrides=overrides)


def test_required_presets_exist() -> None:
    assert {"imc64", "imc128", "imc256", "imc512"} <= set(PRESETS)
    multi_bit = [
        p for p in PRESETS if OmegaConf.load(CONF / "hw" / f"{p}.yaml").get("weight_bits", 1) > 1
    ]
    assert multi_bit


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_composes_and_validates(preset: str) -> None:
    cfg = _compose([f"+hw={preset}"])
    hw = HardwareConfig.from_cfg(cfg.hw)
    assert hw.name == preset
    assert hw.rows == hw.cols
    if preset.startswith("imc") and preset[3:].isdigit():
        assert hw.rows == int(preset[3:])


@pytest.mark.parametrize("preset", PRESETS)
def test_every_field_is_set_and_commented_with_a_unit(preset: str) -> None:
    text = (CONF / "hw" / f"{preset}.yaml").read_text()
    assert re.search(r"^defaults:\n  - base_hw\n  - _self_", text, re.M)
    for field in dataclasses.fields(HardwareConfig):
        line = re.search(rf"^{field.name}: .*$", text, re.M)
        assert line, f"{preset}: {field.name} missing"
        if field.name != "name":
            assert "#" in line.group(0) and "[" in line.group(0), (
                f"{preset}: {field.name} needs a unit comment"
            )


def test_every_constant_has_a_source() -> None:
    sources = constant_sources()
    for field in dataclasses.fields(HardwareConfig):
        if field.name != "name":
            assert sources.get(field.name), field.name


def test_typo_and_wrong_type_fail_at_compose_time() -> None:
    with pytest.raises(ConfigCompositionException):
        _compose(["+hw=imc64", "hw.rowz=3"])
    with pytest.raises(ConfigCompositionException):
        _compose(["+hw=imc64", "hw.rows=many"])
    with pytest.raises(ConfigCompositionException):
        _compose(["+hw=imc64", "hw.search=exactly"])


def test_typo_inside_a_preset_file_fails_at_compose_time(tmp_path: Path) -> None:
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "bad.yaml").write_text("defaults:\n  - base_hw\n  - _self_\nrowz: 64\n")
    with pytest.raises(ConfigCompositionException):
        _compose(["+hw=bad"], tmp_path)


@pytest.mark.parametrize(
    ("field", "value"),
    [("rows", 0), ("cols", -4), ("input_bits", 0), ("cycle_ns", 0.0), ("dac_energy_pj", -1.0)],
)
def test_non_positive_values_name_the_field(field: str, value: float) -> None:
    cfg = _compose(["+hw=imc128", f"hw.{field}={value}"])
    with pytest.raises(ValueError, match=rf"hw\.{field}"):
        HardwareConfig.from_cfg(cfg.hw)
    from imcompress.config import check_required

    with pytest.raises(ValueError, match=rf"hw\.{field}"):
        check_required(cfg)  # what train.py and estimate.py run before touching any data


def test_adc_bits_without_table_entry_need_an_energy() -> None:
    with pytest.raises(ValueError, match="adc_bits"):
        HardwareConfig(adc_bits=12)
    assert HardwareConfig(adc_bits=12, adc_energy_pj=4.0).adc_energy == 4.0


def test_from_cfg_accepts_dicts_and_rejects_unknown_keys() -> None:
    assert (
        HardwareConfig.from_cfg({"rows": 64, "cols": 32, "search": "reference"}).crossbar().cols
        == 32
    )
    with pytest.raises(ValueError, match="unknown hw fields"):
        HardwareConfig.from_cfg({"rowz": 64})


def test_multi_bit_preset_slices_weights() -> None:
    hw = HardwareConfig.from_cfg(_compose(["+hw=imc128_8bit"]).hw)
    assert hw.crossbar().slices == 4 and hw.crossbar().weight_cols == 32
    assert hw.input_cycles == 8


def test_one_vocabulary_per_option() -> None:
    """The hw schema fields are typed with the enums that map_layers parses; strings still work."""
    from imcompress.crossbar import (
        Convention,
        Crossbar,
        LayerTable,
        Method,
        Search,
        map_layers,
        mapping,
    )

    types = {f.name: f.type for f in dataclasses.fields(HardwareConfig)}
    assert types["search"] in (Search, "Search") and types["convention"] in (
        Convention,
        "Convention",
    )
    assert tuple(Method) == mapping.METHODS
    assert not hasattr(mapping, "SEARCHES") and not hasattr(mapping, "LOWRANK_MAPPINGS")
    table = LayerTable.from_shapes(height=16, kernel=3, in_channels=8, out_channels=8)
    typed = map_layers(
        table, Crossbar(64, 64), Method.vwsdk, Search.reference, Convention.reference
    )
    plain = map_layers(table, Crossbar(64, 64), "vwsdk", "reference", "reference")
    assert typed.cycles.tolist() == plain.cycles.tolist() and typed.search == "reference"
    with pytest.raises(
        ValueError, match=r"hw\.convention='paper', valid: \['physical', 'reference'"
    ):
        HardwareConfig(convention="paper")


@pytest.mark.parametrize("override", ["hw.convention=paper", "hw.search=fifo"])
def test_bad_mapping_options_fail_at_compose_time(override: str) -> None:
    with pytest.raises(ConfigCompositionException) as error:
        _compose(["+hw=imc64", override])
    assert "Invalid value" in str(error.value.__cause__) and "expected one of" in str(
        error.value.__cause__
    )
