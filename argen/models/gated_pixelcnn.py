"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks remove PixelCNN's blind spot: a vertical stack whose (k/2+1) x k convolutions see the
rows above and the current row, fed into the horizontal stack only after a shift down by one row
(so it brings rows strictly above), and a horizontal stack whose 1 x (k/2+1) convolutions see the
pixels to the left (the first layer excludes the pixel itself). Each layer is a gated unit
tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h) with class-conditional biases h = embedding(y);
the horizontal stack has residual and skip connections; 1x1 layers on the summed skips give K
logits. Causality comes from shifted (cropped) convolutions, as in PixelCNN++, not masks.

Grey images only (C = 1). ``fast_sampler`` keeps caches in the spirit of Ramachandran et al. 2017
("Fast Generation for Convolutional Autoregressive Models"): what a row gets from the vertical
stack depends only on finished rows, so it is computed once per row from the rows within reach;
each horizontal layer keeps its input for the row so far, so a new pixel costs every layer one
column: a matrix product over its last few columns. No convolution reruns per pixel, and the
logits are the naive path's up to float rounding (the same sums, with the gate rewritten as one
sigmoid: see ``fast_sampler``).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, ModelConfig, register
from .layers import head_at_position, output_head, pointwise, row_buffer, scale_levels, scale_levels_into, shift_down


def gate(x):
    """tanh(first half of the channels) * sigmoid(second half)."""
    half = x.shape[1] // 2  # slices, not chunk: several times cheaper on the fast path's tiny tensors
    return torch.tanh(x[:, :half]) * torch.sigmoid(x[:, half:])


