"""The training loop and the train command, on a few fixture images."""
import json

import pytest
import torch

import argen
from conftest import fake_games, fake_mnist, load_fixture, make_tiny
from train.__main__ import RECIPES, legacy, parse_args
from train.__main__ import main as train_main
from train.loop import TrainConfig, train
from train.grow import deepened
from train.objectives import Likelihood


class Interrupt(Exception):
    pass


class InterruptedLikelihood(Likelihood):
    """Stops the run (as a killed process would) when asked for batch number ``stop_at``."""

    def __init__(self, stop_at):
        self.calls, self.stop_at = 0, stop_at

    def batch(self, *args):
        self.calls += 1
        if self.calls == self.stop_at:
            raise Interrupt
        return super().batch(*args)


def fixture_data(model, n):
    images, labels = load_fixture()
    images = torch.nn.functional.interpolate(images[:n].float(), size=model.value_shape[1:]).to(torch.uint8)
    return images, labels[:n]


def test_resume_continues_exactly(tmp_path):
    config = TrainConfig(epochs=2, batch_size=16, warmup_steps=2, checkpoint_minutes=0, log_every=2)
    reference = make_tiny("mlp-v3")
    data = fixture_data(reference, 64)
    state = train(reference, Likelihood(), data, data, config, tmp_path / "a.pt")
    assert state.step == 8 and len(state.val_curve) == 2

    resumed = make_tiny("mlp-v3")
    with pytest.raises(Interrupt):
        train(resumed, InterruptedLikelihood(stop_at=6), data, data, config, tmp_path / "b.pt")
    resumed = make_tiny("mlp-v3")  # a fresh process: everything comes from the checkpoint
    state = train(resumed, Likelihood(), data, data, config, tmp_path / "b.pt", resume=True)
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
    assert model.config.variant == "v2" and model.config.hidden_dim == 16
    assert metrics["parameters"] == model.num_parameters and metrics["fixture"]["num_images"] == 64


def test_a_colour_model_trains_on_the_game_scenes(tmp_path, monkeypatch):
    """The colour LSTM's recipe reads the game scenes and publishes a model that names its dataset
    and its classes (the games), with a sample grid in colour."""
    from PIL import Image

    monkeypatch.setattr("train.weights_folder.GRID_PER_CLASS", 1)  # a sample grid of 10 colour pictures, not 100
    data = fake_games(tmp_path)
    train_main(["lstm-games", "--hidden-dim", "8", "--embed-dim", "4", "--position-dim", "4", "--num-layers", "1",
                "--num-mixtures", "2", "--epochs", "1", "--batch-size", "20", "--data-dir", str(data),
                "--out", str(tmp_path / "weights"), "--checkpoint", str(tmp_path / "run.pt")])
    folder = tmp_path / "weights" / "lstm-games"
    model = argen.load(folder)
    assert model.config.dataset == "games" and model.config.class_names[0] == "Pong"
    assert model.value_shape == (3, 32, 32) and model.config.output == "logistic-mixture"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["data"] == {"dataset": "games", "levels": 256, "codec": "levels"}
    assert metrics["test"]["num_images"] == 40 and metrics["train"]["steps"] == 3
    assert Image.open(folder / "samples.png").mode == "RGB"


def test_an_ablation_run_publishes_nothing(tmp_path, capsys):
    data = fake_mnist(tmp_path)
    train_main(["pixelcnnpp", "--output", "softmax", "--hidden-channels", "8", "--num-scales", "2", "--epochs", "1",
                "--batch-size", "32", "--no-publish", "--data-dir", str(data), "--out", str(tmp_path / "weights"),
                "--checkpoint", str(tmp_path / "run.pt")])
    assert not (tmp_path / "weights").exists() and (tmp_path / "run.pt").is_file()
    assert "held-out" in capsys.readouterr().out  # its learning curve is printed


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_flags_are_the_config_fields(name):
    """Every config field of a recipe's family is a flag of the same name whose default is the
    recipe's (the codec has flags of its own; the class names and a tokenizer's picture shape come
    with the dataset, and its scales with the recipe)."""
    import dataclasses

    recipe = RECIPES[name]
    args = parse_args([name])
    defaults = dataclasses.asdict(recipe.family.config_class(**recipe.config))
    for field, default in defaults.items():
        if field not in ("codec", "class_names", "image_shape", "scales"):
            assert getattr(args, field) == default, field
    assert args.name == name


