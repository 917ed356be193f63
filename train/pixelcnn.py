"""``python -m train pixelcnn``: PixelCNN with masked convolutions on 8-bit MNIST."""
from argen.models import PixelCNN

from .loop import Likelihood

DEFAULTS = {"epochs": 1.0, "batch_size": 32, "lr": 1e-3}


def add_arguments(parser):
    parser.add_argument("--levels", type=int, default=256)
    parser.add_argument("--hidden-channels", type=int, default=64)
    parser.add_argument("--num-blocks", type=int, default=8)
    parser.add_argument("--unconditional", action="store_true", help="no class conditioning")


def build(args):
    model = PixelCNN(levels=args.levels, num_classes=0 if args.unconditional else 10,
                     hidden_channels=args.hidden_channels, num_blocks=args.num_blocks)
    return "pixelcnn", model, Likelihood(model.levels)
