"""PixelRNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks").

A 7x7 mask-A input convolution, a stack of recurrent layers with residual connections (each
LSTM has h state channels inside a 2h-channel residual stream, a 1x1 convolution bringing its
output back up), and 1x1 output layers giving K logits per pixel. Two kinds of layer:

- **Row LSTM** scans the image row by row. The gates at (i, j) come from the layer input at
  columns j-1 and j of row i (a masked 1-D convolution) and from the previous row's hidden state
  at columns j-1..j+1 (a 1x3 convolution). A pixel's receptive field is a triangle above it
  (widened by the input convolution) plus a few pixels to its left: not the whole past.
- **Diagonal BiLSTM** skews the map (row i moves i columns right) so that each diagonal becomes a
  column. It scans the columns with a 2x1 state-to-state convolution, so the state at (i, j) comes
  from (i-1, j) and (i, j-1) and sees everything above-left. A second LSTM scans the mirrored map
  and sees everything above-right. Its output is shifted down one row, so it brings only finished
  rows, and is added to the first. Because it brings finished rows only, the mirrored scan may
  also read the pixel values of its row: without them the last pixel of a row would be seen by
  the next row only through the input convolution's reach (a blind spot the mask-A features
  leave). With them the receptive field is the whole causal past.

The **multi-scale PixelRNN** draws a small image first (every f-th pixel of every f-th row: 14 x 14
for MNIST) with a small Row LSTM, then the other pixels with a full-size Row LSTM in raster order.
The full-size model reads the whole small image: two 3x3 convolutions over it, upsampled by a
stride-f transposed convolution, give every pixel a bias on each layer's gates (the paper's
"upsampled features as biases"). The likelihood stays exact, log p(small) + log p(rest | small),
one term per pixel in the :class:`~argen.schedules.CoarseToFine` order, which the sampler follows.

Different here: grey images only (C = 1). A class embedding is added to every layer's gates.
The masked 1-D convolution is a shifted one (columns j-1, j), as in PixelCNN++.
``fast_sampler`` carries the recurrent state instead of recomputing it. When a row starts, every
part of its gates that comes from the row above (the state-to-state convolution, the mirrored
scan's output, the biases) is computed for the whole row in one matrix product per layer; then
each pixel costs a few vector-matrix products per layer. The Row LSTM computes each pixel's
column of every layer once (it has no recurrence along a row; where the sampler skips columns, as
the multi-scale model's full-size pass does, it computes them when it comes back). The Diagonal
BiLSTM runs one cell per pixel per layer, and the mirrored scan once per finished row. Both give
the logits of the whole-image pass (tests: fast == naive).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..schedules import CoarseToFine
from .base import GenerativeModel, ModelConfig, register
from .codecs import Levels
from .layers import (MaskedConv2d, head_at_position, lstm_update, output_head, row_buffer, scale_levels,
                     scale_levels_into, shift_down)


def lstm_cell(gates, c, dim=1):
    """One LSTM update from the pre-activations (input, forget, output, candidate along ``dim``): ``(h, c)``."""
    hidden = gates.shape[dim] // 4
    i, f, o = gates.narrow(dim, 0, 3 * hidden).sigmoid().chunk(3, dim)  # the three gates in one call
    c = torch.addcmul(f * c, i, gates.narrow(dim, 3 * hidden, hidden).tanh())
    return o * c.tanh(), c


def torch_gate_order(t, dim=0):
    """``t`` with its gate dimension ``dim`` (4h long, in :func:`lstm_cell`'s order: input, forget,
    output, candidate) in the order of ``torch.lstm_cell`` (input, forget, candidate, output)."""
    hidden = t.shape[dim] // 4
    i_f, o, g = t.split([2 * hidden, hidden, hidden], dim)
    return torch.cat([i_f, g, o], dim)


def lstm_step(x, state, w_input, w_state, bias, bias_2=None):
    """A fast path's LSTM cell, gates in ``torch.lstm_cell``'s order: ``(h, c)`` from the input ``x``
    ``[B, in]``, the state ``(h, c)``, their weights ``[4h, in]``, ``[4h, h]`` and per-row biases
    ``[B, 4h]`` (the second may be None). On the CPU it is one ``torch.lstm_cell`` call, a dozen
    operations in C++ instead of a Python call each; elsewhere (CUDA's fused cell takes only
    1-D biases) :func:`lstm_step_equations`."""
    if x.device.type == "cpu":
        return torch.lstm_cell(x, state, w_input, w_state, bias, bias_2)
    return lstm_step_equations(x, state, w_input, w_state, bias, bias_2)


def lstm_step_equations(x, state, w_input, w_state, bias, bias_2=None):
    """:func:`lstm_step` by the cell's equations."""
    gates = torch.addmm(bias, x, w_input.t()).addmm_(state[0], w_state.t())
    return lstm_update(gates if bias_2 is None else gates.add_(bias_2), state[1])


