"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks remove PixelCNN's blind spot: a vertical stack whose (k/2+1) x k convolutions see the
rows above and the current row, fed into the horizontal stack only after a shift down by one row
(so it brings rows strictly above), and a horizontal stack whose 1 x (k/2+1) convolutions see the
pixels to the left (the first layer excludes the pixel itself). Each layer is a gated unit
tanh(W_f * x + V_f h) * sigmoid(W_g * x + V_g h) with class-conditional biases h = embedding(y);
the horizontal stack has residual and skip connections; 1x1 layers on the summed skips give K
logits. Causality comes from shifted (cropped) convolutions, as in PixelCNN++, not masks.

Grey images only (C = 1). ``fast_sampler`` caches what a row needs from the vertical stack (it
depends only on finished rows), computed once per row from the rows within reach, and per pixel
runs the horizontal stack on just the columns of the current row that can reach it: every
convolution is local, so these crops give the logits of the naive path exactly.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .base import PixelModel
from .layers import output_head, scale_levels, shift_down


def gate(x):
    """tanh(first half of the channels) * sigmoid(second half)."""
    a, b = x.chunk(2, 1)
    return torch.tanh(a) * torch.sigmoid(b)


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
        to_h = self.v_to_h(shift_down(pre))
        if y is not None:
            pre = pre + self.cond_v(y)[:, :, None, None]
            to_h = to_h + self.cond_h(y)[:, :, None, None]
        return gate(pre), to_h

    def horizontal_step(self, h, from_v):
        """(next horizontal features, skip output) given what the vertical stack brings to these rows."""
        if self.first:
            pre = self.horizontal(F.pad(h, (self.half, 0, 0, 0))[:, :, :, :-1])  # columns j-half .. j-1
        else:
            pre = self.horizontal(F.pad(h, (self.half, 0, 0, 0)))  # columns j-half .. j
        out = gate(pre + from_v)
        residual = self.h_out(out)
        return (residual if self.first else h + residual), self.skip(out)


class GatedPixelCNN(PixelModel):
    """Gated PixelCNN: vertical + horizontal stacks, gated units, no blind spot."""

    model_type = "gated_pixelcnn"

    def __init__(self, levels=256, image_shape=(1, 28, 28), num_classes=10, hidden_channels=64,
                 num_layers=10, kernel_size=3, input_kernel_size=7, output_channels=256):
        super().__init__(levels, image_shape, num_classes)
        if self.image_shape[0] != 1:
            raise ValueError(f"GatedPixelCNN models grey images (C = 1), got image_shape {image_shape!r}")
        h, n = hidden_channels, self.num_classes
        self.layers = nn.ModuleList(
            [GatedLayer(1, h, input_kernel_size, True, n)]
            + [GatedLayer(h, h, kernel_size, False, n) for _ in range(num_layers - 1)])
        self.output = output_head(h, output_channels, levels)
        # columns to the left that reach a pixel through the horizontal stack, and rows above
        # that reach a row's vertical contributions (one more for the shift down)
        self.reach = input_kernel_size // 2 + (num_layers - 1) * (kernel_size // 2)
        self.vertical_reach = self.reach + 1

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
        cache = {"row": None, "contributions": None}

        def step(x, t):
            row, col = divmod(t, self.image_shape[2])
            if cache["row"] != row:  # the rows above are final now, and so is what they bring
                cache["row"] = row
                top = max(0, row - self.vertical_reach)  # rows above that are out of reach are left out
                cache["contributions"] = [c[:, :, -1:] for c in self.vertical(x[:, :, top:row + 1], y)]
            left = max(0, col - self.reach)
            contributions = [c[..., left:col + 1] for c in cache["contributions"]]
            return self.horizontal(x[:, :, row:row + 1, left:col + 1], contributions)[:, :, 0, 0, -1]

        return step
