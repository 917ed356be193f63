import struct

import pytest
import torch

from argen.models import (MODEL_TYPES, DiagonalBiLSTM, GatedPixelCNN, PixelCNN, PixelGPT, PixelLSTM, PixelMLP,
                          RowLSTM, TokenGPT)

# Tests run many tiny tensor operations, for which one thread is fastest; it also keeps them from
# competing with the app server's threads (and any training running beside them) for the cores.
torch.set_num_threads(1)

# A tiny configuration of every registered model family (fast on CPU). Every family must have one.
TINY_MODELS = {
    "mlp-v1": lambda: PixelMLP(variant="v1", levels=4, hidden_dim=16, context_length=5, image_shape=(1, 6, 5)),
    "mlp-v2": lambda: PixelMLP(variant="v2", levels=4, hidden_dim=16, context_length=5, image_shape=(1, 6, 5)),
    "mlp-v3": lambda: PixelMLP(variant="v3", levels=4, hidden_dim=16, embed_dim=4, context_length=5,
                               image_shape=(1, 6, 5)),
    "lstm": lambda: PixelLSTM(levels=5, image_shape=(1, 6, 5), embed_dim=4, position_dim=8, hidden_dim=8),
    "lstm-unconditional": lambda: PixelLSTM(levels=3, image_shape=(1, 4, 5), num_classes=0, embed_dim=4,
                                            position_dim=4, hidden_dim=8, num_layers=1),
    "pixel-gpt": lambda: PixelGPT(levels=5, image_shape=(1, 6, 5), dim=16, num_heads=2, num_layers=2, mlp_dim=32),
    "pixel-gpt-unconditional": lambda: PixelGPT(levels=3, image_shape=(1, 4, 5), num_classes=0, dim=8,
                                                num_heads=2, num_layers=1, mlp_dim=16),
    "token-gpt": lambda: TokenGPT(tokenizer={"image_shape": (1, 16, 12), "hidden_channels": 8, "latent_dim": 8,
                                             "bits": 3}, dim=16, num_heads=2, num_layers=2, mlp_dim=32),
    "pixelcnn": lambda: PixelCNN(levels=5, image_shape=(1, 6, 5), hidden_channels=8, num_blocks=2),
    "pixelcnn-rgb": lambda: PixelCNN(levels=4, image_shape=(3, 5, 4), num_classes=0, hidden_channels=24,
                                     num_blocks=2),
    "gated-pixelcnn": lambda: GatedPixelCNN(levels=5, image_shape=(1, 6, 5), hidden_channels=8, num_layers=4,
                                            output_channels=8),
    "gated-pixelcnn-binary": lambda: GatedPixelCNN(levels=2, image_shape=(1, 6, 5), num_classes=0,
                                                   hidden_channels=8, num_layers=4, output_channels=8),
    "row-lstm": lambda: RowLSTM(levels=5, image_shape=(1, 7, 6), hidden_channels=4, num_layers=2,
                                input_kernel_size=3, output_channels=8),
    "diagonal-bilstm": lambda: DiagonalBiLSTM(levels=5, image_shape=(1, 6, 5), hidden_channels=4, num_layers=2,
                                              output_channels=8),
}
# models whose receptive field is the whole causal past (no blind spot) at their tiny size
FULL_FIELD = {"gated-pixelcnn", "gated-pixelcnn-binary", "diagonal-bilstm", "lstm", "lstm-unconditional",
              "pixel-gpt", "pixel-gpt-unconditional", "token-gpt"}


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
    x = torch.randint(0, model.levels, (batch, *model.image_shape), generator=g)
    y = torch.randint(0, model.num_classes, (batch,), generator=g) if model.num_classes else None
    return x, y


def labels_kwargs(model, batch):
    """Sampler arguments for a batch: labels for a conditional model, num_images otherwise."""
    if model.num_classes:
        return {"labels": list(range(batch))}
    return {"num_images": batch}


def test_every_family_has_a_tiny_config():
    covered = {factory().model_type for factory in TINY_MODELS.values()}
    assert covered == set(MODEL_TYPES)


def write_idx(path, array):
    """MNIST's raw idx format: magic, dims, then the uint8 data."""
    kind = 0x0803 if array.dim() == 3 else 0x0801
    path.write_bytes(struct.pack(">I", kind) + b"".join(struct.pack(">I", d) for d in array.shape)
                     + array.numpy().astype("uint8").tobytes())


def fake_mnist(tmp_path, train=96, test=64):
    """A tiny MNIST root (raw idx files from the fixture images) for the train command."""
    from argen.evaluate import load_fixture

    images, labels = load_fixture()
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    splits = {"train": slice(0, train), "t10k": slice(train, train + test)}
    for split, part in splits.items():
        write_idx(raw / f"{split}-images-idx3-ubyte", images[part, 0])
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels[part])
    return tmp_path / "data"