def with_bias(gates, cond):
    """Gate pre-activations ``[B, 4h, ...]`` plus a bias (if any): per image ``[B, 4h]`` (the
    class's), or per pixel, shaped like the gates (the multi-scale model's map of the small image)."""
    if cond is None:
        return gates
    return gates + (cond.reshape(*cond.shape, *(1,) * (gates.dim() - 2)) if cond.dim() == 2 else cond)


def skew(x):
    """``[B, C, H, W] -> [B, C, H, W + H - 1]``, row i moved i columns right: diagonals become columns."""
    b, c, height, width = x.shape
    flat = F.pad(x, (0, height)).flatten(2)[:, :, :height * (width + height - 1)]
    return flat.reshape(b, c, height, width + height - 1)


def unskew(x, width):
    """Inverse of :func:`skew` for an image ``width`` columns wide."""
    b, c, height, _ = x.shape
    return F.pad(x.flatten(2), (0, height)).reshape(b, c, height, width + height)[..., :width]


class PixelInput:
    """The input convolution (mask A, k x k) at one pixel at a time, for the fast paths. The rows that
    reach the current row (rows r - k // 2 .. r) are kept, scaled, in a zero-padded buffer, column by
    column, so that a pixel's patch is one contiguous window of it (:func:`row_buffer`) and its
    features one ``addmm``. The current row is read again from the values before each use: the
    values not drawn yet are read too, but mask A gives them weight 0. The buffer is overwritten in
    place, so (like every fast path) it is for sampling, under ``torch.no_grad``."""

    def __init__(self, conv, levels, batch, width):
        k = conv.kernel_size[0]
        self.reach, self.levels = k // 2, levels
        buffer, windows, _ = row_buffer(batch, self.reach + 1, self.reach, k, width + self.reach, conv.weight.device)
        self.windows = windows[:width]
        grid = buffer.view(batch, width + 2 * self.reach, self.reach + 1)  # (b, column, rows r - reach .. r)
        inside = grid[:, self.reach:self.reach + width]
        self.above, self.current = inside[..., :-1], inside[..., -1]
        # the weight over a window: (column, then row) of the kernel's top reach + 1 rows (mask A hides the rest)
        self.weight = (conv.weight * conv.mask)[:, 0, :self.reach + 1].transpose(1, 2).flatten(1).t()
        self.bias = conv.bias

    def start_row(self, x, row):
        """Keep the rows above ``row`` (drawn): rows above the image are zeros, as in the convolution."""
        rows = scale_levels(x[:, 0, max(0, row - self.reach):row], self.levels).transpose(1, 2)  # (b, W, n)
        self.above.zero_()  # (only the first rows need it: later ones overwrite every slot)
        self.above[..., self.reach - rows.shape[2]:] = rows

    def read_row(self, x, row):
        """Read the current row's values again (after a value of it was drawn)."""
        scale_levels_into(self.current, x[:, 0, row], self.levels)

    def __call__(self, col):
        """The input convolution's features at column ``col`` of the current row ``[B, 2h]``."""
        return torch.addmm(self.bias, self.windows[col], self.weight)


