"""Lossless compression: exact round trips for every exact family, file sizes at the model's NLL,
identical probabilities on both sides, and clear errors for bad files and bad input."""
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import argen
from argen import compression
from argen.compression import CompressionError, decode, encode
from argen.likelihood import surprise_bits
from conftest import TINY_MODELS, load_fixture, make_tiny

EXACT = sorted(name for name in TINY_MODELS if make_tiny(name).exact_likelihood)
COARSE_TO_FINE = "multiscale-pixelrnn"


def random_pictures(model, count=3, seed=0):
    """uint8 pictures whose values are random levels: what a codec gives back exactly."""
    g = torch.Generator().manual_seed(seed)
    values = torch.randint(0, model.levels, (count, *model.value_shape), generator=g)
    with torch.no_grad():
        return model.codec.decode(values)


@pytest.mark.parametrize("name", EXACT)
def test_round_trip_is_exact_and_costs_the_models_bits(name):
    model = make_tiny(name)
    pictures = random_pictures(model)
    values = model.codec.encode(pictures)
    encoded = encode(model, pictures)
    decoded, classes, _ = decode(encoded.data, model)
    assert torch.equal(decoded, values)
    assert (classes is None) == (not model.num_classes)
    if classes is not None:
        assert torch.equal(classes, encoded.classes)
    # the coder's bits are the teacher-forced surprise (the fast path's logits equal the network's up to rounding)
    surprise = surprise_bits(model, values, encoded.classes)
    assert encoded.bits == pytest.approx(surprise, rel=1e-3, abs=1e-3)
    class_bits = math.log2(model.num_classes) * len(pictures) if model.num_classes else 0
    ideal = float(surprise.sum()) + class_bits
    assert 8 * encoded.payload_bytes <= ideal * 1.01 + 64  # the range coder's flush: at most two words


def test_coarse_to_fine_order_round_trips_through_its_own_schedule():
    model = make_tiny(COARSE_TO_FINE)
    pictures = random_pictures(model, 2, seed=1)
    assert argen.compress(model, pictures) == argen.compress(model, pictures)  # deterministic
    assert not torch.equal(model.schedule().order(model.num_values), torch.arange(model.num_values))
    assert torch.equal(argen.decompress(argen.compress(model, pictures), model), pictures)


def test_shipped_model_round_trips_digits_within_a_percent_of_its_likelihood():
    model = argen.load("pixel-gpt")
    images, labels = load_fixture()
    pictures, classes = images[:10], labels[:10]
    encoded = encode(model, pictures, classes)
    assert torch.equal(argen.decompress(encoded.data), pictures)  # the model named in the header, loaded
    nll_bits = float(argen.score(model, pictures, classes).bits.sum())
    class_bits = len(pictures) * math.log2(model.num_classes)
    assert 8 * encoded.payload_bytes <= (nll_bits + class_bits) * 1.01


def test_the_most_probable_class_is_coded_when_none_is_given():
    model = argen.load("mlp-v3")
    pictures = load_fixture()[0][:4]
    encoded = encode(model, pictures)
    assert torch.equal(encoded.classes, argen.score(model, pictures).label)
    assert torch.equal(decode(encoded.data)[1], encoded.classes)


def test_decoder_runs_on_the_thread_count_the_file_records():
    """A batch is coded on the caller's threads; the decoder takes the same count from the header,
    whatever its caller's, so both see the same probabilities."""
    model = make_tiny("pixel-gpt")
    pictures = random_pictures(model, compression.BATCH + 3)  # a batch of 100 and a small one
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        data = argen.compress(model, pictures)
        torch.set_num_threads(1)
        assert compression.read_header(data).threads == 2
        assert torch.equal(argen.decompress(data, model), pictures)
        assert torch.get_num_threads() == 1  # the caller's count is given back
    finally:
        torch.set_num_threads(before)


def test_lossy_codecs_are_lossless_over_their_values_and_say_what_the_picture_lost():
    model = argen.load("mlp-v3")  # 16 grey levels
    pictures = load_fixture()[0][:2]
    back = argen.decompress(argen.compress(model, pictures))
    assert torch.equal(back, model.codec.decode(model.codec.encode(pictures)))
    largest, psnr = compression.picture_error(model, pictures)
    assert 0 < largest <= 8 and 25 < psnr < math.inf
    assert "lossless over the model's values" in compression.describe(model, pictures, encode(model, pictures))


