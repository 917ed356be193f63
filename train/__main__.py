"""``python -m train <model> [flags]``: train a shipped model's recipe and publish it to ``weights/<model>/``.

Example: ``python -m train mlp-v3 --data-dir ../shared/data --epochs 1``

Each model name is a recipe: a family (its config dataclass is the single source of defaults),
the config fields that differ from those defaults, and training settings. The flags are generated
from the config and :class:`train.loop.TrainConfig` fields and carry their names (``hidden_dim`` is
``--hidden-dim``); the codec's fields are ``--levels``, ``--binarization`` and ``--tokenizer``.
The older command forms still work (``mlp --variant v1``, ``pixelrnn --variant row``,
``gated-pixelcnn --binarize``, ``tokenizer``, ``classifier``, ``--unconditional``).

Data parallel on one or several machines: ``torchrun --nproc_per_node=N -m train <model> ...``
(``--batch-size`` is the global batch; see :mod:`train.loop`).
"""
import os
import argparse
import dataclasses
import json
import shlex
import sys
import time
import types
from collections import namedtuple

import torch

from argen.classifier import Classifier
from argen.data import get_dataset
from argen.hub import WEIGHTS_DIR, load, read_metrics
from argen.models import (BSQTokenizer, DiagonalBiLSTM, GatedPixelCNN, ImageGPT, MaskGIT, PixelCNN, PixelCNNPP,
                          MultiScalePixelRNN, PixelLSTM, PixelMLP, RowLSTM, VAR)
from argen.models.codecs import CODECS, Binary, Levels, Pyramid, Tokens

from .loop import TrainConfig, init_processes, train
from .objectives import Classification, Likelihood, MaskedTokens, Reconstruction
from .grow import GROWERS, multiscale
from .weights_folder import hardware, publish

Recipe = namedtuple("Recipe", "family config training", defaults=({}, {}))
RECIPES = {
    "mlp-v1": Recipe(PixelMLP, {"variant": "v1"}),
    "mlp-v2": Recipe(PixelMLP, {"variant": "v2"}),
    "mlp-v3": Recipe(PixelMLP, {"variant": "v3"}),
    "lstm": Recipe(PixelLSTM, training={"lr": 2e-3}),
    "pixelcnn": Recipe(PixelCNN),
    "pixelcnnpp": Recipe(PixelCNNPP),
    "gated-pixelcnn": Recipe(GatedPixelCNN),
    "gated-pixelcnn-binary": Recipe(GatedPixelCNN, {"codec": Binary("dynamic").spec}),
    "row-lstm": Recipe(RowLSTM),
    "diagonal-bilstm": Recipe(DiagonalBiLSTM),
    "multiscale-pixelrnn": Recipe(MultiScalePixelRNN, {"class_dropout": 0.1}, {"lr": 2e-3}),
    "pixel-gpt": Recipe(ImageGPT),
    "bsq-gpt": Recipe(ImageGPT, {"codec": {"kind": Tokens.kind}}, {"epochs": 10.0, "batch_size": 64}),
    "maskgit": Recipe(MaskGIT, training={"epochs": 10.0, "batch_size": 64}),
    # colour: 32 x 32 game scenes (python -m argen.games renders them)
    "pixelcnnpp-games": Recipe(PixelCNNPP, {"dataset": "games"}),
    "pixelcnn-games": Recipe(PixelCNN, {"dataset": "games", "hidden_channels": 96}),
    "lstm-games": Recipe(PixelLSTM, {"dataset": "games", "output": "logistic-mixture"},
                         {"lr": 2e-3, "beta1": 0.0, "weight_decay": 1e-4}),  # the diagnosis' settings
    "bsq-tokenizer": Recipe(BSQTokenizer, training={"epochs": 5.0, "batch_size": 128, "lr": 2e-3}),
    # the course project at full size: 96 x 128 game frames, 4 x 4 patches -> 24 x 32 tokens of 10 bits
    "games-tokenizer": Recipe(BSQTokenizer, {"dataset": "games-96x128", "entropy_weight": 0.003},
                              {"epochs": 1.0, "batch_size": 32, "lr": 2e-3}),
    # ... and the project's GPT prior (d 128, 4 heads, 3 layers) and MaskGIT over its 768 tokens
    "games-gpt": Recipe(ImageGPT, {"codec": {"kind": Tokens.kind}, "dataset": "games-96x128"}),
    "games-maskgit": Recipe(MaskGIT, {"dataset": "games-96x128"}),
    # VAR: a multi-scale tokenizer (fine-tuned from the one-scale one) and next-scale prediction over its pyramid
    "var-tokenizer": Recipe(BSQTokenizer, {"scales": [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [7, 7]]},
                            {"epochs": 1.0, "batch_size": 128, "lr": 1e-3}),
    "var": Recipe(VAR, {"class_dropout": 0.1}, {"epochs": 2.0, "batch_size": 64, "lr": 2e-3}),
    "games-var-tokenizer": Recipe(BSQTokenizer, {"dataset": "games-96x128", "entropy_weight": 0.003, "scales": [
        [1, 1], [2, 2], [3, 4], [6, 8], [12, 16], [24, 32]]}, {"epochs": 0.3, "batch_size": 32, "lr": 1e-3}),
    "games-var": Recipe(VAR, {"dataset": "games-96x128", "class_dropout": 0.1}, {"epochs": 0.2, "batch_size": 16}),
    "mnist-classifier": Recipe(Classifier, training={"epochs": 3.0, "batch_size": 128, "lr": 2e-3}),
    "games-classifier": Recipe(Classifier, {"dataset": "games", "mean": 0.35, "std": 0.3},
                               {"epochs": 2.0, "batch_size": 128, "lr": 2e-3}),
}
TOKENIZERS = {  # a token model's default tokenizer, by codec and dataset
    Tokens.kind: {"mnist": "bsq-tokenizer", "games-96x128": "games-tokenizer"},
    Pyramid.kind: {"mnist": "var-tokenizer", "games-96x128": "games-var-tokenizer"}}
