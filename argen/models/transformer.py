"""GPTs over pixels and over tokens: ImageGPT (Chen et al. 2020, "Generative Pretraining from
Pixels"), small, and the course project's prior over BSQ tokens.

A decoder-only transformer in the style of nanoGPT: learned token and position embeddings,
pre-LayerNorm blocks of causal self-attention and a GELU MLP, and a final LayerNorm and linear
head. The sequence is a class token (a learned start token when unconditional) followed by the
pixels in raster order. Position t predicts pixel t, so its logits see only the class and
pixels 0..t-1. ``forward`` gives the logits of every pixel in one pass; there is no shortcut to
the last position here, since likelihoods need them all.

``fast_sampler`` keeps a KV cache: each new pixel runs one position through the blocks and
attends to the cached keys and values of the earlier ones. That is one incremental step per
pixel instead of a pass over the whole prefix, and it gives the same logits.

Different from ImageGPT: K = 256 grey levels are the vocabulary (no colour palette is needed for
MNIST), and the model is far smaller.

The values are whatever the codec makes of a picture. With grey levels it is ``pixel-gpt``; with
the BSQ token codec it is ``bsq-gpt``, the course project's prior over a grid of tokens (7 x 7 for
28 x 28 with 4 x 4 patches, 2^bits values each): the codec carries the frozen tokenizer, so the
samples are shown (and judged) as pictures, and the likelihood is over tokens (bits per token).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..schedules import image_logits, raster_values
from .base import GenerativeModel, ModelConfig, register


class SelfAttention(nn.Module):
    def __init__(self, dim, num_heads, causal=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} must be a multiple of num_heads {num_heads}")
        self.num_heads, self.causal = num_heads, causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def heads(self, x):
        """Queries, keys and values ``[B, heads, T, D / heads]`` of ``x`` ``[B, T, D]``."""
        b, t, d = x.shape
        return (part.reshape(b, t, self.num_heads, -1).transpose(1, 2) for part in self.qkv(x).split(d, -1))

    def forward(self, x, mask=None):
        """``x`` ``[B, T, D]``: attention over the T positions: causal, all to all when not ``causal``,
        or where ``mask`` (bool ``[T, T]``, True: query row may read key column) says."""
        b, t, d = x.shape
        q, k, v = self.heads(x)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal and mask is None)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))  # (b, t, d)

    def extend(self, x, cache):
        """P new positions ``x`` ``[B, P, D]`` attending to every position in ``cache`` (a
        :class:`~argen.models.caches.KVCache`) and to each other (a block that sees itself whole:
        a scale of VAR's pyramid)."""
        b, p, d = x.shape
        q, k, v = self.heads(x)
        out = F.scaled_dot_product_attention(q, *cache.extend(k, v))
        return self.proj(out.transpose(1, 2).reshape(b, p, d))

    def step(self, x, cache):
        """One new position ``x`` ``[B, D]`` attending to itself and every position in ``cache`` (a
        dict of keys and values, preallocated for ``cache["capacity"]`` positions, filled here, and
        the query-key-value weight reordered at the run's first step)."""
        if not self.causal:
            raise ValueError("attention over all positions has no one-position step: every position sees every other")
        b, d = x.shape
        if "k" not in cache:  # once per run: the cache, preallocated (growing it by concatenation copied it every step)
            h = self.num_heads
            # (image, head) matrices, the keys by columns so that a query's scores are one product
            cache["k"], cache["v"] = x.new_empty(b * h, d // h, cache["capacity"]), x.new_empty(b * h, cache["capacity"], d // h)
            # the product's rows reordered head by head (query, key, value each), the query's scaled by
            # 1/sqrt(d / h): a step's queries, keys and values are views of one product
            scale = self.qkv.weight.new_tensor([(d // h) ** -0.5, 1.0, 1.0])[:, None, None]
            weight, bias = self.qkv.weight.reshape(3, h, -1, d) * scale[..., None], self.qkv.bias.reshape(3, h, -1) * scale
            cache["qkv"] = weight.transpose(0, 1).reshape(3 * d, d), bias.transpose(0, 1).reshape(3 * d)
        q, k, v = F.linear(x, *cache["qkv"]).view(-1, 3, d // self.num_heads).unbind(1)  # (b * heads, d / heads)
        n = cache.setdefault("n", 0)
        cache["k"][:, :, n], cache["v"][:, n] = k, v
        cache["n"] = n + 1
        # softmax(q k^T) v: three calls, cheaper for one query than scaled_dot_product_attention
        scores = torch.bmm(q[:, None], cache["k"][:, :, :n + 1])
        out = torch.bmm(scores.softmax(-1), cache["v"][:, :n + 1])
        return F.linear(out.view(b, d), self.proj.weight, self.proj.bias)


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_dim, causal=True):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads, causal)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x, mask=None):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))

    def extend(self, x, cache):
        """:meth:`forward` of new positions ``x`` ``[B, P, D]`` after those in ``cache``."""
        x = x + self.attn.extend(self.ln1(x), cache)
        return x + self.mlp(self.ln2(x))

    def step(self, x, cache):
        """:meth:`forward` of one new position ``x`` ``[B, D]`` after those in the attention's
        ``cache``, in functional calls: a step is a few small products, and each module call would
        cost about as much as one."""
        x = x + self.attn.step(layer_norm(self.ln1, x), cache)
        fc, gelu, out = self.mlp
        return x + F.linear(F.gelu(F.linear(layer_norm(self.ln2, x), fc.weight, fc.bias), approximate=gelu.approximate),
                            out.weight, out.bias)


def layer_norm(ln, x):
    """``ln(x)`` by the functional call."""
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


class GPT(nn.Module):
    """Decoder-only transformer over ``vocab_size`` tokens after a class (or start) token."""

    def __init__(self, vocab_size, length, num_classes, dim=128, num_heads=4, num_layers=3, mlp_dim=512,
                 positions=True):
        super().__init__()
        self.length = length  # positions: the class token and length - 1 tokens after it
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.class_embedding = nn.Embedding(max(num_classes, 1), dim)  # one start token when unconditional
        self.position_embedding = nn.Embedding(length, dim) if positions else None  # None: the ablation
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_dim) for _ in range(num_layers))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def embed(self, tokens, start):
        """Input embeddings ``[B, T, D]`` of ``tokens`` placed after the class token (``start`` = the
        position of the first; ``tokens`` ``[B, T]``)."""
        x = self.token_embedding(tokens)
        if self.position_embedding is None:
            return x
        return x + self.position_embedding(torch.arange(start, start + tokens.shape[1], device=tokens.device))

    def start(self, y):
        """The class token's input embedding ``[B, 1, D]`` at position 0."""
        x = self.class_embedding(y)[:, None]
        return x if self.position_embedding is None else x + self.position_embedding.weight[:1]

    def forward(self, tokens, y):
        """Logits ``[B, T + 1, V]``: position t predicts token t, from the class and tokens < t."""
        x = torch.cat([self.start(y), self.embed(tokens, 1)], 1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))

    def stepper(self, y):
        """``step(token or None) -> logits [B, V]`` of the next position, with a KV cache: the first
        call (None) reads the class token, each later call the token sampled last."""
        caches, position = [{"capacity": self.length} for _ in self.blocks], 0

        def step(token):
            nonlocal position
            if position == self.length:
                raise ValueError(f"the KV cache holds {self.length} positions, and all are used")
            x = (self.start(y) if token is None else self.embed(token[:, None], position))[:, 0]
            position += 1
            for block, cache in zip(self.blocks, caches):
                x = block.step(x, cache)
            return F.linear(layer_norm(self.ln, x), self.head.weight, self.head.bias)

        return step