@pytest.mark.parametrize("old, new", [
    ("mlp --variant v1 --hidden-dim 256", "mlp-v1 --variant v1 --hidden-dim 256"),
    ("mlp --epochs 2", "mlp-v3 --epochs 2"),
    ("pixelrnn --variant row --num-layers 4", "row-lstm --num-layers 4"),
    ("pixelrnn --hidden-channels 32", "diagonal-bilstm --hidden-channels 32"),
    ("gated-pixelcnn --binarize --num-layers 8", "gated-pixelcnn-binary --num-layers 8"),
    ("tokenizer --epochs 6", "bsq-tokenizer --epochs 6"),
    ("classifier --epochs 3", "mnist-classifier --epochs 3"),
    ("lstm --unconditional", "lstm --num-classes=0"),
    ("bsq-gpt --epochs 5", "bsq-gpt --epochs 5"),
])
def test_first_wave_commands_still_work(old, new):
    assert legacy(old.split()) == new.split()
    parse_args(legacy(old.split()))


def test_every_recorded_command_parses():
    """The commands in the shipped metrics.json reproduce the shipped configs' non-default fields:
    a continued model's first run's, with the blocks that later runs added (``--add-blocks``)."""
    import shlex

    def parsed(command):
        return parse_args(legacy(shlex.split(command.split(" -m train ", 1)[1])))

    for name in argen.available():
        train = argen.hub.read_metrics(name)["train"]
        commands = [run["command"] for run in train["chain"]] if "chain" in train else [train["command"]]
        args = parsed(commands[0])
        added = sum(getattr(parsed(c), "add_blocks", 0) for c in commands[1:] if " -m train " in c)  # not train.adversarial
        if added:
            args.num_blocks += added
        config = argen.load(name).config
        for field in ("num_classes", "hidden_dim", "hidden_channels", "num_layers", "num_blocks", "variant", "dim"):
            if hasattr(config, field):
                assert getattr(args, field) == getattr(config, field), (name, field)


def test_bf16_autocast_trains_float32_weights(tmp_path):
    """``--bf16`` runs the forward pass under bfloat16 autocast: the loss stays close to float32's,
    the weights and the optimizer stay float32, and the model learns."""
    model = make_tiny("pixel-gpt")
    data = fixture_data(model, 64)
    x, y = Likelihood().batch(model, *data, None)
    full = Likelihood().loss(model, x, y).item()
    with torch.autocast("cpu", torch.bfloat16):
        assert Likelihood().loss(model, x, y).item() == pytest.approx(full, rel=0.02)
    config = TrainConfig(epochs=4, batch_size=16, lr=1e-2, warmup_steps=2, log_every=2, bf16=True)
    state = train(model, Likelihood(), data, data, config, tmp_path / "run.pt")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert state.val_curve[-1][1] < state.val_curve[0][1]


