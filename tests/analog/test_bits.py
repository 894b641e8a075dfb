"""Fewer ADC bits never help a trained model (digits, a small CNN trained for a few seconds)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from imcompress.analog.data import normalized_batches
from imcompress.analog.evaluation import evaluate_analog
from imcompress.data import ImageDataModule


@pytest.fixture(scope="module")
def trained_on_digits() -> tuple[nn.Module, ImageDataModule]:
    torch.manual_seed(0)
    data = ImageDataModule(
        name="digits", num_classes=10, channels=1, image_size=8, batch_size=64, crop_padding=0
    )
    data.prepare_data()
    data.setup()
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    batches = normalized_batches(data, "train")
    for _ in range(8):
        for images, labels in batches:
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval(), data


def test_fewer_adc_bits_never_help(trained_on_digits, preset) -> None:
    model, data = trained_on_digits
    test = normalized_batches(data, "test")
    calibration = [images for images, _ in normalized_batches(data, "train", batches=4)]
    accuracy = {}
    for bits in (8, 5, 4, 3, 2):
        settings = preset("quant", f"analog.output_bits={bits}", "analog.input_range.batches=4")
        result = evaluate_analog(model, settings, test, calibration, data.num_classes)
        accuracy[bits] = result.mean_accuracy
        digital = result.digital_accuracy
    print("accuracy by ADC bits", accuracy, "digital", digital)
    assert digital > 0.9, f"the fixture did not learn digits: {digital}"
    one_image = 1.0 / sum(len(labels) for _, labels in test)
    assert accuracy[8] >= digital - 0.02
    for more, fewer in ((8, 5), (5, 4), (4, 3), (3, 2)):
        assert accuracy[fewer] <= accuracy[more] + 2 * one_image, accuracy
    assert accuracy[2] < digital - 0.3, accuracy  # the ADC knob is effective
