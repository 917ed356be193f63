"""The sequence LSTM: one LSTM reading the whole image as a sequence of 784 pixels.

This is the model from the note "why the LSTM is not generating realistic images", built here in
the shared contract. At step t the model reads three things: the previous pixel's value (a learned
embedding, with a start token before the first pixel), a sinusoidal encoding of the row and the
column of pixel t, and a class embedding. It then gives K logits for pixel t. Training is
teacher-forced maximum likelihood with gradient clipping, in the shared loop. Sampling carries
the LSTM state from pixel to pixel, so each pixel costs one step: O(1) per pixel instead of
re-reading the whole prefix.

The note's diagnosis is vanishing gradients over a very long sequence. The pixel above is 28
steps back, and the top of the digit is hundreds of steps back. ``python -m argen.gradients``
measures how much gradient reaches the inputs at each distance.

Different from the note: there is no global noise vector z. A z drawn independently of the image
carries no information about it, so teacher-forced likelihood training would learn to ignore it.
Variety comes from sampling. Grey images only (C = 1).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..schedules import image_logits, raster_values
from .base import GenerativeModel, ModelConfig, register


def sinusoidal(positions, dim):
    """``[n]`` integer positions -> ``[n, dim]`` sines and cosines at geometric frequencies."""
    frequencies = torch.exp(-math.log(100.0) * torch.arange(0, dim, 2) / dim)  # periods 2pi .. ~2pi * 100
    angles = positions[:, None].float() * frequencies
    return torch.cat([angles.sin(), angles.cos()], -1)


@dataclass
class PixelLSTMConfig(ModelConfig):
    embed_dim: int = 64
    position_dim: int = 32
    hidden_dim: int = 256
    num_layers: int = 2

    def __post_init__(self):
        if self.position_dim % 4:
            raise ValueError(f"position_dim must be a multiple of 4 (sin and cos of row and column), "
                             f"got {self.position_dim}")
        super().__post_init__()


@register
class PixelLSTM(GenerativeModel):
    """Sequence LSTM: previous pixel + (row, column) encoding + class, one step per pixel."""

    model_type = "lstm"
    config_class = PixelLSTMConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.require_grey()
        levels, embed_dim, position_dim = self.levels, self.config.embed_dim, self.config.position_dim
        _, height, width = self.value_shape
        index = torch.arange(height * width)
        encoding = torch.cat([sinusoidal(index // width, position_dim // 2), sinusoidal(index % width, position_dim // 2)], -1)
        self.register_buffer("positions", encoding, persistent=False)  # (n, position_dim)
        self.value_embedding = nn.Embedding(levels + 1, embed_dim)  # index K: the start token
        if self.num_classes:
            self.class_embedding = nn.Embedding(self.num_classes, embed_dim)
        inputs = embed_dim * (2 if self.num_classes else 1) + position_dim
        self.lstm = nn.LSTM(inputs, self.config.hidden_dim, self.config.num_layers, batch_first=True)
        self.head = nn.Linear(self.config.hidden_dim, levels)

    def step_inputs(self, previous, steps, y):
        """The LSTM inputs ``[B, T, D]`` for ``steps`` (a slice of raster indices) given the values
        before them, ``previous`` ``[B, T]`` (``levels`` = start token)."""
        b, t = previous.shape
        parts = [self.value_embedding(previous), self.positions[steps].expand(b, t, -1)]
        if y is not None:
            parts.append(self.class_embedding(y)[:, None].expand(-1, t, -1))
        return torch.cat(parts, -1)

    def inputs(self, x, y):
        """The teacher-forced input sequence ``[B, n, D]`` of validated images."""
        previous = F.pad(raster_values(x), (1, 0), value=self.levels)[:, :-1]
        return self.step_inputs(previous, slice(None), y)

    def sequence_logits(self, inputs):
        """Logits ``[B, n, K]`` in raster order from the input sequence ``[B, n, D]``."""
        out, _ = self.lstm(inputs)  # (b, n, hidden)
        return self.head(out)

    def forward(self, x, y=None):
        x, y = self.check_input(x, y)
        return image_logits(self.sequence_logits(self.inputs(x, y)), self.value_shape)

    def fast_sampler(self, y, batch):
        state = None  # the LSTM's (h, c) after the pixels drawn so far

        def step(x, t):
            nonlocal state
            previous = raster_values(x)[:, t - 1:t] if t else x.new_full((x.shape[0], 1), self.levels)
            out, state = self.lstm(self.step_inputs(previous, slice(t, t + 1), y), state)
            return self.head(out[:, 0])

        return step
