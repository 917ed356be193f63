"""MaskGIT (Chang et al. 2022, "MaskGIT: Masked Generative Image Transformer") over BSQ tokens.

A bidirectional transformer reads the token grid with some tokens replaced by a [MASK] token and
predicts every position at once. Training masks a random fraction of each image's tokens, drawn
from the paper's cosine schedule (fraction = cos(pi/2 * u), u uniform), and scores the
cross-entropy of the masked ones. Sampling starts from an all-masked grid and, in T steps
(:class:`argen.schedules.Confidence`), commits the most confident predictions and re-masks the
rest, with Gumbel noise on the confidence whose temperature anneals to zero. That is T passes of
the network instead of one per token: the parallel decoder the diagnosis note names.

The class enters as a learned token in front of the grid (index 0 of the sequence), as the GPT
prior's does; positions are learned. Different from the paper: the tokenizer is the project's
patch auto-encoder + BSQ (a 7 x 7 grid of 10-bit tokens for MNIST), not a VQGAN, and the network
is small. Its likelihood is not exact: the logits are not conditionals in one fixed order, so
``argen.nll`` refuses it; its figure is the cross-entropy of masked tokens at seeded masks
(:func:`masked_token_bits`), in bits per masked token, which bounds nothing.
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..schedules import Confidence, from_raster, image_logits, raster_logits, raster_values
from .base import GenerativeModel, ModelConfig, register
from .codecs import Tokens
from .transformer import Block


@dataclass
class MaskGITConfig(ModelConfig):
    codec: dict = field(default_factory=lambda: {"kind": Tokens.kind})
    dim: int = 128
    num_heads: int = 4
    num_layers: int = 4
    mlp_dim: int = 512
    steps: int = Confidence.STEPS  # decoding steps T of the default schedule
    choice_temperature: float = Confidence.CHOICE_TEMPERATURE  # the Gumbel noise's starting temperature on the confidence


def cosine_mask(shape, generator=None, device=None):
    """A random mask ``[B, n]`` (True = hidden) hiding ceil(cos(pi/2 * u) * n) >= 1 positions of each row."""
    b, n = shape
    u = torch.rand(b, generator=generator)
    count = (torch.cos(math.pi / 2 * u) * n).ceil().clamp(1, n).long()
    rank = torch.rand(b, n, generator=generator).argsort(1).argsort(1)
    return (rank < count[:, None]).to(device)


@register
class MaskGIT(GenerativeModel):
    """MaskGIT: a bidirectional transformer that commits the most confident tokens in a few parallel steps."""

    model_type = "maskgit"
    config_class = MaskGITConfig
    exact_likelihood = False

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        c = self.config
        self.mask_token = self.levels
        self.token_embedding = nn.Embedding(self.levels + 1, c.dim)  # index K: [MASK]
        self.class_embedding = nn.Embedding(max(self.label_count, 1), c.dim)  # one start token when unconditional
        self.position_embedding = nn.Embedding(self.num_values + 1, c.dim)
        self.blocks = nn.ModuleList(Block(c.dim, c.num_heads, c.mlp_dim, causal=False) for _ in range(c.num_layers))
        self.ln = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, self.levels)

    def forward(self, x, y=None, drawn=None):
        """Logits ``[B, K, c, h, w]`` of every value given the ``drawn`` ones (bool like ``x``; None:
        all of them); the others are read as [MASK]."""
        x, y = self.check_input(x, y)
        tokens = raster_values(x)  # (b, n)
        if drawn is not None:
            tokens = tokens.masked_fill(~raster_values(drawn.to(x.device)), self.mask_token)
        start = self.start_labels(y, x.shape[0], x.device)
        h = torch.cat([self.class_embedding(start)[:, None], self.token_embedding(tokens)], 1)
        h = h + self.position_embedding.weight  # (b, n + 1, d)
        for block in self.blocks:
            h = block(h)
        return image_logits(self.head(self.ln(h[:, 1:])), self.value_shape)

    def predict(self, x, y, drawn):
        return self(x, y, drawn)

    def schedule(self):
        return Confidence(self.config.steps, self.config.choice_temperature)


def masked_token_loss(model, x, y, hidden):
    """Mean cross-entropy in nats of the ``hidden`` tokens (bool ``[B, n]``) given the others."""
    logits = raster_logits(model(x, y, drawn=from_raster(~hidden, model.value_shape)))  # (b, n, K)
    values = raster_values(x)
    return F.cross_entropy(logits[hidden], values[hidden])


@torch.no_grad()
def masked_token_bits(model, x, y=None, seed=0, batch_size=250):
    """Bits per masked token over a set of values, each image hiding a seeded cosine-schedule mask:
    MaskGIT's held-out figure (not a likelihood)."""
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size].to(device)
        hidden = cosine_mask((xb.shape[0], model.num_values), generator).to(device)
        yb = None if y is None else y[i:i + batch_size].to(device)
        total += masked_token_loss(model, xb, yb, hidden).item() * int(hidden.sum())
        count += int(hidden.sum())
    return total / count / math.log(2)
