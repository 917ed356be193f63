import pytest
import torch

from argen.data import (binarized_test_set, check_images, check_labels, dequantize, dynamic_binarize, quantize,
                        to_levels)
from argen.evaluate import load_fixture


def test_fixture_is_real_mnist():
    images, labels = load_fixture()
    assert images.shape == (1000, 1, 28, 28) and images.dtype == torch.uint8
    assert set(labels.tolist()) == set(range(10))
    assert 0.10 < images.float().mean().item() / 255 < 0.16  # MNIST's pixel mean is 0.1307


@pytest.mark.parametrize("levels", [2, 3, 16, 256])
def test_quantize_round_trip_stays_in_bin(levels):
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = quantize(pixels, levels)
    assert x.min() == 0 and x.max() == levels - 1
    centres = dequantize(x, levels)
    width = 256 / levels
    assert ((pixels.float() - centres.float()).abs() <= width / 2 + 0.5).all()
    assert torch.equal(quantize(centres, levels), x)  # bin centres map back to their bin


def test_256_levels_is_identity():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    assert torch.equal(quantize(pixels, 256), pixels.long())
    assert torch.equal(dequantize(pixels.long(), 256), pixels)


def test_dynamic_binarization_is_seeded_and_unbiased():
    images, _ = load_fixture()
    a, b = binarized_test_set(images), binarized_test_set(images)
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0, 1}
    fresh = dynamic_binarize(images, torch.Generator().manual_seed(1))
    assert not torch.equal(a, fresh)
    assert abs(a.float().mean() - images.float().mean() / 255) < 0.005


@pytest.mark.parametrize("levels", [1, 257, 0, 2.5, "16", True])
def test_bad_levels(levels):
    with pytest.raises(ValueError, match="levels must be an integer in \\[2, 256\\]"):
        quantize(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), levels)


def test_bad_image_dtype_and_shape():
    with pytest.raises(ValueError, match="uint8"):
        quantize(torch.zeros(1, 1, 2, 2), 16)
    with pytest.raises(ValueError, match="shape"):
        quantize(torch.zeros(2, 2, dtype=torch.uint8), 16)


def test_binarization_needs_two_levels():
    with pytest.raises(ValueError, match="needs levels=2"):
        to_levels(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), 16, "dynamic")
    with pytest.raises(ValueError, match="binarization must be one of"):
        to_levels(torch.zeros(1, 1, 2, 2, dtype=torch.uint8), 2, "otsu")


@pytest.mark.parametrize("labels, message", [([10], "got 10"), ([-1], "got -1"), ([1.5], "integers"),
                                             ([1, 2], "expected 1 labels")])
def test_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        check_labels(torch.tensor(labels), 10, batch=1)


def test_uint8_images_are_valid_256_level_input():
    images = load_fixture()[0][:2]  # uint8 with 255s: 256 must not wrap around in the check
    assert torch.equal(check_images(images, 256, (1, 28, 28)), images.long())
    with pytest.raises(ValueError, match=r"levels in \[0, 16\)"):
        check_images(images, 16, (1, 28, 28))