def test_init_from_continues_a_shipped_model_and_records_the_chain(tmp_path):
    data = fake_mnist(tmp_path)
    common = ["--epochs", "1", "--batch-size", "32", "--data-dir", str(data), "--out", str(tmp_path / "weights")]
    train_main(["mlp-v2", "--hidden-dim", "16", *common, "--checkpoint", str(tmp_path / "a.pt")])
    first = argen.load(tmp_path / "weights" / "mlp-v2")
    train_main(["mlp-v2", "--init-from", str(tmp_path / "weights" / "mlp-v2"), *common, "--checkpoint",
                str(tmp_path / "b.pt")])
    second = argen.load(tmp_path / "weights" / "mlp-v2")
    assert second.config == first.config and second.config.hidden_dim == 16  # the config came with the weights
    assert any(not torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    train = json.loads((tmp_path / "weights" / "mlp-v2" / "metrics.json").read_text())["train"]
    assert [run["steps"] for run in train["chain"]] == [3, 3] and "--init-from" in train["chain"][1]["command"]
    assert train["total_wall_minutes"] == pytest.approx(sum(run["wall_minutes"] for run in train["chain"]))
    with pytest.raises(SystemExit, match="not a PixelLSTM"):
        train_main(["lstm", "--init-from", str(tmp_path / "weights" / "mlp-v2"), *common])


@pytest.mark.parametrize("name", ["diagonal-bilstm", "pixelcnnpp-softmax", "lstm", "pixel-gpt"])
def test_a_model_gains_a_null_class_and_keeps_its_classes(name):
    """What ``--init-from X --class-dropout 0.1`` starts from when X has no null class: every
    class's log-probabilities are unchanged, and each class embedding's new null row is the mean of
    the others."""
    from train.__main__ import with_null_class

    model = make_tiny(name).eval()
    assert model.null_class is None
    grown = with_null_class(model, 0.1).eval()
    assert grown.null_class == model.num_classes and grown.config.class_dropout == 0.1
    x = torch.randint(0, model.levels, (4, *model.value_shape), generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 7, 9])
    with torch.no_grad():
        torch.testing.assert_close(grown(x, y), model(x, y))
        grown(x, torch.full_like(y, grown.null_class))  # the null class is a label it takes
    grown_rows = [v for k, v in grown.state_dict().items() if v.shape != model.state_dict()[k].shape]
    assert grown_rows and all(torch.allclose(v[-1], v[:-1].mean(0)) for v in grown_rows)
    with pytest.raises(SystemExit, match="needs a class-conditional model"):
        with_null_class(make_tiny("mlp-v1"), 0.1)


def test_a_deepened_pixelcnn_starts_as_the_model_and_grows(tmp_path):
    """``--init-from X --add-blocks N``: the new blocks start as the identity (the same logits, and
    the fast path still equals the naive one), then learn; the config and the chain record the growth."""
    model = make_tiny("pixelcnn")
    grown = deepened(model, 3).eval()
    assert grown.config.num_blocks == model.config.num_blocks + 3 and grown.null_class == model.null_class
    x = torch.randint(0, model.levels, (4, *model.value_shape), generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 7, 10])  # 10: the null class
    with torch.no_grad():
        assert torch.equal(grown(x, y), model(x, y))
    h = model.config.hidden_channels
    assert not grown.class_embedding.weight[:, -3 * h:].any()  # the new blocks' class parts start at zero
    labels = dict(labels=[2, 5], seed=1, top_k=3, guidance=2.0)
    assert torch.equal(argen.sample(grown, **labels), argen.sample(model, **labels))
    assert torch.equal(argen.sample(grown, **labels), argen.sample(grown, fast=False, **labels))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"extra_blocks must be a positive integer, got {bad!r}"):
            deepened(model, bad)
    bf16 = deepened(model.to(torch.bfloat16), 1)
    assert all(p.dtype == torch.bfloat16 for p in bf16.parameters())

    data = fake_mnist(tmp_path)
    common = ["--epochs", "1", "--batch-size", "32", "--data-dir", str(data), "--out", str(tmp_path / "weights")]
    first = ["pixelcnn", "--hidden-channels", "8", "--num-blocks", "1", *common]
    train_main([*first, "--checkpoint", str(tmp_path / "a.pt")])
    grow = ["pixelcnn", "--init-from", str(tmp_path / "weights" / "pixelcnn"), "--add-blocks", "2", *common,
            "--checkpoint", str(tmp_path / "b.pt"), "--resume"]
    train_main(grow)
    second = argen.load(tmp_path / "weights" / "pixelcnn")
    assert second.config.num_blocks == 3 and second.config.hidden_channels == 8
    assert all(second.blocks[i][1].weight.abs().sum() > 0 for i in (1, 2))  # the new blocks learned
    chain = json.loads((tmp_path / "weights" / "pixelcnn" / "metrics.json").read_text())["train"]["chain"]
    assert len(chain) == 2 and "--add-blocks 2" in chain[1]["command"]
    with pytest.raises(SystemExit, match="holds a model of another shape than this run's"):
        train_main(grow)  # resumed, but --init-from's folder now holds the grown model: 5 blocks against 3
    with pytest.raises(SystemExit, match="--add-blocks 2 grows a trained model: name it with --init-from"):
        train_main(["pixelcnn", "--add-blocks", "2", *common])
    for bad, family in (("0", "pixelcnn"), ("-1", "pixelcnn"), ("2", "lstm")):  # lstm: only a family that can grow has it
        with pytest.raises(SystemExit) as error:
            train_main([family, "--init-from", str(tmp_path / "weights" / "pixelcnn"), "--add-blocks", bad, *common])
        assert error.value.code == 2  # argparse's usage error


