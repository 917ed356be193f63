"""``python -m train pixelrnn --variant row|diagonal``: PixelRNN (Row LSTM, Diagonal BiLSTM) on 8-bit MNIST."""
from argen.models import DiagonalBiLSTM, RowLSTM

from .loop import Likelihood

DEFAULTS = {"epochs": 1.0, "batch_size": 32, "lr": 1e-3}
VARIANTS = {"row": ("row-lstm", RowLSTM), "diagonal": ("diagonal-bilstm", DiagonalBiLSTM)}


def add_arguments(parser):
    parser.add_argument("--variant", choices=VARIANTS, default="diagonal")
    parser.add_argument("--levels", type=int, default=256)
    parser.add_argument("--hidden-channels", type=int, default=32)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--output-channels", type=int, default=128)
    parser.add_argument("--unconditional", action="store_true", help="no class conditioning")


def build(args):
    name, model_class = VARIANTS[args.variant]
    model = model_class(levels=args.levels, num_classes=0 if args.unconditional else 10,
                        hidden_channels=args.hidden_channels, num_layers=args.num_layers,
                        output_channels=args.output_channels)
    return name, model, Likelihood(model.levels)
