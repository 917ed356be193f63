"""PixelCNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks").

A 7x7 mask-A convolution, residual blocks of 3x3 mask-B convolutions (ReLU, 3x3, ReLU, 1x1) and
1x1 mask-B output layers giving K logits per colour channel. The channel-group masks of
:class:`~argen.models.layers.MaskedConv2d` make the colour channels of a pixel autoregressive
(R -> G -> B) for any channel count. Different here: a learned class embedding is added to every
block (class-conditional, as in the conditional PixelCNN).

``fast_sampler`` caches every layer's input (Ramachandran et al. 2017, "Fast Generation for
Convolutional Autoregressive Models"). Under the masks, a layer's output at a pixel needs its input
at that pixel and earlier ones only, so all layers' outputs at a pixel can be computed when the
pixel is reached and never change after it is drawn. Each new value thus costs every layer one
position: its masked kernel over the cached window of rows above and the current row, as one
matrix product. The logits are the whole image's (the same weights in the same sums).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, ModelConfig, register
from .layers import MaskedConv2d, head_at_position, pointwise, scale_levels


@dataclass
class PixelCNNConfig(ModelConfig):
    hidden_channels: int = 64
    num_blocks: int = 8
    kernel_size: int = 3
    input_kernel_size: int = 7


@register
class PixelCNN(GenerativeModel):
    """PixelCNN: masked convolutions, residual blocks."""

    model_type = "pixelcnn"
    config_class = PixelCNNConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        c, h, levels = self.value_shape[0], self.config.hidden_channels, self.levels
        kernel_size, input_kernel_size, num_blocks = (self.config.kernel_size, self.config.input_kernel_size,
                                                      self.config.num_blocks)
        if h % c:
            raise ValueError(f"hidden_channels must be a multiple of the {c} image channels, got {h}")
        self.input = MaskedConv2d(c, h, input_kernel_size, "A", c)
        self.blocks = nn.ModuleList(
            nn.ModuleList([MaskedConv2d(h, h, kernel_size, "B", c), MaskedConv2d(h, h, 1, "B", c)])
            for _ in range(num_blocks))
        if self.num_classes:
            self.class_embedding = nn.Embedding(self.label_count, h * (num_blocks + 1))
        self.output = nn.Sequential(nn.ReLU(), MaskedConv2d(h, h, 1, "B", c), nn.ReLU(),
                                    MaskedConv2d(h, levels * c, 1, "B", c))

    def logits(self, x, y):
        """Logits ``[B, K, C, h, w]`` of validated levels of any spatial size."""
        b, c, height, width = x.shape
        cond = self.class_embedding(y).chunk(len(self.blocks) + 1, -1) if self.num_classes else None
        h = self.input(scale_levels(x, self.levels))
        if cond:
            h = h + cond[0][:, :, None, None]
        for i, (conv, mix) in enumerate(self.blocks):
            update = F.relu(conv(F.relu(h)))
            if cond:
                update = update + cond[i + 1][:, :, None, None]
            h = h + mix(update)
        out = self.output(h)  # (b, c * K, h, w), channel group g = logits of colour g
        return out.reshape(b, c, self.levels, height, width).transpose(1, 2)

    def forward(self, x, y=None):
        x, y = self.check_input(x, y)
        return self.logits(x, y)

    def fast_sampler(self, y, batch):
        c, height, width = self.value_shape
        convs = [self.input] + [conv for conv, _ in self.blocks]
        # each cached input is padded by its kernel's reach above and on both sides; the window of a
        # pixel is the reach's rows above and its own row (masked weights, so later pixels count 0)
        pads = [conv.kernel_size[0] // 2 for conv in convs]
        windows = [(conv.weight * conv.mask)[:, :, :pad + 1].flatten(1).t() for conv, pad in zip(convs, pads)]
        mixes = [pointwise(mix) for _, mix in self.blocks]
        head = head_at_position(self.output)
        biases = [conv.bias for conv in convs]
        if self.num_classes:  # the class embedding joins the input layer's and each block's bias
            conds = self.class_embedding(y).chunk(len(self.blocks) + 1, -1)
            biases[0] = biases[0] + conds[0]
        caches = [torch.zeros(batch, conv.in_channels, pad + height, 2 * pad + width, device=conv.weight.device)
                  for conv, pad in zip(convs, pads)]

        def step(x, t):
            row, col = divmod(t // c, width)
            if t:  # the value drawn last (its pixel complete, or the current pixel's earlier channels)
                prev_row, prev_col = divmod((t - 1) // c, width)
                caches[0][:, :, pads[0] + prev_row, pads[0] + prev_col] = scale_levels(x[:, :, prev_row, prev_col],
                                                                                       self.levels)
            h = None
            for i, (cache, pad, window) in enumerate(zip(caches, pads, windows)):
                if i:  # a block: its convolution reads relu(h), written into its cache at this pixel
                    cache[:, :, pad + row, pad + col] = h.relu()
                out = torch.addmm(biases[i], cache[:, :, row:row + pad + 1, col:col + 2 * pad + 1].flatten(1), window)
                if i == 0:
                    h = out
                else:
                    update = out.relu()
                    if self.num_classes:
                        update = update + conds[i]
                    h = torch.addmm(h, update, mixes[i - 1][0]).add_(mixes[i - 1][1])
            return head(h).reshape(-1, c, self.levels)[:, t % c]

        return step
