"""``python -m train <family> [flags]``: train a model family and publish it to ``weights/<name>/``.

Example: ``python -m train mlp --variant v3 --data-dir ../shared/data --epochs 1``
"""
import argparse
import shlex
import sys
import time

import torch

from argen.data import load_mnist
from argen.hub import WEIGHTS_DIR

from . import classifier, gated_pixelcnn, lstm, mlp, pixel_gpt, pixelcnn, pixelrnn, token_gpt, tokenizer
from .loop import TrainConfig, train
from .publish import hardware, publish

FAMILIES = {"mlp": mlp, "lstm": lstm, "pixelcnn": pixelcnn, "gated-pixelcnn": gated_pixelcnn, "pixelrnn": pixelrnn,
            "pixel-gpt": pixel_gpt, "tokenizer": tokenizer, "bsq-gpt": token_gpt, "classifier": classifier}
VAL_IMAGES = 2000  # the first test images, used to watch the learning curve (no early stopping)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__.split("\n")[0])
    families = parser.add_subparsers(dest="family", required=True)
    for family, module in FAMILIES.items():
        sub = families.add_parser(family, help=module.__doc__.split("\n")[0])
        module.add_arguments(sub)
        defaults = {**vars(TrainConfig()), **module.DEFAULTS}
        sub.add_argument("--name", help="weights folder name (default: from the family and variant)")
        sub.add_argument("--data-dir", default=None, help="MNIST root (default: $ARGEN_DATA or ./data)")
        sub.add_argument("--out", default=str(WEIGHTS_DIR), help="where weights/<name>/ is written")
        sub.add_argument("--epochs", type=float, default=defaults["epochs"], help="may be fractional")
        sub.add_argument("--batch-size", type=int, default=defaults["batch_size"])
        sub.add_argument("--lr", type=float, default=defaults["lr"])
        sub.add_argument("--weight-decay", type=float, default=defaults["weight_decay"])
        sub.add_argument("--warmup-steps", type=int, default=defaults["warmup_steps"])
        sub.add_argument("--grad-clip", type=float, default=defaults["grad_clip"])
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--max-minutes", type=float, default=60.0, help="wall-clock training budget")
        sub.add_argument("--train-images", type=int, default=None, help="use only the first N training images")
        sub.add_argument("--bf16", action="store_true",
                         help="bfloat16 autocast for the forward pass (faster matmuls on CPUs with AVX-512 BF16 and on GPUs)")
        sub.add_argument("--threads", type=int, default=None, help="torch CPU threads")
        sub.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
        sub.add_argument("--checkpoint", default=None, help="checkpoint file (default: runs/<name>.pt)")
        sub.add_argument("--resume", action="store_true", help="continue from the checkpoint if it exists")
    return parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    default_name, model, objective = FAMILIES[args.family].build(args)
    name = args.name or default_name
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
                         grad_clip=args.grad_clip, seed=args.seed, max_minutes=args.max_minutes, bf16=args.bf16)
    train_data = load_mnist("train", args.data_dir)
    if args.train_images:
        train_data = tuple(t[:args.train_images] for t in train_data)
    test_data = load_mnist("test", args.data_dir)
    val_data = tuple(t[:VAL_IMAGES] for t in test_data)
    print(f"{name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{train_data[0].shape[0]:,} training images, device {args.device}")
    started = time.time()
    state = train(model, objective, train_data, val_data, config,
                  checkpoint_path=args.checkpoint or f"runs/{name}.pt", resume=args.resume, device=args.device)
    info = {"command": "python -m train " + shlex.join(argv), "seed": args.seed, "epochs": args.epochs,
            "hardware": hardware(args.device), "precision": "bfloat16 autocast" if args.bf16 else "float32",
            "session_minutes": round((time.time() - started) / 60, 2)}
    metrics = publish(model, name, args.out, objective, state, info, test_data)
    print(f"{name}: test {metrics['test']} -> {args.out}/{name}")


if __name__ == "__main__":
    main()
