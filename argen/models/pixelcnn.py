"""PixelCNN (van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent Neural Networks").

A 7x7 mask-A convolution, residual blocks of 3x3 mask-B convolutions (ReLU, 3x3, ReLU, 1x1) and
1x1 mask-B output layers giving K logits per colour channel. The channel-group masks of
:class:`~argen.models.layers.MaskedConv2d` make the colour channels of a pixel autoregressive
(R -> G -> B) for any channel count. Different here: a learned class embedding is added to every
block (class-conditional, as in the conditional PixelCNN), and ``fast_sampler`` recomputes only
the window of rows and columns that can reach the pixel being drawn (the receptive field), which
gives the same logits as the whole image because every convolution is local.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .base import PixelModel, raster_logits
from .layers import MaskedConv2d, scale_levels


class PixelCNN(PixelModel):
    """PixelCNN: masked convolutions, residual blocks."""

    model_type = "pixelcnn"

    def __init__(self, levels=256, image_shape=(1, 28, 28), num_classes=10, hidden_channels=64,
                 num_blocks=8, kernel_size=3, input_kernel_size=7):
        super().__init__(levels, image_shape, num_classes)
        c = self.image_shape[0]
        if hidden_channels % c:
            raise ValueError(f"hidden_channels must be a multiple of the {c} image channels, got {hidden_channels}")
        h = hidden_channels
        self.input = MaskedConv2d(c, h, input_kernel_size, "A", c)
        self.blocks = nn.ModuleList(
            nn.ModuleList([MaskedConv2d(h, h, kernel_size, "B", c), MaskedConv2d(h, h, 1, "B", c)])
            for _ in range(num_blocks))
        if self.num_classes:
            self.class_embedding = nn.Embedding(self.num_classes, h * (num_blocks + 1))
        self.output = nn.Sequential(nn.ReLU(), MaskedConv2d(h, h, 1, "B", c), nn.ReLU(),
                                    MaskedConv2d(h, levels * c, 1, "B", c))
        self.reach = input_kernel_size // 2 + num_blocks * (kernel_size // 2)  # receptive radius

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
        return receptive_window_step(self, y)


def receptive_window_step(model, y):
    """``step(x, t)``: the logits of raster index t from the crop of the image that can reach it
    (``model.reach`` rows above, columns either side). Outside influences are out of reach, and
    inside the crop every layer sees what it sees in the whole image, so the logits are exact."""
    c, height, width = model.image_shape
    reach = model.reach

    def step(x, t):
        row, col = divmod(t // c, width)
        top, left, right = max(0, row - reach), max(0, col - reach), min(width, col + reach + 1)
        crop = x[:, :, top:row + 1, left:right]
        logits = raster_logits(model.logits(crop, y))  # (b, rows * cols * c, K)
        index = ((row - top) * (right - left) + col - left) * c + t % c
        return logits[:, index]

    return step