def test_init_from_with_class_dropout_trains_a_null_class(tmp_path):
    """The command: a published model without a null class, continued with ``--class-dropout``,
    is published with one (and its recorded chain)."""
    data = fake_mnist(tmp_path)
    common = ["--epochs", "1", "--batch-size", "32", "--data-dir", str(data), "--out", str(tmp_path / "weights")]
    tiny = ["--embed-dim", "4", "--position-dim", "4", "--hidden-dim", "8", "--num-layers", "1"]
    train_main(["lstm", *tiny, *common, "--checkpoint", str(tmp_path / "a.pt")])
    assert argen.load(tmp_path / "weights" / "lstm").null_class is None
    train_main(["lstm", "--init-from", str(tmp_path / "weights" / "lstm"), "--class-dropout", "0.1", *common,
                "--checkpoint", str(tmp_path / "b.pt")])
    model = argen.load(tmp_path / "weights" / "lstm")
    assert model.null_class == 10 and model.config.hidden_dim == 8 and model.config.class_dropout == 0.1
    assert len(json.loads((tmp_path / "weights" / "lstm" / "metrics.json").read_text())["train"]["chain"]) == 2
    # a model with a null class takes the rate asked for: its null class trained more often
    train_main(["lstm", "--init-from", str(tmp_path / "weights" / "lstm"), "--class-dropout", "0.5", *common,
                "--checkpoint", str(tmp_path / "c.pt")])
    model = argen.load(tmp_path / "weights" / "lstm")
    assert model.null_class == 10 and model.config.class_dropout == 0.5


def test_a_model_and_its_dataset_must_agree(tmp_path):
    """A token model over the MNIST tokenizer cannot learn the colour game scenes: refused, with both shapes named."""
    with pytest.raises(SystemExit, match=r"reads pictures of shape \(1, 28, 28\), but games pictures are \(3, 32, 32\)"):
        train_main(["bsq-gpt", "--dataset", "games", "--tokenizer", "bsq-tokenizer", "--data-dir", str(fake_games(tmp_path)),
                    "--out", str(tmp_path / "weights"), "--checkpoint", str(tmp_path / "run.pt")])


def test_a_token_model_reads_its_datasets_tokenizer_by_default():
    """The shipped tokenizer of the model's --dataset, unless one is named; a dataset without one is named
    in the error."""
    from train.__main__ import build

    small = ["--dim", "16", "--num-heads", "2", "--num-layers", "1", "--mlp-dim", "32"]
    games = build(RECIPES["games-gpt"], parse_args(["games-gpt", *small]))
    digits = build(RECIPES["bsq-gpt"], parse_args(["bsq-gpt", *small]))
    assert games.codec.picture_shape == (3, 96, 128) and digits.codec.picture_shape == (1, 28, 28)
    assert build(RECIPES["bsq-gpt"], parse_args(["bsq-gpt", "--dataset", "games-96x128", *small])).codec.value_shape \
        == (1, 24, 32)
    with pytest.raises(SystemExit, match="no tokenizer is shipped for cifar10: name one with --tokenizer"):
        build(RECIPES["games-maskgit"], parse_args(["games-maskgit", "--dataset", "cifar10", *small]))


