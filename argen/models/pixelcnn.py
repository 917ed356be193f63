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
position: the masked kernel's rows above, for the whole row at once when the row starts, and its
row, one matrix product over a cached window. The logits are the whole image's (the same
weights, summed in another order).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import GenerativeModel, ModelConfig, register
from .layers import MaskedConv2d, head_at_position, pointwise, row_buffer, scale_levels, scale_levels_into


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
        """Each layer's masked convolution at one position in two parts. The part from the rows
        above is final when a row starts: one product per layer gives it for the whole row.
        The part from the current row (the columns up to the pixel, the masks' channel groups at
        the pixel itself) is one product per step, of a slice of a row buffer read in place. The
        channels of an RGB pixel are steps of their own: each recomputes the pixel with the
        channels drawn so far."""
        c, height, width = self.value_shape
        convs = [self.input] + [conv for conv, _ in self.blocks]
        pads = [conv.kernel_size[0] // 2 for conv in convs]  # each kernel's reach above and to the left
        weights = [conv.weight * conv.mask for conv in convs]
        # the kernel's rows above the pixel, as a matrix over a patch's (channel, row, column)
        above = [w[:, :, :pad].flatten(1).t() for w, pad in zip(weights, pads)]
        # the pixel's row: columns j - pad .. j, as rows (column, then channel) of one matrix
        along = [w[:, :, pad, :pad + 1].permute(2, 1, 0).flatten(0, 1) for w, pad in zip(weights, pads)]
        mixes = [pointwise(mix) for _, mix in self.blocks]
        head = head_at_position(self.output)
        biases = [conv.bias for conv in convs]
        if self.num_classes:  # the class embedding joins the input layer's bias and each block's update,
            # whose 1 x 1 mix is linear: the class's part goes into the mix's bias, (B, out)
            conds = self.class_embedding(y).chunk(len(self.blocks) + 1, -1)
            biases[0] = biases[0] + conds[0]
            mixes = [(weight, torch.addmm(bias, cond, weight)) for (weight, bias), cond in zip(mixes, conds[1:])]
        # each layer's bias for a row's product, whose rows are (column, image): a bias per image repeats
        row_biases = [bias.repeat(width, 1) if bias.dim() == 2 and pad else bias for bias, pad in zip(biases, pads)]
        device = self.input.weight.device
        # each layer's input on the rows above, zero-padded by its reach above and on both sides
        grids = [torch.zeros(batch, conv.in_channels, pad + height, 2 * pad + width, device=device)
                 for conv, pad in zip(convs, pads)]
        # each layer's input along the current row: column j's window is columns j - pad .. j
        buffers, windows_at, inputs_at = zip(*(row_buffer(batch, conv.in_channels, pad, pad + 1, width, device)
                                               for conv, pad in zip(convs, pads)))
        state = {"next": 0, "row": None, "above": None}  # the value due; the row; per layer, each column's part from above

        def from_above(rows, weight, bias):
            """The kernel's part from the ``rows`` above (none for a 1 x 1 kernel) plus the bias, per
            column: ``[W, B, out]``. One product of every column's patch (channels, rows, columns)
            with the kernel as a matrix: for an output one row high several times cheaper than
            ``conv2d``."""
            if not rows.shape[2]:
                return bias.expand(width, batch, -1)
            reach = rows.shape[2]  # the kernel's rows above, and its columns on each side
            patches = rows.unfold(3, 2 * reach + 1, 1).permute(3, 0, 1, 2, 4).reshape(width * batch, -1)
            return torch.addmm(bias, patches, weight).view(width, batch, -1)

        def start_row(row):
            if row:  # the row above is final: each layer's input there joins its grid
                for grid, buffer, pad, conv in zip(grids, buffers, pads, convs):
                    grid[:, :, pad + row - 1, pad:pad + width] = (
                        buffer[:, pad * conv.in_channels:].view(batch, width, -1).transpose(1, 2))
            state["above"] = [from_above(grid[:, :, row:row + pad], w, bias).unbind()
                              for grid, w, pad, bias in zip(grids, above, pads, row_biases)]  # per column (B, out)
            for buffer in buffers:
                buffer.zero_()
            state["row"] = row

        @torch.no_grad()  # the row buffers are written in place
        def step(x, t):
            pixel, channel = divmod(t, c)
            row, col = divmod(pixel, width)
            if t != state["next"]:
                raise ValueError(f"the PixelCNN's fast path goes value by value in raster order: asked for value {t} "
                                 f"after value {state['next'] - 1}")
            state["next"] = t + 1
            if t:  # the value drawn last: the input layer's newest input (maybe the row above's last)
                prev_pixel, prev_channel = divmod(t - 1, c)
                prev_row, prev_col = divmod(prev_pixel, width)
                scale_levels_into(inputs_at[0][prev_col][:, prev_channel], x[:, prev_channel, prev_row, prev_col],
                                  self.levels)
            if state["row"] != row:
                start_row(row)
            h = torch.addmm(state["above"][0][col], windows_at[0][col], along[0])  # the input layer
            for window, weight, above_row, into, (mix, mix_bias) in zip(windows_at[1:], along[1:], state["above"][1:],
                                                                         inputs_at[1:], mixes):
                # a block: its convolution reads relu(h), written into its row buffer at this pixel
                torch.clamp_min(h, 0, out=into[col])
                update = torch.addmm(above_row[col], window[col], weight).relu_()
                h = torch.addmm(h, update, mix).add_(mix_bias)
            return head(h).reshape(-1, c, self.levels)[:, channel]

        return step
