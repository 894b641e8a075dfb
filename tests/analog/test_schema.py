"""The ``analog`` config group: presets, typos at compose time, values checked before any work."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from imcompress.analog.schema import AnalogConfig, Calibration, resolve_settings
from tests.test_errors import error_lines, run_plain


def test_presets_resolve_with_tile_size_from_the_hw_preset(preset) -> None:
    none = preset("none")
    ideal = preset("ideal", hw="imc128")
    quant = preset("quant", hw="imc256")
    noisy = preset("noisy")
    assert none.name == "none"
    assert (ideal.tile_rows, ideal.tile_cols) == (128, 128)
    assert (quant.tile_rows, quant.tile_cols) == (256, 256)
    assert (ideal.input_bits, ideal.output_bits, ideal.weight_bits) == (None, None, None)
    assert not ideal.uses_input_range and not ideal.noisy
    assert (quant.input_bits, quant.output_bits, quant.weight_bits) == (8, 8, 8)
    assert quant.out_bound == 10.0 and not quant.noisy
    assert noisy.noisy and noisy.repeats == 5
    assert (noisy.out_noise, noisy.programming_noise) == (0.04, 0.04)


def test_a_misspelt_key_fails_at_compose_time(preset) -> None:
    with pytest.raises(ConfigCompositionException, match="out_bond"):
        preset("quant", "analog.out_bond=3")


def test_a_calibration_outside_its_enum_fails_at_compose_time(preset) -> None:
    with pytest.raises(ConfigCompositionException) as raised:
        preset("quant", "analog.input_range.calibration=minmax")
    cause = str(raised.value.__cause__)
    assert "'minmax'" in cause and all(member.value in cause for member in Calibration)
    assert preset("quant", "analog.input_range.calibration=max").calibration == Calibration.max


def test_a_bad_enum_value_on_the_command_line_is_one_error_line(tmp_path) -> None:
    rc, stderr = run_plain(
        "evaluate.py",
        "ckpt=unused",
        "analog=quant",
        "analog.input_range.calibration=minmax",
        cwd=tmp_path,
    )
    assert rc == 1 and "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in error_lines(stderr) if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "analog.input_range.calibration" in errors[0] and "'minmax'" in errors[0]
    assert all(member.value in errors[0] for member in Calibration), errors[0]


def test_a_plain_node_with_a_bad_calibration_names_the_valid_values() -> None:
    from omegaconf import OmegaConf

    # a saved run's config is a plain node, not checked by the schema at load time
    plain = OmegaConf.create(
        OmegaConf.to_container(OmegaConf.structured(AnalogConfig), enum_to_str=True)
    )
    plain.input_range.calibration = "minmax"
    with pytest.raises(ValueError, match=r"calibration='minmax'; valid: \['cache_quantile'"):
        resolve_settings(plain, OmegaConf.create({"name": "imc64", "rows": 64, "cols": 64}))


def test_bits_from_hw_take_the_hw_resolutions(preset) -> None:
    tied = preset("quant", "analog.bits_from_hw=true", hw="imc128_8bit")
    assert (tied.input_bits, tied.output_bits, tied.weight_bits) == (8, 8, 8)
    # the default hw presets describe 1-bit bit-serial cost-model arrays: not a tile resolution
    with pytest.raises(ValueError, match=r"input_bits=1 \(from hw=imc128 input_bits\)"):
        preset("quant", "analog.bits_from_hw=true", hw="imc128")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"output_bits": 8, "out_bound": 0.0}, "needs an ADC range"),
        ({"input_bits": 8, "input_range": {"calibration": "none"}}, "input_bits is relative"),
        ({"repeats": 0}, "repeats=0"),
        ({"weight_bits": 1}, "weight_bits=1"),
        ({"programming_noise": -0.1}, "programming_noise"),
        ({"tile_rows": -2}, "tile_rows=-2"),
        ({"out_noise": float("nan")}, "out_noise=nan must be a finite number"),
        ({"out_bound": float("inf")}, "out_bound=inf must be a finite number"),
        ({"input_range": {"quantile": float("nan")}}, "quantile=nan must be a finite number"),
    ],
)
def test_bad_values_fail_with_the_value_and_the_valid_range(overrides, message) -> None:
    from omegaconf import OmegaConf

    node = OmegaConf.merge(OmegaConf.structured(AnalogConfig(enabled=True)), overrides)
    with pytest.raises(ValueError, match=message):
        resolve_settings(node, OmegaConf.create({"name": "imc64", "rows": 64, "cols": 64}))


def test_tile_columns_are_the_cost_model_weight_columns(preset) -> None:
    # imc128_8bit: 8-bit weights on 2-bit cells = 4 columns per weight, 128 // 4 = 32 weights
    assert preset("quant", hw="imc128_8bit").tile_cols == 32
    assert preset("quant", "analog.tile_cols=0", hw="imc128_8bit").tile_cols == 0
