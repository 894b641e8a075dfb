"""aihwkit-lightning ``TorchInferenceRPUConfig`` objects from resolved :class:`TileSettings`."""

from __future__ import annotations

from aihwkit_lightning.simulator.configs import (
    TorchInferenceRPUConfig,
    WeightClipType,
    WeightNoiseInjectionType,
    WeightQuantizationType,
)

from imcompress.analog.schema import TileSettings


def resolution(bits: int | None) -> float:
    """The library's resolution for ``bits``: ``2**bits - 2`` symmetric steps; -1 = exact."""
    return float(2**bits - 2) if bits is not None else -1.0


def mapping_config(settings: TileSettings) -> TorchInferenceRPUConfig:
    """Exact tiles (no range, quantization or noise) split at ``tile_rows`` rows.

    This is the configuration of the ``ideal`` preset and the one used while calibrating input
    ranges (the library requires no input range and no input quantization then).
    """
    rpu = TorchInferenceRPUConfig()
    rpu.mapping.max_input_size = settings.tile_rows if settings.tile_rows > 0 else -1
    return rpu


def inference_config(settings: TileSettings) -> TorchInferenceRPUConfig:
    """Tiles for evaluation: static input range, DAC/ADC/weight quantization, output bound and
    read noise (the library adds ``out_noise`` only to layers in training mode: see
    :func:`imcompress.analog.noise.read_noise`). Programming noise is not part of the config; it
    is drawn once per repeat by :func:`imcompress.analog.noise.program_weights`."""
    rpu = mapping_config(settings)
    rpu.pre_post.input_range.enable = settings.uses_input_range
    rpu.pre_post.input_range.learn_input_range = False
    rpu.forward.inp_res = resolution(settings.input_bits)
    rpu.forward.out_res = resolution(settings.output_bits)
    rpu.forward.out_bound = settings.out_bound
    rpu.forward.out_noise = settings.out_noise
    if settings.weight_bits is not None:
        rpu.modifier.quantization_type = WeightQuantizationType.DISCRETIZE_PER_CHANNEL
        rpu.modifier.res = resolution(settings.weight_bits)
    return rpu


def training_config(settings: TileSettings) -> TorchInferenceRPUConfig:
    """Tiles for hardware-aware training: the inference config plus learned input ranges
    (initialised from the first ``hwa_init_batches`` batches), per-step Gaussian weight noise
    relative to each column's max |w|, and Gaussian weight clipping after every optimizer step."""
    rpu = inference_config(settings)
    ranges = rpu.pre_post.input_range
    ranges.enable = True
    ranges.learn_input_range = True
    ranges.init_from_data = settings.hwa_init_batches
    if settings.hwa_weight_noise > 0:
        rpu.modifier.noise_type = WeightNoiseInjectionType.ADD_NORMAL_PER_CHANNEL
        rpu.modifier.std_dev = settings.hwa_weight_noise
    if settings.hwa_clip_sigma > 0:
        rpu.clip.type = WeightClipType.LAYER_GAUSSIAN
        rpu.clip.sigma = settings.hwa_clip_sigma
    return rpu
