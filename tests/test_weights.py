"""The shipped weights load, follow the contract and reproduce their recorded figures."""
import math
import shutil

import pytest
import torch

import argen
from argen.evaluate import FIXTURE_IMAGES, final_metrics, likelihood_metrics, masked_metrics
from argen.hub import model_dir, read_metrics
from argen.likelihood import class_posterior
from conftest import load_fixture

SHIPPED = argen.available()


def test_the_models_are_shipped():
    assert {"mlp-v1", "mlp-v2", "mlp-v3", "pixel-gpt", "bsq-gpt", "gated-pixelcnn-binary"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_reproduces_recorded_fixture_likelihood(name):
    """On the first FIXTURE_IMAGES test images, through the codec its config.json names (for the
    binary model: the fixed-seed Bernoulli draw its metrics were measured on)."""
    model, metrics = argen.load(name), read_metrics(name)
    images, labels = load_fixture(model.config.dataset)
    measure = likelihood_metrics if model.exact_likelihood else masked_metrics
    measured = measure(model, images[:FIXTURE_IMAGES], labels[:FIXTURE_IMAGES])
    assert measured == pytest.approx(metrics["fixture"], rel=2e-6, abs=2e-4)  # float32 sums: relative where large
    test_images = 2000 if "--test-images 2000" in metrics["train"].get("command", "") else 10_000
    assert metrics["fixture"]["num_images"] == FIXTURE_IMAGES and metrics["test"]["num_images"] == test_images
    assert metrics["train"]["command"].startswith(("python -m train ", "python -m train.adversarial ", "torchrun "))
    data = {"levels": model.levels, "codec": model.codec.kind}  # (older metrics name no dataset: MNIST)
    assert metrics["data"] in (data, {"dataset": model.config.dataset, **data})
    assert metrics["data"].get("dataset", "mnist") == model.config.dataset


@pytest.mark.parametrize("name, dataset", [("bsq-tokenizer", "mnist"), ("mnist-classifier", "mnist"),
                                           ("games-classifier", "games"), ("games-tokenizer", "games-96x128")])
def test_tokenizer_and_classifiers_reproduce_their_fixture_figures(name, dataset):
    images, labels = load_fixture(dataset)
    measured = final_metrics(argen.load(name), images, labels)
    assert measured["fixture"] == pytest.approx(read_metrics(name)["fixture"], abs=0.01)


def test_games_classifier_tells_the_games_apart():
    """The judge of colour samples names the game of every frame of the committed fixture, and
    refuses pictures of another dataset."""
    from argen.classifier import predict

    classifier = argen.load("games-classifier")
    images, labels = load_fixture("games")
    assert torch.equal(predict(classifier, images)[0], labels)
    with pytest.raises(ValueError, match=r"judges pictures of shape \(3, 32, 32\) \(games\)"):
        classifier.features(load_fixture()[0][:2])


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_samples_and_is_causal(name):
    model = argen.load(name)
    kwargs = {"labels": [3, 8]} if model.num_classes else {"num_images": 2}
    images = argen.sample(model, seed=0, **kwargs)
    assert images.shape == (2, *model.value_shape)
    y = torch.tensor(kwargs["labels"]) if model.num_classes else None
    if not model.exact_likelihood:  # a masked model: its logits never see a hidden value
        drawn = torch.rand(images.shape, generator=torch.Generator().manual_seed(0)) < 0.5
        changed = torch.where(drawn, images, (images + 1) % model.levels)
        assert torch.equal(model(images, y, drawn), model(changed, y, drawn))
        return
    x = images.clone()
    base = model(x, y)
    channels, height, width = model.value_shape
    # mid-image; for a pyramid (one row of values), a value with finer scales after it (games-var: the 12 x 16 scale)
    row, col = height // 2, width // 3 if height > 1 else width // 5
    x[:, 0, row, col] = (x[:, 0, row, col] + 1) % model.levels  # change one value mid-image (R of a colour pixel)
    moved = (model(x, y) - base).abs().amax(1).permute(0, 2, 3, 1).flatten(1) > 1e-5  # (b, h*w*c) raster order
    steps, step = argen.pipelines.steps_to(model, (0, row, col))  # of the model's schedule
    assert not moved[:, steps <= step].any() and moved[:, steps > step].any()
    if channels > 1:  # the pixel's own G and B read its R
        t = argen.pipelines.raster_index(model, (0, row, col))
        assert moved[:, t + 1:t + channels].all()


def test_mlp_ranking_and_v3_digits():
    """The blog's expected order, V3 < V2 < V1 in test bits/dim, and V3 is better with the right class."""
    bpd = {v: read_metrics(f"mlp-{v}")["test"]["bits_per_dim"] for v in ("v1", "v2", "v3")}
    assert bpd["v3"] < bpd["v2"] < bpd["v1"]
    model = argen.load("mlp-v3")
    images, labels = load_fixture()
    predicted = class_posterior(model, model.codec.encode(images[:50])).argmax(-1)
    assert (predicted == labels[:50]).float().mean() > 0.8  # the model as a classifier recognises digits
    assert math.isfinite(bpd["v3"])


def test_binary_model_scores_what_its_metrics_measured():
    """The binarized model's codec is in its config: it scores the fixed-seed Bernoulli draw, not a threshold."""
    model = argen.load("gated-pixelcnn-binary")
    images = load_fixture()[0][:4]
    assert model.codec.spec["binarization"] == "dynamic"
    drawn = model.codec.encode(images)
    assert torch.equal(drawn, model.codec.encode(images)) and not torch.equal(drawn, (images >= 128).long())


def test_weights_folder_from_the_environment(tmp_path, monkeypatch):
    """$ARGEN_WEIGHTS may name another folder laid out like weights/ (a Hub snapshot is one)."""
    shutil.copytree(model_dir("mlp-v1"), tmp_path / "my-model")
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    assert argen.available() == ["my-model"]
    assert argen.load("my-model").config.variant == "v1"
    monkeypatch.setenv("ARGEN_WEIGHTS", "./no/such/folder")
    with pytest.raises(ValueError, match="neither a folder nor a Hub repo id"):
        argen.available()


def test_publish_stages_what_load_reads(tmp_path, monkeypatch, capsys):
    """The folder `python -m argen.publish` uploads is a weights folder: argen.load reads every model
    in it (ARGEN_WEIGHTS pointing at it, as at a Hub snapshot) with the same outputs; a dry run sends nothing."""
    from argen.publish import main as publish_main
    from argen.publish import stage

    names = ["mlp-v1", "bsq-gpt"]
    paths = stage(names, tmp_path)
    assert "bsq-gpt/model.safetensors" in paths and "mlp-v1/metrics.json" in paths
    local = {name: argen.load(name) for name in names}
    monkeypatch.setenv("ARGEN_WEIGHTS", str(tmp_path))
    assert argen.available() == sorted(names)
    for name, model in local.items():
        x = argen.sample(model, seed=1, **({"labels": [4]} if model.num_classes else {"num_images": 1}))
        y = torch.tensor([4]) if model.num_classes else None
        assert torch.equal(argen.load(name)(x, y), model(x, y))
    monkeypatch.delenv("ARGEN_WEIGHTS")
    monkeypatch.setattr("huggingface_hub.HfApi", None)  # any network call would fail
    publish_main(["mlp-v1", "--repo-id", "someone/argen", "--dry-run"])
    assert "someone/argen/mlp-v1/model.safetensors" in capsys.readouterr().out