class RowLSTMLayer(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.hidden = hidden
        self.input_to_state = nn.Conv2d(channels, 4 * hidden, (1, 2))  # columns j-1, j
        self.state_to_state = nn.Conv2d(hidden, 4 * hidden, (1, 3), padding=(0, 1), bias=False)
        self.out = nn.Conv2d(hidden, channels, 1)
        self.cond_size = 4 * hidden

    def input_gates(self, x, cond):
        """Gate pre-activations from the layer input ``[B, 2h, rows, W]`` of the same rows."""
        return with_bias(self.input_to_state(F.pad(x, (1, 0))), cond)

    def row(self, gates, state):
        """``(h, c)`` of one row ``[B, h, 1, W]`` from its input gates and the row above's state."""
        if state is None:  # the top row
            return lstm_cell(gates, torch.zeros_like(gates[:, :self.hidden]))
        h, c = state
        return lstm_cell(gates + self.state_to_state(h), c)

    def forward(self, x, cond, image):
        """The layer's output ``[B, 2h, H, W]``; ``image`` is unused (rows see pixels through ``x``)."""
        state, rows = None, []
        for gates in self.input_gates(x, cond).split(1, 2):  # split, not indexing: a cheap backward
            state = self.row(gates, state)
            rows.append(state[0])
        return x + self.out(torch.cat(rows, 2))


class DiagonalLSTM(nn.Module):
    """One direction of the Diagonal BiLSTM: the state at (i, j) comes from (i-1, j) and (i, j-1)."""

    def __init__(self, channels, hidden):
        super().__init__()
        self.hidden = hidden
        self.input_to_state = nn.Conv2d(channels, 4 * hidden, 1)
        self.state_to_state = nn.Linear(2 * hidden, 4 * hidden, bias=False)  # of (above, left)

    def input_gates(self, x, cond):
        return with_bias(self.input_to_state(x), cond)

    def step_weights(self, cond):
        """This scan as a fast path's matrices, gates in ``torch.lstm_cell``'s order: (the input-to-state
        weight ``[4h, C]``, the bias with the class's ``[B or 1, 1, 4h]``, the state-to-state weight's
        part for the state above ``[4h, h]`` and for the state to the left ``[4h, h]``)."""
        bias = self.input_to_state.bias if cond is None else self.input_to_state.bias + cond
        above, left = torch_gate_order(self.state_to_state.weight).split(self.hidden, 1)
        return (torch_gate_order(self.input_to_state.weight[:, :, 0, 0]),
                torch_gate_order(bias, -1).view(-1, 1, 4 * self.hidden), above, left)

    def forward(self, x, cond):
        """The hidden map ``[B, h, H, W]``, scanning one diagonal at a time."""
        b, _, height, width = x.shape
        gates = skew(self.input_gates(x, cond)).permute(3, 0, 2, 1)  # (W + H - 1, b, H, 4h)
        valid = skew(x.new_ones(1, 1, height, width))[0, 0].T[..., None]  # (W + H - 1, H, 1)
        h = c = x.new_zeros(b, height, self.hidden)
        columns = []
        for gates_k, valid_k in zip(gates.unbind(0), valid.unbind(0)):  # unbind: a cheap backward
            # row r of the previous diagonal holds the pixel to the left; row r - 1 the one above
            above = F.pad(h, (0, 0, 1, 0))[:, :-1]
            h, c = lstm_cell(gates_k + self.state_to_state(torch.cat([above, h], -1)), c, -1)
            h, c = h * valid_k, c * valid_k  # no state outside the image
            columns.append(h)
        return unskew(torch.stack(columns, -1).transpose(1, 2), width)


class DiagonalBiLSTMLayer(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.hidden = hidden
        self.left_to_right = DiagonalLSTM(channels, hidden)
        self.right_to_left = DiagonalLSTM(channels + 1, hidden)  # the mirrored map, with the pixels
        self.out = nn.Conv2d(hidden, channels, 1)
        self.cond_size = 8 * hidden

    def forward(self, x, cond, image):
        """The layer's output ``[B, 2h, H, W]`` from its input and the image ``[B, 1, H, W]`` (scaled)."""
        forward_cond, mirror_cond = cond.chunk(2, 1) if cond is not None else (None, None)
        left = self.left_to_right(x, forward_cond)
        right = self.right_to_left(torch.cat([x, image], 1).flip(3), mirror_cond).flip(3)
        return x + self.out(left + shift_down(right))  # shifted: rows above only


@dataclass
class PixelRNNConfig(ModelConfig):
    hidden_channels: int = 32
    num_layers: int = 4
    input_kernel_size: int = 7
    output_channels: int = 128


class PixelRNN(GenerativeModel):
    """Shared frame of the PixelRNN models: input convolution, recurrent layers, output head."""

    config_class = PixelRNNConfig
    layer_type = None

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.require_grey()
        c, h = self.config, self.config.hidden_channels
        self.input = MaskedConv2d(1, 2 * h, c.input_kernel_size, "A")
        self.layers = nn.ModuleList(self.layer_type(2 * h, h) for _ in range(c.num_layers))
        if self.num_classes:
            self.class_embedding = nn.Embedding(self.label_count, sum(layer.cond_size for layer in self.layers))
        self.output = output_head(2 * h, c.output_channels, self.levels)

    def conditions(self, y, maps=None):
        """Each layer's bias on its gates: the class's ``[B, cond_size]`` (None when unconditional),
        plus its part of ``maps`` ``[B, sum of cond_size, H, W]`` when given (the multi-scale model's)."""
        sizes = [layer.cond_size for layer in self.layers]
        biases = [None] * len(self.layers) if y is None else self.class_embedding(y).split(sizes, 1)
        if maps is None:
            return biases
        return [m if b is None else m + b[..., None, None] for b, m in zip(biases, maps.split(sizes, 1))]

    def forward(self, x, y=None, maps=None):
        """Logits ``[B, K, 1, H, W]``; ``maps``: per-pixel gate biases (see :meth:`conditions`)."""
        x, y = self.check_input(x, y)
        image = scale_levels(x, self.levels)
        features = self.input(image)  # (b, 2h, H, W), the residual stream
        for layer, cond in zip(self.layers, self.conditions(y, maps)):
            features = layer(features, cond, image)
        return self.output(features).unsqueeze(2)


@register
class RowLSTM(PixelRNN):
    """Row LSTM (PixelRNN): row-by-row convolutional LSTM, triangular receptive field."""

    model_type = "row-lstm"
    layer_type = RowLSTMLayer

    def fast_sampler(self, y, batch, maps=None):
        """Each pixel's column of every layer, computed once: a Row LSTM state has no recurrence along
        its row (it reads the layer input at columns j-1, j and the row above's state at j-1..j+1).
        When a row starts, the row above's hidden states give every column's gates their part from
        above, in one matrix product per layer; then each column costs one :func:`lstm_step` and
        two small products per layer as the sampler reaches it (where the sampler skips columns, as
        the multi-scale model's full-size pass does, the skipped ones are computed when it comes back)."""
        width, h = self.value_shape[2], self.config.hidden_channels
        device = next(self.parameters()).device
        pixels, head = PixelInput(self.input, self.levels, batch, width), head_at_position(self.output)
        zero = torch.zeros(batch, h, device=device)
        no_state = torch.zeros(4 * h, h, device=device)  # lstm_cell's state product: the parts come as biases
        layers = []  # per layer: its matrices (gates in torch.lstm_cell's order) and what the rows leave
        for layer, cond in zip(self.layers, self.conditions(y, maps)):
            w_input = torch_gate_order(layer.input_to_state.weight[:, :, 0])  # (4h, 2h, columns j-1, j)
            # the constant part of the gates: the input bias plus the class's (b, 1, 4h) or the map's (b, H, W, 4h)
            bias = layer.input_to_state.bias if cond is None else \
                layer.input_to_state.bias + (cond[:, None] if cond.dim() == 2 else cond.permute(0, 2, 3, 1))
            layers.append({"w_input": w_input[..., 1].contiguous(), "w_left": w_input[..., 0].t().contiguous(),
                           "w_state": torch_gate_order(layer.state_to_state.weight[:, :, 0].flatten(1)),
                           "bias": torch_gate_order(bias, -1), "w_out": layer.out.weight[:, :, 0, 0].t(),
                           "b_out": layer.out.bias, "h": [], "c": [zero] * width})  # before row 0: c = 0
        at = {"row": -1, "next": width}  # the row being computed and its first column not computed yet

        def start_row(x, row):
            """The current row's per-column parts from the row above: each column's gates' part (with
            the bias) and the row above's c; the rows the input convolution reads."""
            pixels.start_row(x, row)
            for r in layers:
                bias = r["bias"] if r["bias"].dim() < 4 else r["bias"][:, row]
                if row:  # the row above's h at columns j-1..j+1 of each column j
                    above = F.pad(torch.stack(r["h"], 1), (0, 0, 1, 1)).unfold(1, 3, 1).flatten(2)
                    r["above"] = (bias + F.linear(above, r["w_state"])).unbind(1)
                else:
                    r["above"] = bias.expand(batch, width, -1).unbind(1)
                r["c_above"], r["h"], r["c"], r["left"] = r["c"], [], [], None
            at["row"], at["next"] = row, 0

        def column(col):
            """Column ``col`` of the current row in every layer: the last layer's features ``[B, 2h]``."""
            features = pixels(col)
            for r in layers:
                # the gates: this column's input, the column to the left's (r["left"]), the row above's part
                h_new, c_new = lstm_step(features, (zero, r["c_above"][col]), r["w_input"], no_state,
                                               r["above"][col], r["left"])
                r["left"] = features @ r["w_left"]
                r["h"].append(h_new)
                r["c"].append(c_new)
                features = torch.addmm(features, h_new, r["w_out"]).add_(r["b_out"])
            return features

        def columns(x, row, last):
            """Compute columns ``next..last`` of ``row``: the last one's features ``[B, 2h]``."""
            pixels.read_row(x, row)
            for col in range(at["next"], last + 1):
                features = column(col)
            at["next"] = last + 1
            return features

        def step(x, t):
            row, col = divmod(t, width)
            if (row, col) < (at["row"], at["next"]):
                raise ValueError(f"the Row LSTM's fast path goes down the rows: asked for row {row}, column {col} "
                                 f"after column {at['next'] - 1} of row {at['row']}")
            while at["row"] < row:  # finish the rows above (their values are all drawn) and move down
                if at["next"] < width:
                    columns(x, at["row"], width - 1)
                start_row(x, at["row"] + 1)
            return head(columns(x, row, col))

        return step


@register
class DiagonalBiLSTM(PixelRNN):
    """Diagonal BiLSTM (PixelRNN): diagonal scans both ways, the whole causal past in view."""

    model_type = "diagonal-bilstm"
    layer_type = DiagonalBiLSTMLayer

    def fast_sampler(self, y, batch):
        """One cell per pixel per layer, and the mirrored scan of each row once it is finished (when
        the next row starts); each cell is one :func:`lstm_step`. When a row starts, the parts of
        its gates and outputs that come from the row above (the left-to-right scan's states, the
        mirrored scan's output) are computed for the whole row in one matrix product each."""
        width = self.value_shape[2]
        pixels, head = PixelInput(self.input, self.levels, batch, width), head_at_position(self.output)
        zero = torch.zeros(batch, self.config.hidden_channels, device=next(self.parameters()).device)
        layers = []  # per layer: its two scans' matrices, its output convolution and what the rows leave
        for layer, cond in zip(self.layers, self.conditions(y)):
            forward_cond, mirror_cond = (None, None) if cond is None else cond.chunk(2, 1)
            layers.append({"forward": layer.left_to_right.step_weights(forward_cond),
                           "mirror": layer.right_to_left.step_weights(mirror_cond),
                           "out": (layer.out.weight[:, :, 0, 0].t(), layer.out.bias), "mirror_h": None,
                           "inputs": [], "state": (zero, zero)})
        at = {"next": 0}

        def scan_mirrored(m, row_pixels):
            """The mirrored scan of the finished row (right to left): its hidden states ``[B, W, h]``."""
            w_in, bias, w_above, w_left = m["mirror"]
            inputs = torch.cat([torch.stack(m["inputs"], 1), row_pixels], -1).unbind(1)  # (b, C + 1) per column
            from_above = bias if m["mirror_h"] is None else bias + F.linear(m["mirror_h"], w_above)
            state, hs = (zero, zero), [None] * width
            for col, gates_col in reversed(list(enumerate(from_above.expand(batch, width, -1).unbind(1)))):
                state = lstm_step(inputs[col], state, w_in, w_left, gates_col)
                hs[col] = state[0]
            return torch.stack(hs, 1)

        def start_row(x, row):
            """The parts of the row's gates and outputs from the row above, for every column."""
            pixels.start_row(x, row)
            row_pixels = scale_levels(x[:, 0, row - 1, :, None], self.levels) if row else None
            for m in layers:
                _, bias, w_above, _ = m["forward"]
                w_out, b_out = m["out"]
                from_above, down = bias.expand(batch, width, -1), b_out.expand(batch, width, -1)
                if row:
                    from_above = from_above + F.linear(torch.stack(m["h"], 1), w_above)
                    m["mirror_h"] = scan_mirrored(m, row_pixels)
                    # shifted down: the row above's
                    down = torch.addmm(b_out, m["mirror_h"].flatten(0, 1), w_out).view(batch, width, -1)
                m["from_above"], m["down"] = from_above.unbind(1), down.unbind(1)
                m["inputs"], m["h"], m["state"] = [], [], (zero, zero)

        def step(x, t):
            if t != at["next"]:
                raise ValueError(f"the Diagonal BiLSTM's fast path goes pixel by pixel in raster order: "
                                 f"asked for pixel {t} after pixel {at['next'] - 1}")
            at["next"] = t + 1
            row, col = divmod(t, width)
            if col == 0:
                start_row(x, row)
            pixels.read_row(x, row)
            features = pixels(col)  # (b, 2h)
            for m in layers:
                w_in, _, _, w_left = m["forward"]
                m["inputs"].append(features)
                # the gates: this pixel's input, the state to the left, the row above's part (with the bias)
                m["state"] = lstm_step(features, m["state"], w_in, w_left, m["from_above"][col])
                m["h"].append(m["state"][0])
                features = torch.addmm(features + m["down"][col], m["state"][0], m["out"][0])
            return head(features)

        return step


@dataclass
class MultiScalePixelRNNConfig(PixelRNNConfig):
    """``hidden_channels`` and ``num_layers`` are the full-size Row LSTM's, the small one has its own;
    ``input_kernel_size`` and ``output_channels`` are shared by both."""

    factor: int = 2  # the small image: every factor-th pixel of every factor-th row
    small_hidden_channels: int = 32
    small_num_layers: int = 2
    conditioning_channels: int = 32  # of the convolutions that read the small image


@register
class MultiScalePixelRNN(GenerativeModel):
    """Multi-scale PixelRNN: a small image first, then the full-size one conditioned on it."""

    model_type = "multiscale-pixelrnn"
    config_class = MultiScalePixelRNNConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.require_grey()
        if not isinstance(self.codec, Levels):
            raise ValueError(f"MultiScalePixelRNN models pixels (a levels or binary codec), got a {self.codec.kind!r} codec")
        c = self.config
        _, height, width = self.value_shape
        self.coarse_to_fine = CoarseToFine(self.value_shape, c.factor)  # checks the factor
        shared = {"num_classes": c.num_classes, "dataset": c.dataset, "class_names": c.class_names,
                  "class_dropout": c.class_dropout, "input_kernel_size": c.input_kernel_size,
                  "output_channels": c.output_channels}
        small_shape = [1, height // c.factor, width // c.factor]
        self.small = RowLSTM(codec={**c.codec, "image_shape": small_shape}, hidden_channels=c.small_hidden_channels,
                             num_layers=c.small_num_layers, **shared)
        self.large = RowLSTM(codec=c.codec, hidden_channels=c.hidden_channels, num_layers=c.num_layers, **shared)
        # the small image, read whole by two 3x3 convolutions and upsampled to per-pixel gate biases
        # of every full-size layer (the paper's "upsampled features as biases")
        self.upsample = nn.Sequential(
            nn.Conv2d(1, c.conditioning_channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c.conditioning_channels, c.conditioning_channels, 3, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c.conditioning_channels, sum(layer.cond_size for layer in self.large.layers),
                               c.factor, stride=c.factor))

    def schedule(self):
        return self.coarse_to_fine

    def maps(self, small):
        """Per-pixel gate biases of the full-size layers ``[B, sum of cond_size, H, W]`` from the small image."""
        return self.upsample(scale_levels(small, self.levels))

    def forward(self, x, y=None):
        x, y = self.check_input(x, y)
        small = self.coarse_to_fine.small(x)
        logits = self.large(x, y, self.maps(small)).clone()
        self.coarse_to_fine.small(logits)[...] = self.small(small, y)  # the small image's pixels: the small model's
        return logits

    def fast_sampler(self, y, batch):
        f, width, schedule = self.config.factor, self.value_shape[2], self.coarse_to_fine
        small_step, large = self.small.fast_sampler(y, batch), []

        def step(x, t):
            row, col = divmod(t, width)
            if schedule.in_small(row, col):  # the small image, in its raster order
                return small_step(schedule.small(x), row // f * (width // f) + col // f)
            if not large:  # the small image is complete: read it once
                large.append(self.large.fast_sampler(y, batch, self.maps(schedule.small(x))))
            return large[0](x, t)

        return step
