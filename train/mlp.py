"""``python -m train mlp --variant v1|v2|v3``: the blog's MLP pixel predictors."""
from argen.models import PixelMLP
from argen.models.mlp import VARIANTS

from .loop import Likelihood

DEFAULTS = {"epochs": 1.0, "batch_size": 32, "lr": 1e-3}


def add_arguments(parser):
    parser.add_argument("--variant", choices=VARIANTS, default="v3")
    parser.add_argument("--levels", type=int, default=16)
    parser.add_argument("--context-length", type=int, default=28)
    parser.add_argument("--hidden-dim", type=int, default=1024)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--embed-dim", type=int, default=32)
    parser.add_argument("--dropout", type=float, default=0.25)


def build(args):
    """(default weights name, model, objective) from the parsed flags."""
    model = PixelMLP(variant=args.variant, levels=args.levels, context_length=args.context_length,
                     hidden_dim=args.hidden_dim, num_layers=args.num_layers, embed_dim=args.embed_dim,
                     dropout=args.dropout)
    return f"mlp-{args.variant}", model, Likelihood(model.levels)
