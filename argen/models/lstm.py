"""The sequence LSTM: one LSTM reading the whole image as a sequence of 784 pixels.

This is the model of the diagnosis "why the LSTM is not generating realistic images", built here in
the shared contract. At step t the model reads three things: the previous pixel's value (a learned
embedding, with a start token before the first pixel), a sinusoidal encoding of the row and the
column of pixel t, and a class embedding. It then gives K logits for pixel t. Training is
teacher-forced maximum likelihood with gradient clipping, in the shared loop. Sampling carries
the LSTM state from pixel to pixel, so each pixel costs one step: O(1) per pixel instead of
re-reading the whole prefix.

That diagnosis is vanishing gradients over a very long sequence. The pixel above is 28
steps back, and the top of the digit is hundreds of steps back. ``python -m argen.gradients``
measures how much gradient reaches the inputs at each distance.

Colour (the diagnosis' 32 x 32 RGB LSTM, done right): the LSTM still takes one step per pixel, reading
the previous pixel's channels, and its output is PixelCNN++'s discretized mixture of logistics
(``output="logistic-mixture"``) with channel coupling, instead of the diagnosis' three independent
256-way softmaxes: G is drawn knowing R, and B knowing R and G, and nearby levels share
probability. The diagnosis' training settings go with it (Adam with beta1 = 0, weight decay 1e-4, no
mixed precision for the LSTM: see the ``lstm-games`` recipe).

Different from the diagnosis: there is no global noise vector z. A z drawn independently of the image
carries no information about it, so teacher-forced likelihood training would learn to ignore it.
Variety comes from sampling.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..schedules import image_logits
from .base import GenerativeModel, ModelConfig, register
from .layers import lstm_update, step_linear
from ..distributions import DiscretizedLogisticMixture

OUTPUTS = ("softmax", "logistic-mixture")


def sinusoidal(positions, dim):
    """``[n]`` integer positions -> ``[n, dim]`` sines and cosines at geometric frequencies."""
    frequencies = torch.exp(-math.log(100.0) * torch.arange(0, dim, 2) / dim)  # periods 2pi .. ~2pi * 100
    angles = positions[:, None].float() * frequencies
    return torch.cat([angles.sin(), angles.cos()], -1)


class LSTMSteps:
    """One step at a time of ``lstm`` (a batch-first ``nn.LSTM``) for ``rows`` sequences: the cell's
    equations, layer by layer, as ``nn.LSTM`` computes them (for a single step its per-call set-up
    costs twice the arithmetic), with each layer's products by :func:`step_linear`. A layer above
    the first multiplies its input and its hidden state side by side, ``[x, h] [W_ih, W_hh]^T``:
    one product instead of two and their sum."""

    def __init__(self, lstm, rows):
        self.hidden, self.layers = lstm.hidden_size, []
        for layer in range(lstm.num_layers):
            w_ih, b_ih, w_hh, b_hh = (getattr(lstm, f"{kind}_l{layer}")
                                      for kind in ("weight_ih", "bias_ih", "weight_hh", "bias_hh"))
            self.layers.append(step_linear(torch.cat([w_ih, w_hh], 1), b_ih + b_hh, rows) if layer
                               else step_linear(w_hh, None, rows))

    def __call__(self, input_gates, state):
        """The step from the first layer's input gates ``[B, 4 hidden]`` (its input times
        ``weight_ih_l0`` plus both its biases: see :meth:`PixelLSTM.input_tables`) and ``state``, a
        list of each layer's (h, c) ``[B, hidden]``, or None (zeros) -> (the top layer's output
        ``[B, hidden]``, the new state)."""
        if state is None:
            zeros = input_gates.new_zeros(input_gates.shape[0], self.hidden)
            state = [(zeros, zeros)] * len(self.layers)
        x, new = None, []
        for layer, (product, (h, c)) in enumerate(zip(self.layers, state)):
            x, c = lstm_update(product(torch.cat([x, h], 1)) if layer else input_gates + product(h), c)
            new.append((x, c))
        return x, new


@dataclass
class PixelLSTMConfig(ModelConfig):
    embed_dim: int = 64
    position_dim: int = 32
    hidden_dim: int = 256
    num_layers: int = 2
    output: str = "softmax"  # or "logistic-mixture" (PixelCNN++'s head; needed for RGB)
    num_mixtures: int = 5

    def __post_init__(self):
        if self.position_dim % 4:
            raise ValueError(f"position_dim must be a multiple of 4 (sin and cos of row and column), "
                             f"got {self.position_dim}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        super().__post_init__()


@register
class PixelLSTM(GenerativeModel):
    """Sequence LSTM: previous pixel + (row, column) encoding + class, one step per pixel."""

    model_type = "lstm"
    config_class = PixelLSTMConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        levels, embed_dim, position_dim = self.levels, self.config.embed_dim, self.config.position_dim
        channels, height, width = self.value_shape
        self.scores_values = self.config.output == "logistic-mixture"
        if channels > 1 and not self.scores_values:
            raise ValueError(f"an RGB LSTM takes one step per pixel, so its channels need the coupled "
                             f"output='logistic-mixture' (got output={self.config.output!r} for {channels} channels)")
        index = torch.arange(height * width)
        encoding = torch.cat([sinusoidal(index // width, position_dim // 2), sinusoidal(index % width, position_dim // 2)], -1)
        self.register_buffer("positions", encoding, persistent=False)  # (n, position_dim)
        self.value_embedding = nn.Embedding(levels + 1, embed_dim)  # index K: the start token
        if self.num_classes:
            self.class_embedding = nn.Embedding(self.label_count, embed_dim)
        inputs = embed_dim * (channels + (1 if self.num_classes else 0)) + position_dim
        self.lstm = nn.LSTM(inputs, self.config.hidden_dim, self.config.num_layers, batch_first=True)
        self.mixture = DiscretizedLogisticMixture(levels, channels, self.config.num_mixtures)
        self.head = nn.Linear(self.config.hidden_dim, self.mixture.num_params if self.scores_values else levels)

    def step_inputs(self, previous, steps, y):
        """The LSTM inputs ``[B, T, D]`` for ``steps`` (a slice of pixel indices) given the pixels
        before them, ``previous`` ``[B, T, C]`` (``levels`` = start token)."""
        b, t, _ = previous.shape
        parts = [self.value_embedding(previous).flatten(2), self.positions[steps].expand(b, t, -1)]
        if y is not None:
            parts.append(self.class_embedding(y)[:, None].expand(-1, t, -1))
        return torch.cat(parts, -1)

    def inputs(self, x, y):
        """The teacher-forced input sequence ``[B, n, D]`` of validated images (one step per pixel)."""
        pixels = x.permute(0, 2, 3, 1).flatten(1, 2)  # (b, h*w, c)
        previous = F.pad(pixels, (0, 0, 1, 0), value=self.levels)[:, :-1]
        return self.step_inputs(previous, slice(None), y)

    def sequence_logits(self, inputs):
        """The head's outputs ``[B, h*w, outputs]`` in pixel order from the input sequence ``[B, h*w, D]``:
        the K logits of a grey pixel, or the mixture's parameters of a pixel."""
        return self.head(self.lstm(inputs)[0])

    def forward(self, x, y=None, at_values=False):
        """Logits ``[B, K, C, H, W]``; with ``at_values`` the log-probabilities of ``x`` alone ``[B, C, H, W]``."""
        x, y = self.check_input(x, y)
        out = self.sequence_logits(self.inputs(x, y))  # (b, h*w, outputs)
        if self.scores_values:
            return self.mixture(out.transpose(1, 2).unflatten(2, x.shape[2:]), x, at_values)
        logits = image_logits(out, self.value_shape)
        return logits.log_softmax(1).gather(1, x.unsqueeze(1))[:, 0] if at_values else logits

    def input_tables(self, y):
        """The first LSTM layer's input gates as a sum of looked-up rows (the fast path's): each
        channel's value's part ``[C (K + 1), 4 hidden]`` (channel k's at rows k (K + 1) + value),
        each pixel's position's part ``[n, 4 hidden]``, and the class's part plus both biases
        ``[B or 1, 4 hidden]``."""
        c, e = self.value_shape[0], self.config.embed_dim
        w_values, w_positions, w_class = self.lstm.weight_ih_l0.split(
            [c * e, self.config.position_dim, self.lstm.input_size - c * e - self.config.position_dim], 1)
        values = torch.cat([F.linear(self.value_embedding.weight, w) for w in w_values.split(e, 1)])
        constant = (self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0)[None]
        if y is not None:
            constant = constant + F.linear(self.class_embedding(y), w_class)
        return values, F.linear(self.positions, w_positions), constant

    def fast_sampler(self, y, batch):
        """One LSTM step per pixel, carrying its state; the first layer's input gates are a few
        looked-up rows (:meth:`input_tables`) instead of a matrix product."""
        state = {"lstm": None}  # the LSTM's (h, c) after the pixels drawn so far, and the head's output
        c, _, width = self.value_shape
        values, positions, constant = self.input_tables(y)
        lstm_step, head = LSTMSteps(self.lstm, batch), step_linear(self.head.weight, self.head.bias, batch)
        offsets = torch.arange(c, device=values.device) * (self.levels + 1)  # channel k's rows

        def step(x, t):
            pixel = t // c
            row, col = divmod(pixel, width)
            if t % c == 0:  # the channels of a pixel share one LSTM step
                previous = (x[:, :, (pixel - 1) // width, (pixel - 1) % width] if pixel
                            else x.new_full((x.shape[0], c), self.levels))
                gates = F.embedding(previous + offsets, values).sum(1) + positions[pixel] + constant
                out, state["lstm"] = lstm_step(gates, state["lstm"])
                state["out"] = head(out)
            if not self.scores_values:
                return state["out"]
            here = x[:, :, row:row + 1, col:col + 1]
            return self.mixture(state["out"][:, :, None, None], here, channel=t % c)[:, :, 0, 0, 0]

        return step