@dataclass
class ImageGPTConfig(ModelConfig):
    dim: int = 128
    num_heads: int = 4
    num_layers: int = 3
    mlp_dim: int = 512
    positions: bool = True  # learned position embeddings (False: the course project's ablation; a causal
    # transformer then knows where it is only from what it has seen)


@register
class ImageGPT(GenerativeModel):
    """ImageGPT-style transformer: causal self-attention over the values, KV cache."""

    model_type = "image-gpt"
    config_class = ImageGPTConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        c = self.config
        self.gpt = GPT(self.levels, self.num_values, self.label_count, c.dim, c.num_heads, c.num_layers, c.mlp_dim,
                       c.positions)

    @property
    def summary(self):
        return f"ImageGPT-style transformer: causal self-attention over the {self.num_values} {self.codec.units}, KV cache"

    def forward(self, x, y=None):
        x, y = self.check_input(x, y)
        values = raster_values(x)  # (b, n)
        logits = self.gpt(values[:, :-1], self.start_labels(y, x.shape[0], x.device))  # (b, n, K)
        return image_logits(logits, self.value_shape)

    def fast_sampler(self, y, batch):
        step = self.gpt.stepper(self.start_labels(y, batch, next(self.parameters()).device))

        def value_step(x, t):
            return step(raster_values(x)[:, t - 1] if t else None)

        return value_step
