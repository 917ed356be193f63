"""``python -m train classifier``: the MNIST classifier that judges samples (evaluation only)."""
from argen.classifier import MNISTClassifier

from .loop import Classification

DEFAULTS = {"epochs": 3.0, "batch_size": 128, "lr": 2e-3}


def add_arguments(parser):
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--feature-dim", type=int, default=128)
    parser.add_argument("--dropout", type=float, default=0.3)


def build(args):
    model = MNISTClassifier(width=args.width, feature_dim=args.feature_dim, dropout=args.dropout)
    return "mnist-classifier", model, Classification()
