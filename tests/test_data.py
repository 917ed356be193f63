import pytest
import torch

from argen.data import binarized_test_set, check_images, check_labels, dequantize, dynamic_binarize, quantize
from argen.models import Binary, Levels, Tokens, build_codec
from conftest import load_fixture


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


TINY_TOKENS = {"image_shape": (1, 8, 12), "hidden_channels": 4, "latent_dim": 4, "bits": 3}


@pytest.mark.parametrize("codec", [Levels(16), Levels(4, (3, 5, 4)), Binary("threshold"), Binary("dynamic"),
                                   Tokens(TINY_TOKENS)], ids=lambda c: c.kind + str(c.value_shape))
def test_codec_round_trip_and_spec(codec):
    g = torch.Generator().manual_seed(0)
    pictures = torch.randint(0, 256, (3, *codec.picture_shape), generator=g, dtype=torch.uint8)
    values = codec.encode(pictures)
    assert values.shape == (3, *codec.value_shape) and values.dtype == torch.long
    assert values.min() >= 0 and values.max() < codec.levels
    decoded = codec.decode(values)
    assert decoded.shape == pictures.shape and decoded.dtype == torch.uint8
    assert torch.equal(codec.encode(decoded), values) or codec.kind in ("binary", "bsq-tokens")
    assert codec.pixels_per_value * codec.num_values == codec.picture_shape[1] * codec.picture_shape[2]
    assert build_codec(codec.spec).spec == codec.spec
    blank = torch.zeros(3, *codec.value_shape, dtype=torch.bool)
    assert (codec.decode(values, blank) == 0).all()


def test_rgb_levels_are_channels_innermost():
    codec = Levels(4, (3, 2, 2))
    assert codec.unit == "colour value" and codec.pixels_per_value == pytest.approx(1 / 3)
    assert Levels(16).unit == "pixel" and Tokens(TINY_TOKENS).units == "tokens"


def test_binary_codec_draws_fresh_for_training_and_fixed_for_scoring():
    images = load_fixture()[0][:50]
    codec = Binary("dynamic")
    assert torch.equal(codec.encode(images), binarized_test_set(images))
    g = torch.Generator().manual_seed(1)
    assert not torch.equal(codec.encode_for_training(images, g), codec.encode(images))
    threshold = Binary("threshold")
    assert torch.equal(threshold.encode(images), (images >= 128).long())
    assert codec.bits_8bit(0.16) is None and Levels(16).bits_8bit(0.5) == pytest.approx(4.5)


@pytest.mark.parametrize("make, message", [
    (lambda: Binary("otsu"), "binarization must be one of"), (lambda: Levels(300), "levels must be an integer"),
    (lambda: Levels(4, (3, 5)), "image_shape must be"), (lambda: build_codec({"kind": "jpeg"}), "'kind' is one of"),
    (lambda: Levels(16).encode(torch.zeros(1, 1, 5, 5, dtype=torch.uint8)), "pictures must have shape"),
])
def test_bad_codecs(make, message):
    with pytest.raises(ValueError, match=message):
        make()
