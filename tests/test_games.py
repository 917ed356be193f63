"""The game-scene dataset: deterministic rendering, its fixture, its file format and bad input."""
from pathlib import Path

import numpy as np
import pytest
import torch

from argen import games
from argen.data import DATASETS, get_dataset, load_dataset, load_games

FIXTURE = Path(__file__).parent / "fixtures" / "games_test_first100.npz"  # the test split's first 100 frames
LARGE = Path(__file__).parent / "fixtures" / "games96x128_test_first100.npz"  # the same frames at 96 x 128

pytest.importorskip("ale_py")


def test_rendering_matches_the_committed_fixture():
    """The first frames of each game's test split, rendered here, are the bytes committed when the
    dataset was made: rendering is deterministic across runs and machines. The games take turns."""
    fixture, large = np.load(FIXTURE), np.load(LARGE)
    count = fixture["images"].shape[0] // len(games.GAMES)
    assert fixture["labels"].tolist() == large["labels"].tolist() == list(range(len(games.GAMES))) * count
    for index, (game, name) in enumerate(games.GAMES):
        frames = games.play(game, "test", count, sizes=(games.PIXEL_SIZE, (96, 128)))
        assert frames[games.PIXEL_SIZE].dtype == np.uint8 and frames[games.PIXEL_SIZE].shape == (count, 3, 32, 32)
        np.testing.assert_array_equal(frames[games.PIXEL_SIZE], fixture["images"][index::len(games.GAMES)], err_msg=name)
        np.testing.assert_array_equal(frames[(96, 128)], large["images"][index::len(games.GAMES)], err_msg=name)
    assert list(fixture["class_names"]) == list(games.CLASS_NAMES) == list(DATASETS["games"].class_names)


def test_a_split_is_a_prefix_and_splits_differ():
    """Asking for more frames extends the same sequence; train and test are other episodes."""
    short = games.play("pong", "test", 2)[games.PIXEL_SIZE]
    long = games.play("pong", "test", 3, sizes=(games.PIXEL_SIZE, (20, 16)))
    np.testing.assert_array_equal(long[games.PIXEL_SIZE][:2], short)
    assert long[(20, 16)].shape == (3, 3, 20, 16)
    train = games.play("pong", "train", 2)[games.PIXEL_SIZE]
    assert not np.array_equal(train, short)
    kept = long[games.PIXEL_SIZE].astype(int)
    assert all(np.abs(kept[i + 1] - kept[i]).mean() > games.MIN_CHANGE for i in range(2))  # no near-duplicates


def test_written_file_loads_as_a_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(games, "SPLITS", {"train": 2, "test": 1})
    games.write(tmp_path, progress=None)
    images, labels = load_dataset("games", "test", tmp_path)
    assert images.dtype == torch.uint8 and images.shape == (10, 3, 32, 32)
    assert labels.tolist() == list(range(10))
    np.testing.assert_array_equal(images.numpy(), np.load(FIXTURE)["images"][:10])
    train_images, train_labels = load_dataset("games", "train", tmp_path)
    assert train_images.shape == (20, 3, 32, 32) and train_labels.tolist() == list(range(10)) * 2


@pytest.mark.parametrize("call, message", [
    (lambda: games.play("tetris", "test", 1), "game must be one of"),
    (lambda: games.play("pong", "valid", 1), "split must be one of"),
    (lambda: games.parse_size("32by32"), "HEIGHTxWIDTH"),
    (lambda: games.parse_size("300x32"), "within 4x4 and 210x160"),
    (lambda: get_dataset("cifar100"), "dataset must be one of"),
    (lambda: load_games("validation"), "split must be .train. or .test."),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_missing_file_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m argen.games --data-dir"):
        load_games("test", tmp_path)


def test_cifar10_reads_its_own_format(tmp_path):
    """A CIFAR-10 folder as torchvision leaves it (pickled batches of 3,072-byte rows) loads as
    colour pictures, channels first, with their labels; nothing is downloaded when it is there."""
    import pickle

    from argen.data import CIFAR_FILES, CIFAR_FOLDER

    folder = tmp_path / CIFAR_FOLDER
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = {}
    for split, names in CIFAR_FILES.items():
        for i, name in enumerate(names):
            rows[name] = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
            with open(folder / name, "wb") as f:
                pickle.dump({"data": rows[name], "labels": [i, 9 - i]}, f)
    images, labels = load_dataset("cifar10", "train", tmp_path)
    assert images.dtype == torch.uint8 and images.shape == (10, 3, 32, 32)
    assert labels.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    red = rows["data_batch_1"][0][:1024].reshape(32, 32)  # the format: 1,024 red values, then green, then blue
    np.testing.assert_array_equal(images[0, 0].numpy(), red)
    test_images, test_labels = load_dataset("cifar10", "test", tmp_path)
    assert test_images.shape == (2, 3, 32, 32) and test_labels.tolist() == [0, 9]
    assert get_dataset("cifar10").classifier is None  # no judge is shipped: evaluation skips sample quality
