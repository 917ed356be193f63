"""The shipped weights load, follow the contract and reproduce their recorded figures."""
import json
import math

import pytest
import torch

import argen
from argen.evaluate import likelihood_metrics, load_fixture
from argen.hub import model_dir

SHIPPED = argen.available()


def test_the_foundation_models_are_shipped():
    assert {"mlp-v1", "mlp-v2", "mlp-v3"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_reproduces_recorded_fixture_likelihood(name):
    model = argen.load(name)
    metrics = json.loads((model_dir(name) / "metrics.json").read_text())
    images, labels = load_fixture()
    measured = likelihood_metrics(model, images, labels, metrics["data"]["binarization"])
    assert measured["bits_per_dim"] == pytest.approx(metrics["fixture"]["bits_per_dim"], abs=2e-4)
    assert metrics["test"]["num_images"] == 10_000
    assert metrics["train"]["command"].startswith("python -m train ")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_samples_and_is_causal(name):
    model = argen.load(name)
    kwargs = {"labels": [3, 8]} if model.num_classes else {"num_images": 2}
    images = argen.sample(model, seed=0, **kwargs)
    assert images.shape == (2, *model.image_shape)
    y = torch.tensor(kwargs["labels"]) if model.num_classes else None
    x = images.clone()
    base = model(x, y)
    _, height, width = model.image_shape
    row, col = height // 2, width // 3
    x[:, :, row, col] = (x[:, :, row, col] + 1) % model.levels  # change one value mid-image
    moved = (model(x, y) - base).abs().amax(1).flatten(1) > 1e-5  # (b, h*w*c) raster order
    position = row * width + col
    assert not moved[:, :position + 1].any()


def test_mlp_ranking_and_v3_digits():
    """The blog's expected order, V3 < V2 < V1 in test bits/dim, and V3 is better with the right class."""
    bpd = {v: argen.hub.read_metrics(f"mlp-{v}")["test"]["bits_per_dim"] for v in ("v1", "v2", "v3")}
    assert bpd["v3"] < bpd["v2"] < bpd["v1"]
    model = argen.load("mlp-v3")
    images, labels = load_fixture()
    images, labels = images[:100], labels[:100]
    from argen.likelihood import class_posterior
    from argen.data import quantize

    predicted = class_posterior(model, quantize(images, model.levels)).argmax(-1)
    assert (predicted == labels).float().mean() > 0.8  # the model as a classifier recognises digits
    assert math.isfinite(bpd["v3"])


def test_weights_folder_from_the_environment(tmp_path, monkeypatch):
    """$ARGEN_WEIGHTS may name another folder laid out like weights/ (a Hub snapshot is one)."""
    import shutil

    shutil.copytree(model_dir("mlp-v1"), tmp_path / "my-model")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    assert argen.available() == ["my-model"]
    assert argen.load("my-model").variant == "v1"
    monkeypatch.setenv("ARGEN_WEIGHTS", "./no/such/folder")
    with pytest.raises(ValueError, match="neither a folder nor a Hub repo id"):
        argen.available()