OBJECTIVES = {BSQTokenizer: Reconstruction, Classifier: Classification, MaskGIT: MaskedTokens}
VAL_IMAGES = 2000  # the first test images, used to watch the learning curve (no early stopping)


def legacy(argv):
    """The older command forms in today's form (``mlp --variant v1`` -> ``mlp-v1`` ...)."""
    argv = ["--num-classes=0" if a == "--unconditional" else a for a in argv]
    if not argv:
        return argv
    family, rest = argv[0], argv[1:]
    variant = rest[rest.index("--variant") + 1] if "--variant" in rest[:-1] else None
    if family == "mlp":
        return [f"mlp-{variant or 'v3'}", *rest]
    if family == "pixelrnn":
        i = rest.index("--variant") if variant else None
        rest = rest if i is None else rest[:i] + rest[i + 2:]
        return ["row-lstm" if variant == "row" else "diagonal-bilstm", *rest]
    if family == "gated-pixelcnn" and "--binarize" in rest:
        return ["gated-pixelcnn-binary", *[a for a in rest if a != "--binarize"]]
    return [{"tokenizer": "bsq-tokenizer", "classifier": "mnist-classifier"}.get(family, family), *rest]


def field_type(field):
    """The argparse type of a config field (``int | None`` -> int)."""
    kind = field.type
    if isinstance(kind, types.UnionType):
        kind = next(t for t in kind.__args__ if t is not type(None))
    return kind


def add_fields(parser, config_class, defaults, skip=()):
    """One flag per dataclass field, named after it, with the recipe's default."""
    for field in dataclasses.fields(config_class):
        if field.name in skip:
            continue
        flag, default, kind = "--" + field.name.replace("_", "-"), defaults[field.name], field_type(field)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=kind, default=default, help=f"default {default}")


def add_codec_flags(parser, codec):
    """The codec's fields: grey levels or a binarization for pixel models, a tokenizer for token models."""
    if codec["kind"] in TOKENIZERS:
        parser.add_argument("--tokenizer", default=None, help=f"a shipped tokenizer name or folder (default: the "
                                                               f"--dataset's, {TOKENIZERS[codec['kind']]})")
        return
    if codec["kind"] == Levels.kind:
        parser.add_argument("--levels", type=int, default=codec["levels"], help="grey levels K")
    parser.add_argument("--binarization", choices=("threshold", "dynamic"), default=codec.get("binarization"),
                        help="binary pictures (levels 2), by a fixed threshold or a fresh Bernoulli draw per batch")


