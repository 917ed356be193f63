"""PixelCNN++ (Salimans, Karpathy, Chen & Kingma 2017, "PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications").

What it changes against the PixelCNN and Gated PixelCNN:

- **Discretized mixture of logistics** instead of a K-way softmax. Each value gets M logistic
  components (weight, mean, scale) over the levels scaled to [-1, 1]; the probability of level k
  is the mass of its bin (the edge bins take the tails), so nearby levels share probability by
  construction, which a softmax must learn from data. :func:`~argen.distributions.logistic_mixture_log_probs` gives the
  exact log-probabilities of all K levels, so the model follows the K-logit contract and the one
  sampler, likelihood and maps work unchanged.
- **Whole pixels**: the network sees complete pixels only; for RGB the mean of channel c moves
  linearly with the pixel's earlier channels (learned coefficients), which keeps R -> G -> B
  autoregressive inside a pixel.
- **Down-shifted and down-right-shifted convolutions** (two streams, no blind spot, no masks),
  **gated ResNet blocks** with concatenated ELUs, **down-sampling** by strided convolutions and
  up-sampling by transposed ones (28 -> 14 -> 7 -> 14 -> 28 on MNIST) with **short-cut
  connections** from each down-pass block to its up-pass twin (a U-Net), and dropout.

Different here: class conditioning is a learned bias in every gated block (as in the paper's
conditional variant); ``output="softmax"`` swaps the mixture for a K-way softmax head on the same
network, for the ablation of which output learns faster. Layers follow the reference code
(openai/pixel-cnn nn.py). The fast path runs the u stream once per row on one block of rows
(:class:`RowsAbove`) and the down-right stream one position per map and pixel
(:class:`DownRightStream`): see :meth:`PixelCNNPP.fast_sampler`.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..distributions import DiscretizedLogisticMixture
from .base import GenerativeModel, ModelConfig, register
from .layers import scale_levels, shift_down

OUTPUTS = ("logistic-mixture", "softmax")


def concat_elu(x):
    """ELU of the features and of their negation, concatenated (keeps both signs' information)."""
    return F.elu(torch.cat([x, -x], 1))


class RowsAbove:
    """What the fast path keeps between rows: for each layer of the u stream that mixes rows (the
    shifted convolutions and the down-shift), the last rows of its input above the block of rows being
    drawn. A layer run on the block alone, with these rows prepended instead of its zero padding
    above, gives exactly what it gives inside the whole image (every layer is causal from the top,
    and a block is whole rows of the coarsest scale, so strides stay aligned)."""

    def __init__(self):
        self.above, self.latest = {}, {}

    def extend(self, layer, x, rows):
        """A layer's input ``x`` on the block -> the same with its ``rows`` above prepended (zeros
        above the image: the padding the layer would add)."""
        self.latest[layer] = x, rows
        above = self.above.get(layer)
        if above is None:
            above = x.new_zeros(*x.shape[:2], rows, x.shape[3])
        return torch.cat([above, x], 2)

    def commit(self):
        """The block's values are final (and the last run saw them all): its last rows become the
        rows above the next block."""
        self.above = {layer: x[:, :, x.shape[2] - rows:] for layer, (x, rows) in self.latest.items()}
        self.latest = {}


def pad_above(x, rows, context, layer):
    """``x`` with ``rows`` rows above it: zeros, or with a :class:`RowsAbove` the rows kept there."""
    if not rows:  # a one-row kernel reads nothing above
        return x
    return F.pad(x, (0, 0, rows, 0)) if context is None else context.extend(layer, x, rows)


def shift_down_kept(x, context, layer):
    """:func:`~argen.models.layers.shift_down` that, on a block of rows, takes row -1 from ``context``."""
    return shift_down(x) if context is None else pad_above(x, 1, context, layer)[:, :, :-1]


def right_shift(x):
    """Move a feature map one column right (column j gets column j - 1; column 0 gets zeros)."""
    return F.pad(x, (1, 0))[:, :, :, :-1]


class DownShiftedConv(nn.Conv2d):
    """A (rows, cols) convolution that sees the rows above and the current row, centred on the column:
    padded above and on both sides, never below."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 3), stride=1):
        super().__init__(in_channels, out_channels, kernel_size, stride)

    def forward(self, x, context=None):
        rows, cols = self.kernel_size
        return super().forward(F.pad(pad_above(x, rows - 1, context, self), ((cols - 1) // 2, (cols - 1) // 2)))


class DownRightShiftedConv(nn.Conv2d):
    """A (rows, cols) convolution that sees the rows above and the columns to the left, up to the current one."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 2), stride=1):
        super().__init__(in_channels, out_channels, kernel_size, stride)

    def forward(self, x, context=None):
        rows, cols = self.kernel_size
        return super().forward(F.pad(pad_above(x, rows - 1, context, self), (cols - 1, 0)))


class DownShiftedDeconv(nn.ConvTranspose2d):
    """Doubles the size; output rows 2i and 2i + 1 come from input row i."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 3)):
        super().__init__(in_channels, out_channels, kernel_size, stride=2, output_padding=1)

    def forward(self, x):
        rows, cols = self.kernel_size
        out = super().forward(x)
        return out[:, :, :out.shape[2] - rows + 1, (cols - 1) // 2:out.shape[3] - (cols - 1) // 2]


class DownRightShiftedDeconv(nn.ConvTranspose2d):
    """Doubles the size; output (2i or 2i + 1, 2j or 2j + 1) comes from input (i' <= i, j' <= j)."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 2)):
        super().__init__(in_channels, out_channels, kernel_size, stride=2, output_padding=1)

    def forward(self, x):
        rows, cols = self.kernel_size
        out = super().forward(x)
        return out[:, :, :out.shape[2] - rows + 1, :out.shape[3] - cols + 1]


class GatedResNet(nn.Module):
    """x + a * sigmoid(b), where (a, b) = conv(dropout(concat_elu(conv(concat_elu(x)) + nin(concat_elu(skip)))))
    plus a class bias: the reference's gated_resnet."""

    def __init__(self, channels, conv, skip_channels, num_classes, dropout):
        super().__init__()
        self.conv_in = conv(2 * channels, channels)
        self.skip = nn.Conv2d(2 * skip_channels, channels, 1) if skip_channels else None
        self.dropout = nn.Dropout(dropout)
        self.conv_out = conv(2 * channels, 2 * channels)
        self.cond = nn.Embedding(num_classes, 2 * channels) if num_classes else None

    def forward(self, x, skip=None, y=None, context=None):
        h = self.conv_in(concat_elu(x), context)
        if skip is not None:
            h = h + self.skip(concat_elu(skip))
        h = self.conv_out(self.dropout(concat_elu(h)), context)
        if y is not None:
            h = h + self.cond(y)[:, :, None, None]
        a, b = h.chunk(2, 1)
        return x + a * torch.sigmoid(b)


@dataclass
class PixelCNNPPConfig(ModelConfig):
    hidden_channels: int = 64
    num_resnets: int = 1  # gated ResNet blocks per scale down (one more up); the paper has 5 (a 2-core CPU budget)
    num_scales: int = 3  # 28 x 28, 14 x 14, 7 x 7
    num_mixtures: int = 5
    dropout: float = 0.0
    output: str = "logistic-mixture"  # or "softmax": a K-way softmax head on the same network


@register
class PixelCNNPP(GenerativeModel):
    """PixelCNN++: mixture of logistics, shifted convolutions, U-Net of gated ResNets."""

    model_type = "pixelcnnpp"
    scores_values = True
    config_class = PixelCNNPPConfig

    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        c = self.config
        channels, (data_channels, height, width) = c.hidden_channels, self.value_shape
        if c.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {c.output!r}")
        if c.num_scales < 1 or height % 2 ** (c.num_scales - 1) or width % 2 ** (c.num_scales - 1):
            raise ValueError(f"num_scales {c.num_scales} halves the {height} x {width} value grid "
                             f"{c.num_scales - 1} times: both sides must be divisible by {2 ** (c.num_scales - 1)}")
        n = self.label_count

        def resnets(conv, skip_channels, count):
            return nn.ModuleList(GatedResNet(channels, conv, skip_channels, n, c.dropout) for _ in range(count))

        # the input gets a channel of ones, so that the zero padding tells the image's border apart
        self.u_input = DownShiftedConv(data_channels + 1, channels, (2, 3))
        self.ul_input = nn.ModuleList([DownShiftedConv(data_channels + 1, channels, (1, 3)),
                                       DownRightShiftedConv(data_channels + 1, channels, (2, 1))])
        self.down_u = nn.ModuleList(resnets(DownShiftedConv, 0, c.num_resnets) for _ in range(c.num_scales))
        self.down_ul = nn.ModuleList(resnets(DownRightShiftedConv, channels, c.num_resnets)
                                     for _ in range(c.num_scales))
        self.downsample = nn.ModuleList(
            nn.ModuleList([DownShiftedConv(channels, channels, (2, 3), 2), DownRightShiftedConv(channels, channels, (2, 2), 2)])
            for _ in range(c.num_scales - 1))
        ups = [c.num_resnets] + [c.num_resnets + 1] * (c.num_scales - 1)
        self.up_u = nn.ModuleList(resnets(DownShiftedConv, channels, count) for count in ups)
        self.up_ul = nn.ModuleList(resnets(DownRightShiftedConv, 2 * channels, count) for count in ups)
        self.upsample = nn.ModuleList(
            nn.ModuleList([DownShiftedDeconv(channels, channels), DownRightShiftedDeconv(channels, channels)])
            for _ in range(c.num_scales - 1))
        self.mixture = DiscretizedLogisticMixture(self.levels, data_channels, c.num_mixtures)
        outputs = self.levels * data_channels if c.output == "softmax" else self.mixture.num_params
        self.output = nn.Conv2d(channels, outputs, 1)

    def inputs(self, x):
        """Levels -> the network input: scaled values and a channel of ones (so that the zero
        padding tells the image's border apart)."""
        x = scale_levels(x, self.levels)
        return torch.cat([x, torch.ones_like(x[:, :1])], 1)

    def u_stream(self, inputs, y, context=None):
        """The down-shifted stream, which at each pixel depends on the rows above only: the maps the
        down-right stream reads from it, in reading order (after each gated block of the down pass,
        then of the up pass). With a :class:`RowsAbove` ``context``, ``inputs`` are a block of rows."""
        us, reads = [shift_down_kept(self.u_input(inputs, context), context, "u")], []
        for scale, blocks in enumerate(self.down_u):
            for block in blocks:
                us.append(block(us[-1], None, y, context))
                reads.append(us[-1])
            if scale < len(self.downsample):
                us.append(self.downsample[scale][0](us[-1], context))
        u = us.pop()
        for scale, blocks in enumerate(self.up_u):
            for block in blocks:
                u = block(u, us.pop(), y, context)
                reads.append(u)
            if scale < len(self.upsample):
                u = self.upsample[scale][0](u)  # each output row comes from one input row: nothing above to keep
        return reads

    def ul_stream(self, inputs, reads, y):
        """The down-right-shifted stream's features ``[B, hidden, H, W]`` given the u stream's
        ``reads``: at each pixel they depend on the pixels above it and to its left only."""
        reads = iter(reads)
        uls = [shift_down(self.ul_input[0](inputs)) + right_shift(self.ul_input[1](inputs))]
        for scale, blocks in enumerate(self.down_ul):
            for block in blocks:
                uls.append(block(uls[-1], next(reads), y))
            if scale < len(self.downsample):
                uls.append(self.downsample[scale][1](uls[-1]))
        ul = uls.pop()
        for scale, blocks in enumerate(self.up_ul):
            for block in blocks:
                ul = block(ul, torch.cat([next(reads), uls.pop()], 1), y)
            if scale < len(self.upsample):
                ul = self.upsample[scale][1](ul)
        return F.elu(ul)

    def features(self, x, y):
        inputs = self.inputs(x)
        return self.ul_stream(inputs, self.u_stream(inputs, y), y)

    def forward(self, x, y=None, at_values=False):
        """Logits ``[B, K, C, H, W]`` (the exact log-probabilities), or with ``at_values`` those of the
        values ``x`` alone ``[B, C, H, W]``, without the other K - 1 levels (what training needs)."""
        x, y = self.check_input(x, y)
        return self.distribution(self.features(x, y), x, at_values)

    def distribution(self, features, x, at_values=False, channel=None):
        """Log-probabilities ``[B, K, C, h, w]`` (or of ``x`` alone, ``[B, C, h, w]``) from the
        features at some positions and the values ``x`` there. In float32 also under autocast: in
        bfloat16 a mean would move in steps of about one bin of 256."""
        with torch.autocast(x.device.type, enabled=False):
            if features.shape[2:] == (1, 1):  # one position (the fast path): a matrix product, without a convolution's overhead
                out = F.linear(features.float().flatten(1), self.output.weight.flatten(1), self.output.bias)[..., None, None]
            else:
                out = self.output(features.float())
        if self.config.output == "softmax":
            logits = out.view(x.shape[0], self.levels, *x.shape[1:])
            if channel is not None:
                return logits[:, :, channel:channel + 1]
            return -F.cross_entropy(logits, x, reduction="none") if at_values else logits
        return self.mixture(out, x, at_values, channel)

    def fast_sampler(self, y, batch):
        """Pixel by pixel, with every map of the down-right stream kept whole (the caching of
        Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models").

        - **The u stream** sees only the rows above, so it runs once per row, on one block of rows
          (a whole row of the coarsest scale: 4 rows with 3 scales), with the rows above it kept
          per layer (:class:`RowsAbove`).
        - **The down-right stream** is computed one position at a time
          (:class:`DownRightStream`): each pixel adds one position to every full-size map, and
          one to every map 2^s times smaller when its row and column are multiples of 2^s (the
          first pixel that needs that position, whose inputs are all final by then).
        - The output layer and the mixture then run at that one position. The channels of an RGB
          pixel share its features.

        The steps must come value by value in raster order, as argen's sampler asks them; anything
        else raises ValueError. A model in training mode with dropout gets no fast path (the
        position-wise layers leave dropout out): the sampler then runs the whole network."""
        if self.training and self.config.dropout:
            return None
        c, _, width = self.value_shape
        block = 2 ** (self.config.num_scales - 1)
        context, stream = RowsAbove(), DownRightStream(self, y, batch)
        state = {"top": 0, "row": None, "pixel": -1}

        def step(x, t):
            pixel = t // c
            row, col = divmod(pixel, width)
            if pixel != state["pixel"] + (t % c == 0):  # a pixel's first channel moves on, the others stay
                raise ValueError(f"the PixelCNN++ fast path goes pixel by pixel in raster order: asked for "
                                 f"channel {t % c} of pixel {pixel} after pixel {state['pixel']}")
            if t % c == 0:
                state["pixel"] = pixel
                top = row // block * block
                if top != state["top"]:  # the rows above ``top`` are final: keep what the next block reads of them
                    self.u_stream(self.inputs(x[:, :, state["top"]:top]), y, context)
                    context.commit()
                    state["top"] = top
                if state["row"] != row:  # the rows above are final: so are the u stream's maps up to this row
                    state["row"], state["reads"] = row, self.u_stream(self.inputs(x[:, :, top:top + block]), y, context)
                state["features"] = stream.step(x, row, col, top, state["reads"])[:, :, None, None]
            return self.distribution(state["features"], x[:, :, row:row + 1, col:col + 1], channel=t % c)[:, :, 0, 0, 0]

        return step


class DownRightStream:
    """The down-right (ul) stream of a :class:`PixelCNNPP`, one pixel at a time: the same layers as
    :meth:`PixelCNNPP.ul_stream`, applied to the one position each map gains at this pixel, as
    matrix products on that position's neighbourhood. Maps are kept whole, with a row of zeros
    above and a column of zeros on the left (the shifted convolutions' padding), so position
    (i, j) is stored at (i + 1, j + 1)."""

    def __init__(self, model, y, batch):
        c = model.config
        _, height, width = model.value_shape
        self.model, self.scales = model, c.num_scales
        self.cond = {}

        def new(level, channels=c.hidden_channels, right=0):
            weight = model.output.weight
            return torch.zeros(batch, channels, (height >> level) + 1, (width >> level) + 1 + right,
                               device=weight.device, dtype=weight.dtype)

        # the down pass: per scale, its first map (the input layers' or the down-sampling's) and each block's output
        self.down = [[new(level) for _ in range(len(blocks) + 1)] for level, blocks in enumerate(model.down_ul)]
        # the network input, with a column of zeros on the right too (the (1, 3) input layer reads it)
        self.inputs = new(0, model.value_shape[0] + 1, right=1)
        reads = iter(range(sum(len(b) for b in model.down_ul) + sum(len(b) for b in model.up_ul)))
        self.down_plan = [[(block, maps[k], maps[k + 1], next(reads)) for k, block in enumerate(blocks)]
                          for blocks, maps in zip(model.down_ul, self.down)]
        # the up pass, as ul_stream walks it: from the coarsest scale up, each block popping a map of the down pass
        skips = [m for maps in self.down for m in maps]
        current, self.up_plan, self.up_in, self.up_out = skips.pop(), {}, {}, {}
        for index, blocks in enumerate(model.up_ul):
            level = self.scales - 1 - index
            if index:
                current = self.up_in[level] = new(level)
            self.up_plan[level] = []
            for block in blocks:
                out = new(level)
                self.up_plan[level].append((block, current, skips.pop(), out, next(reads)))
                current = out
            self.up_out[level] = current
        self.hidden = {block: new(level) for level in range(self.scales)
                       for block, *_ in self.down_plan[level] + self.up_plan[level]}
        if y is not None:
            self.cond = {block: block.cond(y) for block in self.hidden}
        # each layer's weight as a matrix over its flattened neighbourhood, made once
        self.matrix = {layer: (layer.weight.flatten(1), layer.bias) for block in self.hidden
                       for layer in (block.conv_in, block.skip, block.conv_out) if layer is not None}
        self.matrix.update({layer: (layer.weight.flatten(1), layer.bias)
                            for layer in [*model.ul_input, *(pair[1] for pair in model.downsample)]})
        # an up-sampling output at (i, j) comes from the input at (i // 2, j // 2) through kernel tap (i % 2, j % 2)
        self.taps = {layer: [[layer.weight[:, :, a, b].T for b in (0, 1)] for a in (0, 1)]
                     for layer in (pair[1] for pair in model.upsample)}

    def linear(self, layer, x):
        return F.linear(x, *self.matrix[layer])

    def gated(self, block, source, target, i, j, skip):
        """One position of a :class:`GatedResNet` (eval mode: no dropout)."""
        h = self.linear(block.conv_in, concat_elu(source[:, :, i:i + 2, j:j + 2]).flatten(1))
        if skip is not None:
            h = h + self.linear(block.skip, concat_elu(skip))
        hidden = self.hidden[block]
        hidden[:, :, i + 1, j + 1] = h
        h = self.linear(block.conv_out, concat_elu(hidden[:, :, i:i + 2, j:j + 2]).flatten(1))
        if block in self.cond:
            h = h + self.cond[block]
        a, b = h.chunk(2, 1)
        target[:, :, i + 1, j + 1] = source[:, :, i + 1, j + 1] + a * torch.sigmoid(b)

    def step(self, x, row, col, top, reads):
        """The stream's features ``[B, hidden]`` at pixel (row, col), given the image ``x`` (final
        before that pixel) and the u stream's ``reads`` on the block of rows from ``top``."""
        model = self.model
        # the input layers at this pixel read the row above (columns col - 1 .. col + 1), and the
        # pixel on the left with the one above it
        self.inputs[:, :, max(row, 1):row + 2, 1:-1] = model.inputs(x[:, :, max(row - 1, 0):row + 1])
        first = self.down[0][0]
        if row:
            first[:, :, row + 1, col + 1] = self.linear(model.ul_input[0], self.inputs[:, :, row, col:col + 3].flatten(1))
        if col:
            first[:, :, row + 1, col + 1] += self.linear(model.ul_input[1], self.inputs[:, :, row:row + 2, col].flatten(1))
        # the scales whose maps gain a position at this pixel: those whose 2^level divides row and column
        levels = [level for level in range(self.scales) if not (row | col) & ((1 << level) - 1)]
        for level in levels:
            i, j = row >> level, col >> level
            if level:
                patch = self.down[level - 1][-1][:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
                self.down[level][0][:, :, i + 1, j + 1] = self.linear(model.downsample[level - 1][1], patch.flatten(1))
            for block, source, target, read in self.down_plan[level]:
                self.gated(block, source, target, i, j, reads[read][:, :, i - (top >> level), j])
        for level in reversed(levels):
            i, j = row >> level, col >> level
            if level < self.scales - 1:
                up = model.upsample[self.scales - 2 - level][1]
                coarse = self.up_out[level + 1][:, :, (i >> 1) + 1, (j >> 1) + 1]
                self.up_in[level][:, :, i + 1, j + 1] = F.linear(coarse, self.taps[up][i & 1][j & 1], up.bias)
            for block, source, skip, target, read in self.up_plan[level]:
                self.gated(block, source, target, i, j,
                           torch.cat([reads[read][:, :, i - (top >> level), j], skip[:, :, i + 1, j + 1]], 1))
        return F.elu(self.up_out[0][:, :, row + 1, col + 1])