def test_a_token_model_goes_on_over_another_tokenizers_tokens(tmp_path):
    """``--init-from`` a token model with ``--tokenizer``: the prior's weights, the named tokenizer's
    codes (one of the same shape; another shape is refused, both named)."""
    from argen.models import BSQTokenizer, ImageGPT, Tokens
    from train.__main__ import starting_model

    torch.manual_seed(0)
    spec = {"image_shape": (1, 28, 28), "hidden_channels": 8, "latent_dim": 8, "bits": 4}
    ImageGPT(codec=Tokens(spec), dim=16, num_heads=2, num_layers=1, mlp_dim=32).save(tmp_path / "prior")
    other = BSQTokenizer(**spec)
    other.save(tmp_path / "other")
    BSQTokenizer(**{**spec, "bits": 5}).save(tmp_path / "wider")
    args = parse_args(["bsq-gpt", "--init-from", str(tmp_path / "prior"), "--tokenizer", str(tmp_path / "other")])
    model = starting_model(RECIPES["bsq-gpt"], args)
    assert all(torch.equal(a, b) for a, b in zip(model.codec.tokenizer.state_dict().values(),
                                                   other.state_dict().values()))
    assert torch.equal(model.gpt.head.weight, argen.load(tmp_path / "prior").gpt.head.weight)
    args = parse_args(["bsq-gpt", "--init-from", str(tmp_path / "prior"), "--tokenizer", str(tmp_path / "wider")])
    with pytest.raises(SystemExit, match="is not shaped like .*'bits': 5.* against .*'bits': 4"):
        starting_model(RECIPES["bsq-gpt"], args)


def test_the_foreground_weight_counts_sprite_errors_more():
    """With a foreground weight, the error of a pixel that differs from its game's background counts
    1 + w times: the same error on a sprite costs more than on the scenery."""
    from train.objectives import Reconstruction

    background = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    images = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    images[0, :, 1, 1] = 200  # a sprite in the first frame
    labels = torch.tensor([0, 1])
    objective = Reconstruction(9.0, background)
    x, weights = objective.batch(None, images, labels, None)
    assert weights.shape == (2, 1, 4, 4) and weights[0, 0, 1, 1] == 10 and weights.sum() == 32 - 1 + 10

    class Copy(torch.nn.Module):  # reconstructs with an error of 0.1 at one pixel
        def __init__(self, at):
            super().__init__()
            self.at = at

        def forward(self, x):
            out = x.clone()
            out[(0, slice(None), *self.at)] += 0.1
            return out, None, 0.0

    on_sprite, on_scenery = objective.loss(Copy((1, 1)), x, weights), objective.loss(Copy((2, 2)), x, weights)
    assert on_sprite == pytest.approx(10 * on_scenery)
    assert Reconstruction().batch(None, images, labels, None)[1] is None
    with pytest.raises(ValueError, match="needs each class's background"):
        Reconstruction(2.0)


def test_a_budget_refuses_what_it_decides_itself():
    from train.budget import fit_epochs
    from train.budget import main as budget_main

    assert fit_epochs(10.0, 469, 60) == 1.27  # 600 steps of 469 a epoch, rounded down
    with pytest.raises(SystemExit, match="leave --epochs and --max-minutes to the budget"):
        budget_main(["--minutes", "1", "pixelcnn --epochs 2"])
    with pytest.raises(SystemExit, match="two recipes share a name"):
        budget_main(["--minutes", "1", "pixelcnn", "pixelcnn --lr 1e-3"])
    with pytest.raises(SystemExit, match=r"--minutes must be > 0 \(got -1.0\)"):
        budget_main(["--minutes", "-1", "pixelcnn"])


def test_a_budget_times_each_recipe_and_fits_its_epochs(tmp_path, capsys):
    """The recipes are timed in processes of their own, then each gets the command that fits the
    budget at its speed; the command is one the train CLI takes."""
    import shlex

    from train.budget import main as budget_main

    data = fake_mnist(tmp_path)
    budget_main(["--minutes", "0.5", "--steps", "2", "--dry-run", "--logs", str(tmp_path / "logs"),
                 f"mlp-v1 --hidden-dim 16 --data-dir {data} --threads 1 --batch-size 32"])
    out = capsys.readouterr().out
    rate, epochs = out.split("mlp-v1: ")[1].split(" steps/s, 3 steps per epoch -> --epochs ")
    epochs = float(epochs.split()[0])
    assert float(rate) > 0 and epochs == pytest.approx(float(rate) * 27 / 3, abs=0.06)  # 0.9 of 30 s (rate printed to 0.01)
    command = next(line for line in out.splitlines() if line.startswith("-m train "))
    args = parse_args(shlex.split(command)[2:])
    assert args.epochs == epochs and args.max_minutes == 0.5 and args.hidden_dim == 16
