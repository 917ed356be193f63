"""``python -m train lstm``: the sequence LSTM pixel model on 8-bit MNIST."""
from argen.models import PixelLSTM

from .loop import Likelihood

DEFAULTS = {"epochs": 1.0, "batch_size": 32, "lr": 2e-3}


def add_arguments(parser):
    parser.add_argument("--levels", type=int, default=256)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--position-dim", type=int, default=32)
    parser.add_argument("--hidden-dim", type=int, default=256)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--unconditional", action="store_true", help="no class conditioning")


def build(args):
    model = PixelLSTM(levels=args.levels, num_classes=0 if args.unconditional else 10, embed_dim=args.embed_dim,
                      position_dim=args.position_dim, hidden_dim=args.hidden_dim, num_layers=args.num_layers)
    return "lstm", model, Likelihood(model.levels)
