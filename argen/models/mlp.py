"""The MLP pixel predictors of the tutorial "Generating Pixels One by One" (T. Salihoglu, 2025).

Each pixel is predicted from a window of the ``context_length`` tokens before it in raster order
(the image read as one sequence; positions before the first pixel hold a start token ``K``):

- ``v1``: the window as concatenated one-hot vectors -> MLP -> K logits;
- ``v2``: v1 + learned embeddings of the target pixel's row and column;
- ``v3``: learned token embeddings instead of one-hot + row/column + class embeddings.

Different from the blog: instead of materialising millions of (window, target) pairs, ``forward``
slides the window over every position of a batch of images at once (``unfold``), so training uses
every pixel and the model follows the shared contract (logits for all pixels). Row, column and
class embeddings are learned directly in the hidden space, which equals concatenating them to the
input of the first linear layer. ``fast_sampler`` evaluates only the window of the pixel asked
for, its first layer as a table lookup.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import NUM_CLASSES
from ..schedules import image_logits, raster_values
from .base import GenerativeModel, ModelConfig, register, levels_codec
from .layers import step_linear

VARIANTS = ("v1", "v2", "v3")


SUMMARIES = {
    "v1": "MLP over a one-hot window of the previous pixels (blog V1)",
    "v2": "MLP over a one-hot window + row/column embeddings (blog V2)",
    "v3": "MLP with token, row/column and class embeddings, class-conditional (blog V3)",
}


@dataclass
class PixelMLPConfig(ModelConfig):
    codec: dict = levels_codec(16)
    num_classes: int | None = None  # None: class-conditional (10) for v3, unconditional for v1 and v2
    variant: str = "v3"
    context_length: int = 28
    hidden_dim: int = 1024
    num_layers: int = 2
    embed_dim: int = 32
    dropout: float = 0.25

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.num_classes is None:
            self.num_classes = NUM_CLASSES if self.variant == "v3" else 0
        if self.context_length < 1 or self.num_layers < 1:
            raise ValueError("context_length and num_layers must be >= 1")
        super().__post_init__()


@register
class PixelMLP(GenerativeModel):
    """MLP next-pixel predictor over a window of previous pixels."""

    model_type = "mlp"
    config_class = PixelMLPConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.require_grey()
        c = self.config
        variant, context_length, hidden_dim, embed_dim, levels = (c.variant, c.context_length, c.hidden_dim,
                                                                  c.embed_dim, self.levels)
        self.variant, self.context_length = variant, context_length
        self.start_token = levels  # pads the window before the first pixel
        vocab = levels + 1
        if variant == "v3":
            self.token_embedding = nn.Embedding(vocab, embed_dim)
        else:  # a fixed one-hot "embedding"
            self.register_buffer("token_embedding_table", torch.eye(vocab), persistent=False)
        token_dim = embed_dim if variant == "v3" else vocab
        self.window = nn.Linear(context_length * token_dim, hidden_dim)
        _, h, w = self.value_shape
        if variant != "v1":
            self.row_embedding = nn.Embedding(h, hidden_dim)
            self.col_embedding = nn.Embedding(w, hidden_dim)
        if self.num_classes:
            self.class_embedding = nn.Embedding(self.label_count, hidden_dim)
        layers = [nn.ReLU(), nn.Dropout(c.dropout)]
        for _ in range(c.num_layers - 1):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Dropout(c.dropout)]
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden_dim, levels))

    @property
    def summary(self):
        return SUMMARIES[self.variant]

    def embed_tokens(self, tokens):
        if self.variant == "v3":
            return self.token_embedding(tokens)
        return self.token_embedding_table[tokens]

    def window_logits(self, windows, positions, y):
        """Logits ``[B, N, K]`` for N target pixels from their windows ``[B, N, context_length]``
        and raster positions ``[N]``."""
        b, n, _ = windows.shape
        h = self.window(self.embed_tokens(windows).reshape(b, n, -1))  # (b, n, hidden)
        if self.variant != "v1":
            width = self.value_shape[2]
            h = h + self.row_embedding(positions // width) + self.col_embedding(positions % width)
        if self.num_classes:
            h = h + self.class_embedding(y)[:, None]
        return self.mlp(h)

    def padded_sequence(self, x):
        """``[B, 1, H, W]`` -> ``[B, context_length + H*W]`` with start tokens in front."""
        return F.pad(raster_values(x), (self.context_length, 0), value=self.start_token)

    def forward(self, x, y=None):
        x, y = self.check_input(x, y)
        seq = self.padded_sequence(x)
        n = self.num_values
        windows = seq.unfold(1, self.context_length, 1)[:, :n]  # (b, n, ctx): tokens i-ctx .. i-1
        logits = self.window_logits(windows, torch.arange(n, device=x.device), y)  # (b, n, K)
        return image_logits(logits, self.value_shape)

    def step_tables(self):
        """(the first layer's table ``[context_length * (K + 1), hidden]``, its bias at each raster
        position ``[n, hidden]``): the window layer of a window of embedded tokens is a sum over
        the window's slots of one vector per (slot, token), ``W_j e(token)``, so a step can add
        up the window's rows of the table instead of multiplying. The bias holds the layer's own
        bias and, for v2 and v3, the row and column embeddings."""
        vocab, ctx = self.start_token + 1, self.context_length
        tokens = self.embed_tokens(torch.arange(vocab, device=self.window.weight.device))  # (vocab, d)
        weight = self.window.weight.reshape(-1, ctx, tokens.shape[1])  # (hidden, ctx, d)
        table = torch.einsum("hjd,vd->jvh", weight, tokens).reshape(ctx * vocab, -1)
        bias = self.window.bias.expand(self.num_values, -1)
        if self.variant != "v1":
            positions, width = torch.arange(self.num_values, device=table.device), self.value_shape[2]
            bias = bias + self.row_embedding(positions // width) + self.col_embedding(positions % width)
        return table, bias

    def fast_sampler(self, y, batch):
        """The network at one pixel from its window alone. The window layer is a table lookup
        (:meth:`step_tables`, one ``embedding_bag`` of the window's rows), the class embedding
        is looked up once, and the rest of the MLP runs on the ``batch`` rows: the whole network's
        figures up to rounding. A model in training mode with dropout gets no fast path (the
        steps leave dropout out): the sampler then runs the whole network."""
        if self.training and self.config.dropout:
            return None
        with torch.no_grad():
            table, bias = self.step_tables()
            device, ctx, vocab = table.device, self.context_length, self.start_token + 1
            offsets = torch.arange(ctx, device=device) * vocab  # slot j's rows of the table
            starts = torch.full((batch, ctx), self.start_token, device=device)
            classes = self.class_embedding(y) if self.num_classes else 0  # (batch, hidden)
            linears = [m for m in self.mlp if isinstance(m, nn.Linear)]
            products = [step_linear(m.weight, m.bias, batch) for m in linears]

        def step(x, t):
            flat = x.reshape(batch, -1)
            window = flat[:, t - ctx:t] if t >= ctx else torch.cat([starts[:, t:], flat[:, :t]], 1)
            h = F.embedding_bag(window + offsets, table, mode="sum")
            h = (h + bias[t]).add_(classes).relu_()
            for product in products[:-1]:
                h = product(h).relu_()
            return products[-1](h)

        return step

