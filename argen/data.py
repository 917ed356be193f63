"""The datasets, as 8-bit pictures, and integer pixel levels.

This module names the datasets the models learn from (:data:`DATASETS`: MNIST through torchvision,
the game scenes of :mod:`argen.games`), each with its picture shape, class names and the classifier
that judges its samples, and loads them as uint8 pictures. It also holds the conversions the codecs
(:mod:`argen.models.codecs`) are built from: quantization of an 8-bit pixel into K bins
(2 <= K <= 256; a ``long`` level in ``[0, K)``) and back, binarization (fixed threshold, or the
literature's dynamic Bernoulli binarization), and the checks of what users hand to the models.
"""
import os
from dataclasses import dataclass
from pathlib import Path

import torch

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
MIN_LEVELS, MAX_LEVELS = 2, 256
TEST_BINARIZATION_SEED = 0  # fixes the Bernoulli draw of the binarized test set


def data_root(root=None):
    """Where MNIST lives: the given folder, else $ARGEN_DATA, else ./data (git-ignored)."""
    return root or os.environ.get("ARGEN_DATA") or "data"


def load_mnist(split="train", root=None):
    """8-bit MNIST as ``(images uint8 [N, 1, 28, 28], labels int64 [N])``.

    Downloads into ``root`` when the raw files are missing; with them present nothing is fetched.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    from torchvision.datasets import MNIST

    dataset = MNIST(data_root(root), train=split == "train", download=True)
    return dataset.data.unsqueeze(1).clone(), dataset.targets.clone()


@dataclass(frozen=True)
class Dataset:
    """A dataset the models learn from: what its pictures are and who judges samples of it."""

    name: str
    image_shape: tuple  # (C, H, W) of its uint8 pictures
    class_names: tuple
    classifier: str | None  # the shipped classifier that judges samples (accuracy per class, FID), if any
    about: str
    class_word: str = "class"  # what one class is called in a sentence: a digit, a game
    samples: str | None = None  # the file in argen/assets of ten test pictures per class, in class order

    def a_class(self, c):
        """Class ``c`` in a sentence: "a 7" for a digit (a short name), the game's name for a game."""
        name = self.class_names[c]
        return f"a {name}" if len(name) <= 2 else name

    def test_samples(self):
        """The ten test pictures per class that come with the library (uint8 ``[N, C, H, W]``, labels
        ``[N]``), or None: what the app completes, scores and compresses."""
        import numpy as np

        if self.samples is None:
            return None
        with np.load(Path(__file__).parent / "assets" / self.samples) as data:
            return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]).long()

    def load(self, split="train", root=None):
        """``(images uint8 [N, C, H, W], labels int64 [N])`` of a split."""
        if self.name == "mnist":
            return load_mnist(split, root)
        if self.name == "cifar10":
            return load_cifar10(split, root)
        return load_games(split, root, self.image_shape[1:])


GAME_NAMES = ("Pong", "Breakout", "Space Invaders", "Enduro", "Freeway", "Ms. Pac-Man", "Seaquest", "Boxing",
              "River Raid", "Road Runner")
DATASETS = {d.name: d for d in (
    Dataset("mnist", IMAGE_SHAPE, tuple(str(d) for d in range(NUM_CLASSES)), "mnist-classifier",
            "handwritten digits, 28 x 28 grey (LeCun et al. 1998)", "digit", "digits.npz"),
    Dataset("games", (3, 32, 32), GAME_NAMES, "games-classifier",
            "ten Atari games, 32 x 32 colour frames rendered offline (python -m argen.games)", "game", "games.npz"),
    Dataset("games-96x128", (3, 96, 128), GAME_NAMES, "games-classifier",
            "the same ten Atari games, 96 x 128 colour frames, for the token models "
            "(python -m argen.games --sizes 32x32 96x128; judged shrunk to 32 x 32)", "game",
            "games-96x128.npz"),  # the same frames as games.npz
    Dataset("cifar10", (3, 32, 32), ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                     "truck"), None, "CIFAR-10, 32 x 32 colour photographs (Krizhevsky 2009); no judge "
                                                     "is shipped"),
)}


