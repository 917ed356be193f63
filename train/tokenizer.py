"""``python -m train tokenizer``: the patch auto-encoder + BSQ tokenizer on MNIST."""
from argen.tokenizer import NAME, BSQTokenizer

from .loop import Reconstruction

DEFAULTS = {"epochs": 5.0, "batch_size": 128, "lr": 2e-3}


def add_arguments(parser):
    parser.add_argument("--patch-size", type=int, default=4)
    parser.add_argument("--hidden-channels", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=128)
    parser.add_argument("--num-convs", type=int, default=2)
    parser.add_argument("--bits", type=int, default=10, help="token bits: 2^bits codes")
    parser.add_argument("--entropy-weight", type=float, default=0.0, help="BSQ entropy loss (off: it did not help)")
    parser.add_argument("--commitment-weight", type=float, default=0.0, help="BSQ commitment loss")


def build(args):
    model = BSQTokenizer(patch_size=args.patch_size, hidden_channels=args.hidden_channels, latent_dim=args.latent_dim,
                         num_convs=args.num_convs, bits=args.bits, entropy_weight=args.entropy_weight,
                         commitment_weight=args.commitment_weight)
    return NAME, model, Reconstruction()
