"""``python -m train bsq-gpt``: the GPT prior over the shipped BSQ tokenizer's tokens."""
from argen.models import TokenGPT
from argen.tokenizer import NAME, load_tokenizer

from .loop import Likelihood
from .pixel_gpt import add_transformer_arguments, transformer_kwargs

DEFAULTS = {"epochs": 10.0, "batch_size": 64, "lr": 1e-3}


def add_arguments(parser):
    parser.add_argument("--tokenizer", default=NAME, help="a shipped tokenizer name or folder")
    add_transformer_arguments(parser)


def build(args):
    tokenizer = load_tokenizer(args.tokenizer)
    model = TokenGPT(tokenizer=tokenizer._hub_mixin_config, **transformer_kwargs(args))
    model.tokenizer.load_state_dict(tokenizer.state_dict())
    return "bsq-gpt", model, Likelihood(model.levels)