@pytest.fixture(scope="module")
def digit_file():
    model = make_tiny("pixel-gpt")
    pictures = random_pictures(model, 2)
    return model, pictures, argen.compress(model, pictures)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-1], "checksum"),
    (lambda d: d[:len(d) // 2], "truncated"),
    (lambda d: d[:7], "truncated"),
    (lambda d: d[:-20] + bytes([d[-20] ^ 1]) + d[-19:], "checksum"),
    (lambda d: b"", "empty"),
    (lambda d: b"\x89PNG\r\n\x1a\n" + d, "not an .argen file"),
    (lambda d: d[:5] + b"\x07" + d[6:], "format version 7"),
])
def test_damaged_files_are_refused_with_a_clear_error(digit_file, damage, message):
    model, _, data = digit_file
    with pytest.raises(CompressionError, match=message):
        argen.decompress(damage(data), model)


def test_a_file_is_refused_by_other_weights(digit_file):
    model, pictures, data = digit_file
    other = make_tiny("pixel-gpt")
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    with pytest.raises(CompressionError, match="other weights"):
        argen.decompress(data, other)
    with pytest.raises(CompressionError, match="other weights"):
        argen.decompress(data, make_tiny("lstm"))


def test_bad_input_is_refused_with_a_clear_error():
    model = make_tiny("pixel-gpt")
    pictures = random_pictures(model, 2)
    with pytest.raises(CompressionError, match=r"uint8 \[B, 1, 6, 5\]"):
        argen.compress(model, pictures[:, :, :4])
    with pytest.raises(CompressionError, match="uint8"):
        argen.compress(model, pictures.float())
    with pytest.raises(CompressionError, match="B >= 1"):
        argen.compress(model, pictures[:0])
    with pytest.raises(CompressionError, match=r"classes must be 2 integers in \[0, 10\)"):
        argen.compress(model, pictures, classes=[1, 10])
    with pytest.raises(CompressionError, match="no exact likelihood"):
        argen.compress(make_tiny("maskgit"), random_pictures(make_tiny("maskgit"), 1))
    with pytest.raises(CompressionError, match="expected the bytes"):
        argen.decompress("not bytes", model)


def run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)


def refused(main, capsys, *args):
    """The message of a command that exits with status 2."""
    with pytest.raises(SystemExit) as exit_:
        main(list(map(str, args)))
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_command_line_round_trip_and_errors(tmp_path, capsys):
    images = load_fixture()[0][:2, 0].numpy()
    paths = [tmp_path / f"digit{i}.png" for i in range(2)]
    for image, path in zip(images, paths):
        Image.fromarray(image).save(path)
    out = tmp_path / "digits.argen"
    done = run("argen.compress", "mlp-v3", *paths, "-o", out)
    assert done.returncode == 0, done.stderr
    assert "2 pictures in" in done.stdout and "lossless over the model's values" in done.stdout
    done = run("argen.decompress", out, "-o", tmp_path / "back")
    assert done.returncode == 0, done.stderr
    model = argen.load("mlp-v3")
    expected = model.codec.decode(model.codec.encode(torch.from_numpy(images[:, None])))[:, 0].numpy()
    for i in range(2):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "back" / f"{i:04d}.png")), expected[i])
    (tmp_path / "notes.txt").write_text("not a picture")
    bad = tmp_path / "bad.argen"
    assert "notes.txt: not a picture" in refused(compression.compress_main, capsys, "mlp-v3", tmp_path / "notes.txt",
                                                 "-o", bad)
    assert "no exact likelihood" in refused(compression.compress_main, capsys, "maskgit", paths[0], "-o", bad)
    assert "takes 32 x 32 pictures" in refused(compression.compress_main, capsys, "pixelcnn-games", paths[0], "-o", bad)
    assert not bad.exists()
    (tmp_path / "cut.argen").write_bytes(out.read_bytes()[:-3])
    assert "checksum" in refused(compression.decompress_main, capsys, tmp_path / "cut.argen", "-o", tmp_path / "cut")
    assert not (tmp_path / "cut").exists()
