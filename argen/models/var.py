"""VAR: next-scale prediction (Tian et al. 2024, "Visual Autoregressive Modeling: Scalable Image
Generation via Next-Scale Prediction").

Raster-order models (the MLPs, PixelCNN, the GPTs) draw one value per step, left to right and top
to bottom, each value given all those before it: a 7 x 7 grid of tokens is 49 steps, a 24 x 32 one
768. MaskGIT draws many tokens per step, the ones it is most confident of, anywhere in the grid;
but its logits are not conditionals in one fixed order, so it has no exact likelihood. VAR keeps
an exact likelihood and draws a whole map per step: the picture is tokenized as a pyramid of
token maps, 1 x 1, 2 x 2, ... up to the full grid (:mod:`.multiscale_bsq`), each explaining what
the coarser ones left out, and the transformer predicts every token of the next, finer map at once,
given all the coarser maps. The order is coarse to fine, as a painter blocks in the composition
before the detail: the first step decides the picture's overall colour, the last its edges.

Tokens of one scale are drawn independently of each other given the coarser scales, so log p of the
pyramid is the sum of its tokens' log-probabilities, exactly (bits per token are a likelihood, as for
the GPT prior). The transformer reads a class token (with a learned null class for classifier-free
guidance) and then, for each scale after the first, the sum of the coarser scales' latents averaged
down to that scale's size: what has been drawn so far, at the size of what comes next. Attention is
block-causal: a token sees the tokens of its own and every coarser scale's input, never a finer one.
The fast path runs one scale per step, appending its keys and values to a KV cache
(:class:`~argen.models.caches.KVCache`): six steps for a 7 x 7 grid of digits.

Different from the paper: the tokenizer is the course project's patch auto-encoder with BSQ codes
(multi-scale, residual), not a VQ-VAE; the class enters as the start token, not through adaptive
layer norms; and the network is small.
"""
from dataclasses import dataclass, field

import torch
from torch import nn

from ..schedules import NextScale, image_logits
from .base import GenerativeModel, ModelConfig, register
from .caches import KVCache
from .codecs import Pyramid
from .transformer import Block


@dataclass
class VARConfig(ModelConfig):
    codec: dict = field(default_factory=lambda: {"kind": Pyramid.kind})
    dim: int = 128
    num_heads: int = 4
    num_layers: int = 4
    mlp_dim: int = 512


@register
class VAR(GenerativeModel):
    """VAR: next-scale prediction, a whole token map per step from 1 x 1 to the full grid."""

    model_type = "var"
    config_class = VARConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        c = self.config
        if not isinstance(self.codec, Pyramid):
            raise ValueError(f"VAR predicts a pyramid of tokens: its codec must be {Pyramid.kind!r}, "
                             f"got {self.codec.kind!r}")
        self.input_projection = nn.Linear(self.codec.tokenizer.config.latent_dim, c.dim)  # VAR's word embedding
        self.class_embedding = nn.Embedding(max(self.label_count, 1), c.dim)  # one start token when unconditional
        self.position_embedding = nn.Embedding(self.num_values, c.dim)
        self.scale_embedding = nn.Embedding(len(self.pyramid.scales), c.dim)
        self.blocks = nn.ModuleList(Block(c.dim, c.num_heads, c.mlp_dim, causal=False) for _ in range(c.num_layers))
        self.ln = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, self.levels)
        scale = self.codec.token_scale
        self.register_buffer("token_scale", scale, persistent=False)
        self.register_buffer("mask", scale[:, None] >= scale[None, :], persistent=False)  # (n, n): coarser or same

    @property
    def pyramid(self):
        """The codec's multi-scale quantizer (:class:`~argen.models.multiscale_bsq.MultiScaleBSQ`)."""
        return self.codec.tokenizer.quantizer

    @property
    def summary(self):
        sizes = " → ".join(f"{s.height}×{s.width}" for s in self.pyramid.scales)
        return f"VAR: next-scale prediction, a whole token map per step ({sizes})"

    def schedule(self):
        return NextScale([s.stop - s.start for s in self.pyramid.scales])

    def embed(self, h, start):
        """Inputs ``h`` ``[B, P, D]`` at pyramid positions start..start + P - 1, with their position and scale."""
        positions = torch.arange(start, start + h.shape[1], device=h.device)
        return h + self.position_embedding(positions) + self.scale_embedding(self.token_scale[positions])

    def start(self, y, batch, device):
        """The class token ``[B, 1, D]``, the input of the first scale (a start token when unconditional)."""
        return self.class_embedding(self.start_labels(y, batch, device))[:, None]

    def forward(self, x, y=None):
        x, y = self.check_input(x, y)
        inputs = self.input_projection(self.pyramid.scale_inputs(x[:, 0, 0]))  # (b, n - 1, d)
        h = self.embed(torch.cat([self.start(y, x.shape[0], x.device), inputs], 1), 0)  # (b, n, d)
        for block in self.blocks:
            h = block(h, self.mask)
        return image_logits(self.head(self.ln(h)), self.value_shape)  # (b, K, 1, 1, n)

    def fast_sampler(self, y, batch):
        """One scale per step: its input from the scales drawn so far, through the blocks after the
        coarser scales' keys and values (a KV cache per block)."""
        device = self.head.weight.device
        caches, scales = [KVCache(self.num_values) for _ in self.blocks], self.pyramid.scales
        drawn = {"scales": 0, "f_hat": 0.0}  # scales drawn so far, and the sum of their latents

        def step(x, t):
            k = drawn["scales"]
            if k == len(scales) or t != scales[k].start:
                raise ValueError(f"the steps go scale by scale; scale {k} starts at {scales[min(k, len(scales) - 1)].start}, "
                                 f"asked for position {t}")
            if k == 0:
                h = self.start(y, batch, device)
            else:
                drawn["f_hat"] = drawn["f_hat"] + self.pyramid.scale_latent(x[:, 0, 0], k - 1)
                h = self.input_projection(self.pyramid.scale_input(drawn["f_hat"], k))
            drawn["scales"] = k + 1
            h = self.embed(h, t)
            for block, cache in zip(self.blocks, caches):
                h = block.extend(h, cache)
            return self.head(self.ln(h))  # (b, n_k, K)

        return step
