"""``python -m train pixel-gpt``: the ImageGPT-style pixel transformer on 8-bit MNIST."""
from argen.models import PixelGPT

from .loop import Likelihood

DEFAULTS = {"epochs": 1.0, "batch_size": 32, "lr": 1e-3}


def add_transformer_arguments(parser):
    """The transformer's flags, shared with the token prior."""
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--mlp-dim", type=int, default=512)
    parser.add_argument("--unconditional", action="store_true", help="no class conditioning")


def transformer_kwargs(args):
    return {"num_classes": 0 if args.unconditional else 10, "dim": args.dim, "num_heads": args.num_heads,
            "num_layers": args.num_layers, "mlp_dim": args.mlp_dim}


def add_arguments(parser):
    parser.add_argument("--levels", type=int, default=256)
    add_transformer_arguments(parser)


def build(args):
    model = PixelGPT(levels=args.levels, **transformer_kwargs(args))
    return "pixel-gpt", model, Likelihood(model.levels)
