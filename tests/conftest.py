import struct

import pytest
import torch

from argen.models import (FAMILIES, Binary, DiagonalBiLSTM, GatedPixelCNN, ImageGPT, Levels, MaskGIT, MultiScalePixelRNN, PixelCNN, PixelCNNPP,
                          PixelLSTM, PixelMLP, Pyramid, RowLSTM, Tokens, VAR)

# Tests run many tiny tensor operations, for which one thread is fastest; it also keeps them from
# competing with the app server's threads (and any training running beside them) for the cores.
torch.set_num_threads(1)


def grey(levels, shape=(1, 6, 5)):
    return Levels(levels, shape)


TINY_TOKENIZER = {"image_shape": (1, 16, 12), "hidden_channels": 8, "latent_dim": 8, "bits": 3}
TINY_RGB_TOKENIZER = {"image_shape": (3, 8, 16), "hidden_channels": 8, "latent_dim": 8, "bits": 3}  # 2 x 4 tokens
TINY_PYRAMID = {**TINY_TOKENIZER, "scales": [[1, 1], [2, 2], [4, 3]]}  # 1 + 4 + 12 tokens
TINY_RGB_PYRAMID = {**TINY_RGB_TOKENIZER, "scales": [[1, 1], [1, 2], [2, 4]]}
# A tiny configuration of every registered model family (fast on CPU). Every family must have one.
TINY_MODELS = {
    "mlp-v1": lambda: PixelMLP(variant="v1", codec=grey(4), hidden_dim=16, context_length=5),
    "mlp-v2": lambda: PixelMLP(variant="v2", codec=grey(4), hidden_dim=16, context_length=5),
    "mlp-v3": lambda: PixelMLP(variant="v3", codec=grey(4), hidden_dim=16, embed_dim=4, context_length=5,
                                class_dropout=0.1),
    "lstm": lambda: PixelLSTM(codec=grey(5), embed_dim=4, position_dim=8, hidden_dim=8),
    "lstm-unconditional": lambda: PixelLSTM(codec=grey(3, (1, 4, 5)), num_classes=0, embed_dim=4, position_dim=4,
                                            hidden_dim=8, num_layers=1),
    "lstm-rgb": lambda: PixelLSTM(codec=Levels(4, (3, 3, 4)), embed_dim=4, position_dim=4, class_dropout=0.1,
                                  hidden_dim=8, num_layers=1, output="logistic-mixture", num_mixtures=2),
    "lstm-mixture": lambda: PixelLSTM(codec=grey(6, (1, 4, 3)), embed_dim=4, position_dim=4, hidden_dim=8,
                                      num_layers=1, output="logistic-mixture", num_mixtures=2),
    "pixel-gpt": lambda: ImageGPT(codec=grey(5), dim=16, num_heads=2, num_layers=2, mlp_dim=32),
    "pixel-gpt-unconditional": lambda: ImageGPT(codec=grey(3, (1, 4, 5)), num_classes=0, dim=8, num_heads=2,
                                                num_layers=1, mlp_dim=16),
    "pixel-gpt-rgb": lambda: ImageGPT(codec=Levels(4, (3, 3, 4)), num_classes=0, dim=8, num_heads=2, num_layers=1,
                                      mlp_dim=16),
    "bsq-gpt": lambda: ImageGPT(codec=Tokens(TINY_TOKENIZER), dim=16, num_heads=2, num_layers=2, mlp_dim=32),
    "bsq-gpt-rgb": lambda: ImageGPT(codec=Tokens(TINY_RGB_TOKENIZER), class_dropout=0.1, dim=16, num_heads=2, num_layers=1, mlp_dim=32),
    "gpt-no-positions": lambda: ImageGPT(codec=grey(4, (1, 3, 4)), dim=16, num_heads=2, num_layers=2, mlp_dim=32,
                                         positions=False),
    "maskgit-rgb": lambda: MaskGIT(codec=Tokens(TINY_RGB_TOKENIZER), dim=16, num_heads=2, num_layers=1, mlp_dim=32,
                                   steps=3),
    "maskgit": lambda: MaskGIT(codec=Tokens(TINY_TOKENIZER), dim=16, num_heads=2, num_layers=2, mlp_dim=32, steps=4,
                                class_dropout=0.1),
    "maskgit-pixels": lambda: MaskGIT(codec=grey(4, (1, 3, 4)), num_classes=0, dim=8, num_heads=2, num_layers=1,
                                      mlp_dim=16, steps=3),
    "var": lambda: VAR(codec=Pyramid(TINY_PYRAMID), class_dropout=0.1, dim=16, num_heads=2, num_layers=2, mlp_dim=32),
    "var-rgb": lambda: VAR(codec=Pyramid(TINY_RGB_PYRAMID), num_classes=0, dim=8, num_heads=2, num_layers=1,
                           mlp_dim=16),
    "pixelcnn": lambda: PixelCNN(codec=grey(5), hidden_channels=8, num_blocks=2, class_dropout=0.1),
    "pixelcnn-rgb": lambda: PixelCNN(codec=Levels(4, (3, 5, 4)), num_classes=0, hidden_channels=24, num_blocks=2),
    "pixelcnnpp": lambda: PixelCNNPP(codec=grey(5, (1, 8, 4)), hidden_channels=8, num_resnets=2, num_scales=3,
                                     num_mixtures=2, class_dropout=0.1),
    "pixelcnnpp-rgb": lambda: PixelCNNPP(codec=Levels(4, (3, 4, 4)), num_classes=0, hidden_channels=8, num_resnets=1,
                                         num_scales=2, num_mixtures=2),
    "pixelcnnpp-softmax": lambda: PixelCNNPP(codec=grey(5, (1, 4, 4)), hidden_channels=8, num_resnets=1,
                                             num_scales=2, output="softmax"),
    "gated-pixelcnn": lambda: GatedPixelCNN(codec=grey(5), hidden_channels=8, num_layers=4, output_channels=8,
                                             class_dropout=0.1),
    "gated-pixelcnn-binary": lambda: GatedPixelCNN(codec=Binary("dynamic", (1, 6, 5)), num_classes=0,
                                                   hidden_channels=8, num_layers=4, output_channels=8),
    "row-lstm": lambda: RowLSTM(codec=grey(5, (1, 7, 6)), hidden_channels=4, num_layers=2, input_kernel_size=3,
                                output_channels=8, class_dropout=0.1),
    "diagonal-bilstm": lambda: DiagonalBiLSTM(codec=grey(5), hidden_channels=4, num_layers=2, output_channels=8),
    "multiscale-pixelrnn": lambda: MultiScalePixelRNN(codec=grey(5, (1, 6, 8)), hidden_channels=4, num_layers=2,
                                                      small_hidden_channels=4, small_num_layers=1, input_kernel_size=3,
                                                      conditioning_channels=4, output_channels=8, class_dropout=0.1),
}
# a null class for classifier-free guidance: mlp-v3, lstm-rgb, bsq-gpt-rgb, maskgit, pixelcnn, pixelcnnpp,
# gated-pixelcnn, row-lstm and multiscale-pixelrnn (one of each family that has classes); the others guide by the Bayes rule
# models whose receptive field is the whole causal past (no blind spot) at their tiny size
FULL_FIELD = {"pixelcnnpp", "pixelcnnpp-rgb", "pixelcnnpp-softmax", "gated-pixelcnn", "gated-pixelcnn-binary", "diagonal-bilstm", "lstm", "lstm-unconditional", "lstm-rgb", "lstm-mixture",
              "pixel-gpt", "pixel-gpt-unconditional", "pixel-gpt-rgb", "bsq-gpt", "bsq-gpt-rgb",
              "gpt-no-positions", "var", "var-rgb"}