def gate_(x):
    """:func:`gate` of a ``[B, 2h]`` tensor the fast path may overwrite: tanh in place on the first
    half, then one ``glu`` (first half times sigmoid of the second): three calls instead of five."""
    x.narrow(1, 0, x.shape[1] // 2).tanh_()
    return F.glu(x, 1)


class GatedLayer(nn.Module):
    def __init__(self, in_channels, channels, kernel_size, first, num_classes):
        super().__init__()
        half = kernel_size // 2
        self.first, self.half = first, half
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (half + 1, kernel_size))
        # the first layer's horizontal kernel stops left of the pixel; later ones include it
        self.horizontal = nn.Conv2d(in_channels, 2 * channels, (1, half if first else half + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.skip = nn.Conv2d(channels, channels, 1)
        if num_classes:
            self.cond_v = nn.Embedding(num_classes, 2 * channels)
            self.cond_h = nn.Embedding(num_classes, 2 * channels)

    def vertical_step(self, v, y):
        """(next vertical features, what they bring to the horizontal stack, class bias included)."""
        pre = self.vertical(F.pad(v, (self.half, self.half, self.half, 0)))  # rows i-half .. i
        to_h = self.v_to_h(shift_down(pre))  # from the rows above only
        if y is not None:
            pre = pre + self.cond_v(y)[:, :, None, None]
            to_h = to_h + self.cond_h(y)[:, :, None, None]
        return gate(pre), to_h

    def column_weights(self):
        """The horizontal stack's weights as matrices for one column at a time: the convolution over
        the window of columns (rows ordered column by column, channels inside), then the 1x1
        residual and skip layers."""
        window = self.horizontal.weight[:, :, 0].permute(2, 1, 0).flatten(0, 1)  # (width * in, 2h)
        return window, pointwise(self.h_out)[0], pointwise(self.skip)[0]

    def row_weights(self, y, batch, width):
        """The vertical stack at one row as matrices, for the fast path: (the convolution over a
        position's patch (rows, then columns, then channels) ``[(half + 1) k in, 2h]``, its bias per
        position ``[B W, 2h]``, the class's bias on the gate per position (None: unconditional),
        the 1x1 layer to the horizontal stack ``[2h, 2h]``, its bias with the class's per position)."""
        def per_position(bias, cond):  # [2h] -> [B W, 2h] (positions image by image)
            bias = bias.expand(batch, -1) if cond is None else bias + cond(y)
            return bias.repeat_interleave(width, 0)

        conv = self.vertical.weight.permute(2, 3, 1, 0).flatten(0, 2)
        cond_v = None if y is None else self.cond_v(y).repeat_interleave(width, 0)
        to_h, to_h_bias = pointwise(self.v_to_h)
        return (conv, per_position(self.vertical.bias, None), cond_v, to_h,
                per_position(to_h_bias, None if y is None else self.cond_h))

    def horizontal_step(self, h, from_v):
        """(next horizontal features, skip output) given what the vertical stack brings to these rows."""
        if self.first:
            pre = self.horizontal(F.pad(h, (self.half, 0, 0, 0))[:, :, :, :-1])  # columns j-half .. j-1
        else:
            pre = self.horizontal(F.pad(h, (self.half, 0, 0, 0)))  # columns j-half .. j
        out = gate(pre + from_v)
        residual = self.h_out(out)
        return (residual if self.first else h + residual), self.skip(out)


@dataclass
class GatedPixelCNNConfig(ModelConfig):
    hidden_channels: int = 64
    num_layers: int = 10
    kernel_size: int = 3
    input_kernel_size: int = 7
    output_channels: int = 256


@register
class GatedPixelCNN(GenerativeModel):
    """Gated PixelCNN: vertical + horizontal stacks, gated units, no blind spot."""

    model_type = "gated-pixelcnn"
    config_class = GatedPixelCNNConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self.require_grey()
        c, h, n = self.config, self.config.hidden_channels, self.label_count
        self.layers = nn.ModuleList(
            [GatedLayer(1, h, c.input_kernel_size, True, n)]
            + [GatedLayer(h, h, c.kernel_size, False, n) for _ in range(c.num_layers - 1)])
        self.output = output_head(h, c.output_channels, self.levels)

    def vertical(self, x, y):
        """The vertical stack's contributions to the horizontal stack, one ``[B, 2h, H, W]`` per layer."""
        v, contributions = scale_levels(x, self.levels), []
        for layer in self.layers:
            v, to_h = layer.vertical_step(v, y)
            contributions.append(to_h)
        return contributions

    def horizontal(self, x, contributions):
        """Logits ``[B, K, 1, rows, cols]`` from the pixels of some rows and their vertical contributions."""
        h, skips = scale_levels(x, self.levels), 0
        for layer, from_v in zip(self.layers, contributions):
            h, skip = layer.horizontal_step(h, from_v)
            skips = skips + skip
        return self.output(skips).unsqueeze(2)

    def forward(self, x, y=None):
        x, y = self.check_input(x, y)
        return self.horizontal(x, self.vertical(x, y))

    def fast_sampler(self, y, batch):
        height, width = self.value_shape[1:]
        device = self.output[1].weight.device
        zeros = lambda *shape: torch.zeros(*shape, device=device)  # noqa: E731
        layers = [(layer, *layer.column_weights()) for layer in self.layers]
        skip_weight = torch.cat([weights[-1] for weights in layers])  # one product for all the skips
        # A step's gate is tanh(a) sigmoid(b) = sigmoid(b) - 2 sigmoid(-2a) sigmoid(b): one sigmoid over
        # the whole pre-activation, then one addcmul. So a step computes -2a instead of a: the tanh
        # half of the window weights and of what the vertical stack brings (below) is scaled by -2.
        tanh_scale = [torch.ones(layer.horizontal.out_channels, device=device) for layer in self.layers]
        for scale in tanh_scale:
            scale[:len(scale) // 2] = -2
        layers = [(layer, window * scale, *rest) for (layer, window, *rest), scale in zip(layers, tanh_scale)]
        skip_bias = sum(layer.skip.bias for layer in self.layers)
        head = head_at_position(self.output)

        # Vertical caches: each layer's input on the rows above, zero-padded by the layer's reach
        # above and on both sides, channels last (a position's patch: rows, columns, channels).
        vertical = [zeros(batch, layer.half + height, width + 2 * layer.half, layer.vertical.in_channels)
                    for layer in self.layers]
        rows_plan = [layer.row_weights(y, batch, width) for layer in self.layers]
        # What the vertical stack brings to the current row, plus the horizontal bias, per column
        # (its tanh half scaled by -2).
        from_v = [zeros(width, batch, layer.horizontal.out_channels) for layer in self.layers]
        from_v_at = [buffer.unbind() for buffer in from_v]
        # Horizontal caches: each layer's input along the current row, zero-padded on the left by
        # its reach, flat as (B, columns x channels). The first layer's window is columns j-k..j-1
        # of the pixels (pad k), a later layer's is columns j-k+1..j of the layer below (pad k-1);
        # either way column j's window is columns [j, j+k) of the cache, one slice that addmm
        # reads in place. The views are made once: a step only multiplies and writes.
        horizontal, windows_at, inputs_at = [], [], []
        for layer in self.layers:
            k = layer.horizontal.kernel_size[1]
            buffer, windows, inputs = row_buffer(batch, layer.horizontal.in_channels, k if layer.first else k - 1, k,
                                                 width, device)
            horizontal.append(buffer)
            windows_at.append(windows)
            inputs_at.append(inputs)
        inputs_at.append([None] * width)  # past the last layer
        state = {"row": None}

        def next_row(x, row):
            """The vertical stack for ``row``: the row above is final, so each layer runs on it once,
            from its rows in reach (none for row 0, whose contributions are biases)."""
            if row == 0:
                for buffer in vertical:
                    buffer.zero_()
                contributions = [c[:, :, -1] for c in self.vertical(x[:, :, :1], y)]
            else:
                contributions, first = [], self.layers[0].half
                vertical[0][:, first + row - 1, first:first + width, 0] = scale_levels(x[:, 0, row - 1], self.levels)
                for i, (layer, (conv, conv_bias, cond_v, to_h, to_h_bias)) in enumerate(zip(self.layers, rows_plan)):
                    # the vertical convolution's output at row - 1: one product over every column's patch
                    patches = vertical[i][:, row - 1:row + layer.half].unfold(2, layer.vertical.kernel_size[1], 1)
                    pre = torch.addmm(conv_bias, patches.permute(0, 2, 1, 4, 3).reshape(batch * width, -1), conv)
                    contributions.append(torch.addmm(to_h_bias, pre, to_h).view(batch, width, -1).permute(0, 2, 1))
                    if i + 1 < len(self.layers):
                        half = self.layers[i + 1].half
                        v = gate_(pre if cond_v is None else pre.add_(cond_v))  # the layer's output: the next one's input
                        vertical[i + 1][:, half + row - 1, half:half + width] = v.view(batch, width, -1)
            for buffer, c, layer, scale in zip(from_v, contributions, self.layers, tanh_scale):
                torch.add(c, layer.horizontal.bias[:, None], out=buffer.permute(1, 2, 0)).mul_(scale[:, None])
            for buffer in horizontal:
                buffer.zero_()

        # Each layer's pre-activation at a step, and its gated output: a slice of the skip product's
        # input (all the layers' outputs side by side), which the next layer's residual reads too.
        pre = [torch.empty(batch, layer.horizontal.out_channels, device=device) for layer in self.layers]
        gated = torch.empty(batch, sum(layer.h_out.in_channels for layer in self.layers), device=device)
        outs = gated.split([layer.h_out.in_channels for layer in self.layers], 1)

        # per layer, what a step reads: (what the vertical stack brings per column, the windows, the
        # window's weight, the residual weight and bias, where h goes per column: the next layer's
        # cache, the pre-activation and its halves (-2a and b, then their sigmoids), the gated output)
        plan = [(from_v_at[i], windows_at[i], window, residual, layer.h_out.bias, inputs_at[i + 1], pre[i],
                 *pre[i].chunk(2, 1), outs[i])
                for i, (layer, window, residual, _) in enumerate(layers)]

        def step(x, t):
            row, col = divmod(t, width)
            if state["row"] != row:
                state["row"] = row
                next_row(x, row)
            if col:  # the pixel drawn last is the newest input of the first layer (one channel)
                scale_levels_into(inputs_at[0][col - 1], x[:, :, row, col - 1], self.levels)
            h = None
            for from_v_col, windows, window, residual, bias, into, pre_, sig_minus_2a, sig_b, out in plan:
                torch.addmm(from_v_col[col], windows[col], window, out=pre_).sigmoid_()
                torch.addcmul(sig_b, sig_minus_2a, sig_b, value=-2, out=out)  # tanh(a) sigmoid(b)
                if into[col] is None:  # the last layer: its h feeds no layer, and the output reads the skips
                    break
                if h is None:  # the first layer: no residual connection
                    h = torch.addmm(bias, out, residual, out=into[col])
                else:  # plus the residual connection: h is this layer's input at col
                    h = torch.addmm(h, out, residual, out=into[col]).add_(bias)
            return head(torch.addmm(skip_bias, gated, skip_weight))

        return step
