"""``python -m train gated-pixelcnn``: Gated PixelCNN on 8-bit or dynamically binarized MNIST."""
from argen.models import GatedPixelCNN

from .loop import Likelihood

DEFAULTS = {"epochs": 1.0, "batch_size": 32, "lr": 1e-3}


def add_arguments(parser):
    parser.add_argument("--levels", type=int, default=256)
    parser.add_argument("--binarize", action="store_true",
                        help="dynamically binarized MNIST (levels 2, a fresh Bernoulli draw per batch)")
    parser.add_argument("--hidden-channels", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=10)
    parser.add_argument("--output-channels", type=int, default=256)
    parser.add_argument("--unconditional", action="store_true", help="no class conditioning")


def build(args):
    levels = 2 if args.binarize else args.levels
    model = GatedPixelCNN(levels=levels, num_classes=0 if args.unconditional else 10,
                          hidden_channels=args.hidden_channels, num_layers=args.num_layers,
                          output_channels=args.output_channels)
    name = "gated-pixelcnn-binary" if args.binarize else "gated-pixelcnn"
    return name, model, Likelihood(levels, "dynamic" if args.binarize else None)