def positive_int(text):
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def recipe_defaults(recipe):
    return dataclasses.asdict(recipe.family.config_class(**recipe.config))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__.split("\n")[0])
    models = parser.add_subparsers(dest="model", required=True)
    for name, recipe in RECIPES.items():
        sub = models.add_parser(name, help=recipe.family.__doc__.strip().split("\n")[0])
        config = recipe_defaults(recipe)
        add_fields(sub, recipe.family.config_class, config, skip={"codec", "class_names", "image_shape", "scales"})
        if "codec" in config:
            add_codec_flags(sub, config["codec"])
        add_fields(sub, TrainConfig, {**vars(TrainConfig()), **recipe.training})
        sub.add_argument("--name", default=name, help="weights folder name")
        sub.add_argument("--data-dir", default=None, help="the data folder, holding MNIST/ and games/ (default: $ARGEN_DATA or ./data)")
        sub.add_argument("--out", default=str(WEIGHTS_DIR), help="where weights/<name>/ is written")
        sub.add_argument("--train-images", type=int, default=None, help="use only the first N training images")
        sub.add_argument("--test-images", type=int, default=None,
                         help="measure the published test figures on the first N test images (default: all)")
        sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        sub.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        sub.add_argument("--checkpoint", default=None, help="checkpoint file (default: runs/<name>.pt)")
        sub.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
        sub.add_argument("--publish", action=argparse.BooleanOptionalAction, default=True,
                         help="write weights/<name>/ at the end (--no-publish: an ablation's run, only its "
                              "learning curve printed and the checkpoint kept)")
        sub.add_argument("--init-from", default=None, metavar="NAME_OR_DIR",
                         help="start from a shipped model's weights (and its config: the model flags are ignored, "
                              "except that --class-dropout above 0 gives a model without a null class one)")
        if recipe.family is BSQTokenizer:
            sub.add_argument("--foreground-weight", type=float, default=0.0, metavar="W",
                             help="count the reconstruction error of pixels that differ from their game's background "
                                  "(the per-pixel mode of its training frames) 1 + W times, so that small sprites "
                                  "are kept (a dataset of games)")
        if recipe.family in GROWERS:
            sub.add_argument("--add-blocks", type=positive_int, default=0, metavar="N",
                             help="with --init-from: append N residual blocks that start as the identity (the "
                                  "model's logits are unchanged at the start; its receptive field can grow)")
    return parser.parse_args(argv)


def build(recipe, args):
    """The module to train, from the recipe and the flags (a token model gets its tokenizer's weights)."""
    config_class = recipe.family.config_class
    fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if hasattr(args, f.name)}
    tokenizer = None
    if hasattr(args, "tokenizer"):
        kind = recipe_defaults(recipe)["codec"]["kind"]
        if args.tokenizer is None and args.dataset not in TOKENIZERS[kind]:
            raise SystemExit(f"no tokenizer is shipped for {args.dataset}: name one with --tokenizer (a tokenizer is "
                             f"shipped for {sorted(TOKENIZERS[kind])})")
        tokenizer = load(args.tokenizer or TOKENIZERS[kind][args.dataset])
        fields["codec"] = CODECS[kind](dataclasses.asdict(tokenizer.config)).spec
    elif hasattr(args, "binarization"):
        shape = get_dataset(args.dataset).image_shape
        fields["codec"] = (Binary(args.binarization, shape) if args.binarization else Levels(args.levels, shape)).spec
    if "image_shape" in {f.name for f in dataclasses.fields(config_class)}:  # the tokenizer: its dataset's pictures
        fields["image_shape"] = get_dataset(args.dataset).image_shape
        fields["scales"] = recipe.config.get("scales")
    module = recipe.family(config_class(**fields))
    if tokenizer is not None:
        module.codec.tokenizer.load_state_dict(tokenizer.state_dict())
    return module


def starting_model(recipe, args):
    """The module a run starts from: built from the flags, or a shipped model's (``--init-from``),
    given a null class when it has none and ``--class-dropout`` asks for one; one that has a null
    class takes the rate ``--class-dropout`` gives (its null class lagging behind wants more). A
    token model started from a shipped one reads the tokens of ``--tokenizer`` where one is named
    (of the same shape: a tokenizer fine-tuned, say)."""
    if not args.init_from:
        if getattr(args, "add_blocks", 0):
            raise SystemExit(f"--add-blocks {args.add_blocks} grows a trained model: name it with --init-from")
        return build(recipe, args)
    model = load(args.init_from)
    scales = recipe.config.get("scales")
    if recipe.family is BSQTokenizer and scales and model.config.scales is None:  # one scale -> a pyramid
        model = multiscale(model, scales)
    if not isinstance(model, recipe.family):
        raise SystemExit(f"--init-from {args.init_from} holds a {type(model).__name__}, not a {recipe.family.__name__}")
    class_dropout = getattr(args, "class_dropout", 0)
    if class_dropout and model.null_class is None:
        model = with_null_class(model, class_dropout)
    elif class_dropout:
        model.config = dataclasses.replace(model.config, class_dropout=class_dropout)
    if getattr(args, "add_blocks", 0):
        model = GROWERS[type(model)](model, args.add_blocks)
    if getattr(args, "tokenizer", None):  # the prior goes on, over the tokens of another tokenizer
        tokenizer = load(args.tokenizer)
        if json.dumps(dataclasses.asdict(tokenizer.config), sort_keys=True) != json.dumps(model.codec.spec["tokenizer"],
                                                                                        sort_keys=True):
            raise SystemExit(f"--tokenizer {args.tokenizer} is not shaped like {args.init_from}'s tokenizer: "
                             f"{dataclasses.asdict(tokenizer.config)} against {model.codec.spec['tokenizer']}")
        model.codec.tokenizer.load_state_dict(tokenizer.state_dict())
    return model.train()


