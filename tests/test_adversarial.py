"""The adversarial stage of the colour LSTM: its differentiable sampler and its command."""
import json

import pytest
import torch

import argen
from argen.models import Levels, PixelLSTM
from conftest import fake_games
from train.adversarial import Discriminator, r1_penalty, sample_relaxed
from train.adversarial import main as adversarial_main


def tiny_colour_lstm(shape=(3, 1, 1), levels=4, **overrides):
    torch.manual_seed(0)
    config = dict(codec=Levels(levels, shape), output="logistic-mixture", num_mixtures=3, embed_dim=4,
                  position_dim=4, hidden_dim=8, num_layers=1)
    return PixelLSTM(**{**config, **overrides})


def test_relaxed_samples_are_levels_and_pass_gradients():
    model = tiny_colour_lstm((3, 4, 5), 256)
    pictures = sample_relaxed(model, torch.tensor([1, 2]), 2)
    assert pictures.shape == (2, 3, 4, 5) and pictures.min() >= -1 and pictures.max() <= 1
    levels = (pictures + 1) * 255 / 2
    assert torch.allclose(levels, levels.round(), atol=1e-3)  # the forward pass sees whole levels
    pictures.sum().backward()
    assert model.head.weight.grad.abs().sum() > 0


def test_relaxed_samples_follow_the_model():
    """Drawn many times, the relaxed sampler's R and G of a one-pixel picture follow the model's
    exact distributions: R's, and G's summed over R (the channel coupling included)."""
    model = tiny_colour_lstm().eval()
    y = torch.zeros(8000, dtype=torch.long)
    with torch.no_grad():
        torch.manual_seed(1)
        drawn = ((sample_relaxed(model, y, len(y)) + 1) * 3 / 2).round().long()[:, :, 0, 0]  # levels (8000, 3)
        grid = torch.tensor([[r, 0, 0] for r in range(4)]).view(4, 3, 1, 1)
        p = model(grid, y[:4]).softmax(1)[:, :, :, 0, 0]  # (4 values of R, K, C)
    p_red = p[0, :, 0]
    p_green = (p_red[:, None] * p[:, :, 1]).sum(0)  # sum over R of p(R) p(G | R)
    for channel, expected in ((0, p_red), (1, p_green)):
        seen = torch.bincount(drawn[:, channel], minlength=4).float() / len(y)
        assert torch.allclose(seen, expected, atol=0.02), (channel, seen, expected)


def test_discriminator_scores_per_class_and_r1_is_a_gradient_norm():
    discriminator = Discriminator((3, 32, 32), width=8, num_classes=10)
    pictures, y = torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([0, 1, 2, 3])
    scores = discriminator(pictures, y)
    assert scores.shape == (4,)
    assert not torch.allclose(scores, discriminator(pictures, torch.tensor([4, 5, 6, 7])))
    assert r1_penalty(discriminator, pictures, y) > 0


def test_the_command_publishes_the_averaged_generator(tmp_path, monkeypatch):
    monkeypatch.setattr("train.weights_folder.GRID_PER_CLASS", 1)  # a sample grid of 10 colour pictures, not 100
    data = fake_games(tmp_path)
    model = tiny_colour_lstm((3, 32, 32), 256, dataset="games", num_mixtures=2)
    model.save(tmp_path / "tiny")
    adversarial_main([str(tmp_path / "tiny"), "--name", "tiny-gan", "--steps", "2", "--batch-size", "2",
                      "--ema", "0.5", "--disc-width", "4", "--data-dir", str(data), "--out", str(tmp_path / "weights"),
                      "--checkpoint", str(tmp_path / "gan.pt")])
    folder = tmp_path / "weights" / "tiny-gan"
    tuned = argen.load(folder)
    assert tuned.config == model.config
    assert not torch.equal(tuned.head.weight, model.head.weight)  # the average moved
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 2 and metrics["train"]["command"].startswith("python -m train.adversarial")
    assert metrics["test"]["num_images"] == 40 and metrics["train"]["stage"].startswith("adversarial")
    assert (folder / "samples.png").is_file()
    adversarial_main([str(tmp_path / "tiny"), "--name", "tiny-nll", "--adversarial-weight", "0", "--steps", "2",
                      "--batch-size", "2", "--ema", "0.5", "--data-dir", str(data), "--out", str(tmp_path / "weights"),
                      "--checkpoint", str(tmp_path / "nll.pt")])
    control = argen.load(tmp_path / "weights" / "tiny-nll")  # the same batches, no discriminator
    assert not torch.equal(control.head.weight, tuned.head.weight) and not torch.equal(control.head.weight, model.head.weight)
    stage = json.loads((tmp_path / "weights" / "tiny-nll" / "metrics.json").read_text())["train"]["stage"]
    assert stage.startswith("likelihood-only control")


def test_the_likelihood_term_keeps_training_the_null_class(tmp_path, monkeypatch):
    """A model with a null class keeps learning p(x) through it, so that it can still be guided."""
    monkeypatch.setattr("train.weights_folder.GRID_PER_CLASS", 1)
    data = fake_games(tmp_path)
    model = tiny_colour_lstm((3, 32, 32), 256, dataset="games", num_mixtures=2, num_classes=10, class_dropout=0.5)
    model.save(tmp_path / "tiny")
    adversarial_main([str(tmp_path / "tiny"), "--name", "tiny-nll", "--adversarial-weight", "0", "--steps", "2",
                      "--batch-size", "4", "--ema", "0.5", "--data-dir", str(data), "--out", str(tmp_path / "weights"),
                      "--checkpoint", str(tmp_path / "nll.pt")])
    control = argen.load(tmp_path / "weights" / "tiny-nll")
    null = model.null_class
    assert control.null_class == null and control.can_guide
    assert not torch.equal(control.class_embedding.weight[null], model.class_embedding.weight[null])


def test_the_command_refuses_a_softmax_model(tmp_path):
    model = PixelLSTM(codec=Levels(4, (1, 4, 4)), embed_dim=4, position_dim=4, hidden_dim=8, num_layers=1)
    model.save(tmp_path / "grey")
    with pytest.raises(SystemExit, match="logistic-mixture"):
        adversarial_main([str(tmp_path / "grey"), "--steps", "1"])
