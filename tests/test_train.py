"""The training loop and the train command, on a few fixture images."""
import json

import pytest
import torch

import argen
from argen.evaluate import load_fixture
from conftest import fake_mnist, make_tiny
from train.__main__ import main as train_main
from train.loop import Likelihood, TrainConfig, train


class Interrupt(Exception):
    pass


class InterruptedLikelihood(Likelihood):
    """Stops the run (as a killed process would) when asked for batch number ``stop_at``."""

    def __init__(self, levels, stop_at):
        super().__init__(levels)
        self.calls, self.stop_at = 0, stop_at

    def batch(self, *args):
        self.calls += 1
        if self.calls == self.stop_at:
            raise Interrupt
        return super().batch(*args)


def fixture_data(model, n):
    images, labels = load_fixture()
    images = torch.nn.functional.interpolate(images[:n].float(), size=model.image_shape[1:]).to(torch.uint8)
    return images, labels[:n]


def test_resume_continues_exactly(tmp_path):
    config = TrainConfig(epochs=2, batch_size=16, warmup_steps=2, checkpoint_minutes=0, log_every=2)
    reference = make_tiny("mlp-v3")
    data = fixture_data(reference, 64)
    state = train(reference, Likelihood(reference.levels), data, data, config, tmp_path / "a.pt")
    assert state.step == 8 and len(state.val_curve) == 2

    resumed = make_tiny("mlp-v3")
    with pytest.raises(Interrupt):
        train(resumed, InterruptedLikelihood(resumed.levels, stop_at=6), data, data, config, tmp_path / "b.pt")
    resumed = make_tiny("mlp-v3")  # a fresh process: everything comes from the checkpoint
    state = train(resumed, Likelihood(resumed.levels), data, data, config, tmp_path / "b.pt", resume=True)
    assert state.step == 8
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_train_command_publishes_a_model(tmp_path):
    data = fake_mnist(tmp_path)
    train_main(["mlp", "--variant", "v2", "--hidden-dim", "16", "--epochs", "1", "--batch-size", "32",
                "--data-dir", str(data), "--out", str(tmp_path / "weights"),
                "--checkpoint", str(tmp_path / "run.pt")])
    folder = tmp_path / "weights" / "mlp-v2"
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "metrics.json",
                                                  "samples.png", "loss.png"}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["train"]["command"].startswith("python -m train mlp --variant v2")
    assert metrics["test"]["num_images"] == 64 and metrics["train"]["steps"] == 3
    model = argen.load(folder)
    assert model.variant == "v2" and metrics["parameters"] == model.num_parameters


def test_bf16_autocast_trains_float32_weights(tmp_path):
    """``--bf16`` runs the forward pass under bfloat16 autocast: the loss stays close to float32's,
    the weights and the optimizer stay float32, and the model learns."""
    model = make_tiny("pixel-gpt")
    data = fixture_data(model, 64)
    x, y = Likelihood(model.levels).batch(model, *data, None)
    full = Likelihood(model.levels).loss(model, x, y).item()
    with torch.autocast("cpu", torch.bfloat16):
        assert Likelihood(model.levels).loss(model, x, y).item() == pytest.approx(full, rel=0.02)
    config = TrainConfig(epochs=4, batch_size=16, lr=1e-2, warmup_steps=2, log_every=2, bf16=True)
    state = train(model, Likelihood(model.levels), data, data, config, tmp_path / "run.pt")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert state.val_curve[-1][1] < state.val_curve[0][1]