def with_null_class(model, class_dropout):
    """A copy of class-conditional ``model`` with a learned null class (classifier-free guidance's
    "no class"), hidden behind for ``class_dropout`` of the training images. Every class embedding
    gains the null row, started at the mean of the class rows (the average class); the rest of the
    weights are the model's own."""
    if not model.num_classes:
        raise SystemExit(f"--class-dropout needs a class-conditional model; {type(model).__name__} has no classes")
    grown = type(model)(dataclasses.replace(model.config, class_dropout=class_dropout))
    state = model.state_dict()
    for name, target in grown.state_dict().items():
        source = state[name]
        if source.shape == target.shape:
            continue
        if source.shape[0] != model.num_classes or target.shape != (model.num_classes + 1, *source.shape[1:]):
            raise SystemExit(f"cannot add a null class to {name}: {tuple(source.shape)} -> {tuple(target.shape)}")
        state[name] = torch.cat([source, source.mean(0, keepdim=True)])
    grown.load_state_dict(state)
    return grown


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(legacy(argv))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and "LOCAL_RANK" in os.environ:
        args.device = f"cuda:{os.environ['LOCAL_RANK']}"  # one GPU per process under torchrun
    processes = init_processes(args.device)
    torch.manual_seed(args.seed)
    recipe = RECIPES[args.model]
    model = starting_model(recipe, args)
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    dataset = get_dataset(getattr(model.config, "dataset", "mnist"))
    codec = getattr(model, "codec", None)  # a generator reads its codec's pictures, a tokenizer its own
    picture_shape = codec.picture_shape if codec is not None else getattr(model, "image_shape", dataset.image_shape)
    if tuple(picture_shape) != tuple(dataset.image_shape):
        raise SystemExit(f"{args.model} reads pictures of shape {tuple(picture_shape)}, but {dataset.name} pictures "
                         f"are {tuple(dataset.image_shape)} (a token model needs a tokenizer trained on them)")
    train_data = dataset.load("train", args.data_dir)
    if args.train_images:
        train_data = tuple(t[:args.train_images] for t in train_data)
    objective = OBJECTIVES.get(recipe.family, Likelihood)()
    if getattr(args, "foreground_weight", 0):
        from argen.fidelity import backgrounds

        objective = Reconstruction(args.foreground_weight, backgrounds(*train_data, len(dataset.class_names),
                                                                        full_size=True))
    test_data = dataset.load("test", args.data_dir)
    val_data = tuple(t[:VAL_IMAGES] for t in test_data)
    if processes.main:
        print(f"{args.name}: {model.num_parameters:,} parameters, {train_data[0].shape[0]:,} training images "
              f"of {dataset.name}, "
              f"device {args.device}, {processes.world} process(es)")
    started = time.time()
    state = train(model, objective, train_data, val_data, config, checkpoint_path=args.checkpoint or
                  f"runs/{args.name}.pt", resume=args.resume, device=args.device, processes=processes)
    processes.close()
    if not processes.main or not args.publish:
        return
    launcher = f"torchrun --nproc_per_node={processes.world} -m train " if processes.world > 1 else "python -m train "
    info = {"command": launcher + shlex.join(argv), "seed": args.seed, "epochs": args.epochs,
            "hardware": hardware(args.device), "precision": "bfloat16 autocast" if args.bf16 else "float32",
            "processes": processes.world, "backend": processes.backend, "effective_batch_size": args.batch_size,
            "session_minutes": round((time.time() - started) / 60, 2)}
    if args.init_from:
        info["init_from"] = {"model": str(args.init_from), "train": read_metrics(args.init_from).get("train", {})}
    if args.test_images:
        test_data = tuple(t[:args.test_images] for t in test_data)
    metrics = publish(model, args.name, args.out, objective, state, info, test_data)
    print(f"{args.name}: test {metrics['test']} -> {args.out}/{args.name}")


if __name__ == "__main__":
    main()