def get_dataset(name):
    """The :class:`Dataset` called ``name``; a clear error for any other name."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
    return DATASETS[name]


def load_dataset(name, split="train", root=None):
    """``(images uint8 [N, C, H, W], labels int64 [N])`` of a dataset's split."""
    return get_dataset(name).load(split, root)


def games_path(root=None, size=(32, 32)):
    """Where :mod:`argen.games` writes the game scenes of one size: ``<data>/games/games-<H>x<W>.npz``."""
    return Path(data_root(root)) / "games" / f"games-{size[0]}x{size[1]}.npz"


def load_games(split="train", root=None, size=(32, 32)):
    """Game frames as ``(images uint8 [N, 3, H, W], labels int64 [N])``, from the file
    ``python -m argen.games`` renders (it names the command when the file is missing)."""
    import numpy as np

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = games_path(root, size)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: render the game scenes first with "
                                f"python -m argen.games --data-dir {data_root(root)} --sizes {size[0]}x{size[1]} "
                                f"(about a minute)")
    with np.load(path) as data:
        return torch.from_numpy(data[f"{split}_images"]), torch.from_numpy(data[f"{split}_labels"]).long()


CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


def load_cifar10(split="train", root=None):
    """CIFAR-10 as ``(images uint8 [N, 3, 32, 32], labels int64 [N])``: torchvision downloads the
    archive into ``root`` when its folder is missing; the batches are then read as the format
    defines them (Python pickles of ``data`` rows and ``labels``)."""
    import pickle

    import numpy as np

    if split not in CIFAR_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(data_root(root)) / CIFAR_FOLDER
    if not folder.is_dir():
        from torchvision.datasets import CIFAR10

        CIFAR10(data_root(root), train=split == "train", download=True)
    images, labels = [], []
    for name in CIFAR_FILES[split]:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        images.append(np.asarray(batch["data"], np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch["labels"], np.int64))
    return torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels))


def check_levels(levels):
    if isinstance(levels, bool) or not isinstance(levels, int) or not MIN_LEVELS <= levels <= MAX_LEVELS:
        raise ValueError(f"levels must be an integer in [{MIN_LEVELS}, {MAX_LEVELS}], got {levels!r}")
    return levels


def check_uint8_images(images):
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        kind = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected a uint8 image tensor with values 0-255, got {kind}")
    if images.dim() != 4:
        raise ValueError(f"expected images of shape [B, C, H, W], got shape {tuple(images.shape)}")
    return images


def quantize(images, levels):
    """8-bit pixels -> K equal-width bins, as ``long`` levels in [0, K)."""
    check_levels(levels)
    return (check_uint8_images(images).long() * levels) // MAX_LEVELS


def dequantize(x, levels):
    """Levels in [0, K) -> 8-bit pixels at the centre of each bin (uint8)."""
    check_levels(levels)
    return ((x.long().float() + 0.5) * (MAX_LEVELS / levels)).floor().clamp(0, MAX_LEVELS - 1).to(torch.uint8)


def binarize(images, threshold=128):
    """Fixed-threshold binarization: 1 where the pixel is >= threshold."""
    return (check_uint8_images(images) >= threshold).long()


def dynamic_binarize(images, generator=None):
    """Bernoulli binarization with p = intensity / 255 (Salakhutdinov & Murray 2008)."""
    probs = check_uint8_images(images).float() / 255
    drawn_on = probs.device if generator is None else generator.device  # a CPU generator for GPU images too
    return torch.bernoulli(probs.to(drawn_on), generator=generator).long().to(probs.device)


def binarized_test_set(images):
    """The fixed-seed Bernoulli binarization used to report nats/image on binarized MNIST."""
    return dynamic_binarize(images, torch.Generator().manual_seed(TEST_BINARIZATION_SEED))