def make_tiny(name):
    torch.manual_seed(0)
    return TINY_MODELS[name]().eval()


@pytest.fixture(params=sorted(TINY_MODELS))
def tiny(request):
    model = make_tiny(request.param)
    model.tiny_name = request.param
    return model


def random_batch(model, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.levels, (batch, *model.value_shape), generator=g)
    y = torch.randint(0, model.num_classes, (batch,), generator=g) if model.num_classes else None
    return x, y


def labels_kwargs(model, batch):
    """Sampler arguments for a batch of one image per class."""
    from argen.sampling import requests

    return requests(model, list(range(batch)))


def test_every_family_has_a_tiny_config():
    covered = {factory().model_type for factory in TINY_MODELS.values()}
    assert covered == set(FAMILIES)


def write_idx(path, array):
    """MNIST's raw idx format: magic, dims, then the uint8 data."""
    kind = 0x0803 if array.dim() == 3 else 0x0801
    path.write_bytes(struct.pack(">I", kind) + b"".join(struct.pack(">I", d) for d in array.shape)
                     + array.numpy().astype("uint8").tobytes())


FIXTURES = {"mnist": "mnist_test_1000.npz", "games": "games_test_first100.npz",
            "games-96x128": "games96x128_test_first100.npz"}


def load_fixture(dataset="mnist"):
    """The first test images and labels of a dataset, kept in the repo for tests (MNIST: 1,000;
    the game scenes: 100, ten of each game)."""
    import numpy as np
    from pathlib import Path

    data = np.load(Path(__file__).parent / "fixtures" / FIXTURES[dataset])
    return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]).long()


def fake_games(tmp_path, train=60, test=40, size=(32, 32)):
    """A tiny data folder holding the game scenes' file of one ``size`` (from the fixture frames,
    enlarged by repeating pixels), as ``python -m argen.games`` writes it."""
    import numpy as np

    from argen.data import DATASETS, games_path

    images, labels = load_fixture("games")
    images = images.repeat_interleave(size[0] // 32, 2).repeat_interleave(size[1] // 32, 3)
    path = games_path(tmp_path / "data", size)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, train_images=images[:train].numpy(), train_labels=labels[:train].numpy(),
                        test_images=images[train:train + test].numpy(), test_labels=labels[train:train + test].numpy(),
                        class_names=np.array(DATASETS["games"].class_names))
    return tmp_path / "data"


def fake_mnist(tmp_path, train=96, test=64):
    """A tiny MNIST root (raw idx files from the fixture images) for the commands that read MNIST."""
    images, labels = load_fixture()
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    splits = {"train": slice(0, train), "t10k": slice(train, train + test)}
    for split, part in splits.items():
        write_idx(raw / f"{split}-images-idx3-ubyte", images[part, 0])
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels[part])
    return tmp_path / "data"
