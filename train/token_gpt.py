"""``python -m train bsq-gpt``: the GPT prior over the shipped BSQ tokenizer's tokens."""
from argen.models import TokenGPT
from argen.tokenizer import NAME, load_tokenizer

from .loop import Likelihood

DEFAULTS = {"epochs": 10.0, "batch_size": 64, "lr": 1e-3}


def add_arguments(parser):
    parser.add_argument("--tokenizer", default=NAME, help="a shipped tokenizer name or folder")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--mlp-dim", type=int, default=512)
    parser.add_argument("--unconditional", action="store_true", help="no class conditioning")


def build(args):
    tokenizer = load_tokenizer(args.tokenizer)
    model = TokenGPT(tokenizer=tokenizer._hub_mixin_config, num_classes=0 if args.unconditional else 10,
                     dim=args.dim, num_heads=args.num_heads, num_layers=args.num_layers, mlp_dim=args.mlp_dim)
    model.tokenizer.load_state_dict(tokenizer.state_dict())
    return "bsq-gpt", model, Likelihood(model.levels)