def check_images(x, levels, image_shape):
    """Validate model input: ``long``-like levels in [0, K) of shape [B, *image_shape]."""
    if not isinstance(x, torch.Tensor) or x.dtype.is_floating_point or x.dtype == torch.bool:
        kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"images must be an integer tensor of levels in [0, {levels}), got {kind}")
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(image_shape):
        raise ValueError(f"images must have shape [B, {', '.join(map(str, image_shape))}], got {tuple(x.shape)}")
    x = x.long()  # compare as long: 256 does not fit a uint8
    if x.numel() and (x.min() < 0 or x.max() >= levels):
        raise ValueError(f"image values must be levels in [0, {levels}), got range [{int(x.min())}, {int(x.max())}]")
    return x


def check_labels(y, num_classes, batch, null=False):
    """Validate class labels: None for an unconditional model, else ints in [0, num_classes), and
    num_classes too (the null class: no class) when ``null``."""
    if num_classes == 0:
        if y is not None:
            raise ValueError("this model is unconditional: pass no labels (y=None)")
        return None
    if y is None:
        raise ValueError(f"this model is class-conditional: pass labels in [0, {num_classes})")
    y = torch.as_tensor(y)
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise ValueError(f"labels must be integers in [0, {num_classes}), got {y.dtype}")
    y = y.long().reshape(-1)
    if y.numel() != batch:
        raise ValueError(f"expected {batch} labels (one per image), got {y.numel()}")
    bad = y[(y < 0) | (y >= num_classes + null)]
    if bad.numel():
        also = f" or {num_classes} (the null class)" if null else ""
        raise ValueError(f"labels must be in [0, {num_classes}){also}, got {int(bad[0])}")
    return y


def from_drawing(array, size=IMAGE_SHAPE[1], box=20):
    """A free-hand drawing -> an MNIST-like uint8 image ``[1, 1, size, size]``.

    Accepts a grey, RGB or RGBA array of any size. Ink is taken from the alpha channel when the
    background is transparent, else from darkness on a light background (or brightness on a dark
    one). Like MNIST, the ink's bounding box is scaled to fit ``box`` pixels and centred.
    """
    import numpy as np
    from PIL import Image

    a = np.asarray(array)
    if a.ndim not in (2, 3) or a.shape[0] < 2 or a.shape[1] < 2 or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ValueError(f"a drawing must be a grey, RGB or RGBA image of at least 2x2 pixels, got shape {a.shape}")
    a = a.astype(np.float64)
    grey = a if a.ndim == 2 else a[..., :3].mean(-1)
    if np.ptp(grey) <= 25 and not (a.ndim == 3 and a.shape[2] == 4 and np.ptp(a[..., 3]) > 25):
        if grey.mean() > 127 or (a.ndim == 3 and a.shape[2] == 4 and a[..., 3].max() == 0):  # white, or transparent
            raise ValueError("the drawing is empty: draw a digit first")
        raise ValueError(f"the drawing is one flat dark colour (grey level {grey.mean():.0f} everywhere): draw a "
                         f"digit in dark ink on a light background")
    if a.ndim == 3 and a.shape[2] == 4 and a[..., 3].min() < 255:
        ink = a[..., 3] * (255 - a[..., :3].mean(-1)) / 255 if a[..., :3].mean() > 127 else a[..., 3]
    else:
        grey = a if a.ndim == 2 else a[..., :3].mean(-1)
        ink = 255 - grey if np.median(grey) > 127 else grey
    rows, cols = np.nonzero(ink > 25)
    if rows.size == 0:
        raise ValueError("the drawing is empty: draw a digit first")
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = box / max(ink.shape)
    new_size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = np.asarray(Image.fromarray(ink.astype(np.uint8)).resize(new_size, Image.LANCZOS))
    out = np.zeros((size, size), np.uint8)
    top, left = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return torch.from_numpy(out)[None, None]
