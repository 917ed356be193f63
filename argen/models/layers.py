"""Layers shared by the pixel models (and their fast paths)."""
import torch
import torch.nn.functional as F
from torch import nn


def channel_groups(num_channels, data_channels):
    """The data channel (colour) each of ``num_channels`` feature channels belongs to: features are
    split into ``data_channels`` consecutive equal groups (R features, then G, then B)."""
    return torch.arange(num_channels) * data_channels // num_channels


class MaskedConv2d(nn.Conv2d):
    """A convolution that sees only pixels before the centre in raster order (PixelCNN's masks).

    At the centre pixel, feature group g (see :func:`channel_groups`) sees input groups < g with
    mask ``"A"`` (the first layer: a pixel's own value is hidden) and groups <= g with mask ``"B"``,
    which makes colour channels autoregressive inside a pixel (R -> G -> B) for any channel count.
    """

    def __init__(self, in_channels, out_channels, kernel_size, mask_type, data_channels=1):
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        centre = kernel_size // 2
        mask = torch.ones_like(self.weight)  # (out, in, k, k)
        mask[:, :, centre, centre:] = 0
        mask[:, :, centre + 1:] = 0
        out_group = channel_groups(out_channels, data_channels)[:, None]
        in_group = channel_groups(in_channels, data_channels)[None, :]
        visible = in_group < out_group if mask_type == "A" else in_group <= out_group
        mask[:, :, centre, centre] = visible.float()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


def scale_levels(x, levels):
    """Integer levels -> floats in [-1, 1] (of the default dtype), the network input."""
    return x.to(torch.get_default_dtype()) * (2 / (levels - 1)) - 1


def scale_levels_into(out, x, levels):
    """:func:`scale_levels` of ``x`` written into ``out`` (a fast path's buffer), no new tensor."""
    return out.copy_(x).mul_(2 / (levels - 1)).sub_(1)


def lstm_update(gates, c):
    """``(h, c)`` of an LSTM cell from its pre-activations ``[B, 4h]`` in ``nn.LSTM``'s gate order
    (input, forget, candidate, output) and the previous ``c``: the fast paths' cell equations."""
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def shift_down(x):
    """Move a feature map one row down (row i gets row i - 1; row 0 gets zeros)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def output_head(in_channels, hidden_channels, levels):
    """ReLU, 1x1 convolution, ReLU, 1x1 convolution to K logits per position."""
    return nn.Sequential(nn.ReLU(), nn.Conv2d(in_channels, hidden_channels, 1), nn.ReLU(),
                         nn.Conv2d(hidden_channels, levels, 1))


def pointwise(conv):
    """A 1x1 convolution (masked or not) as ``(weight [in, out], bias)``, for ``addmm`` at one position."""
    weight = conv.weight * conv.mask if isinstance(conv, MaskedConv2d) else conv.weight
    return weight[:, :, 0, 0].t(), conv.bias


PACKED_MIN_SIZE = 2 ** 17  # smaller weights: F.linear is faster (oneDNN's call costs about 20 us)


def step_linear(weight, bias=None, rows=1):
    """``x -> F.linear(x, weight, bias)`` for a fast path's steps, each on ``rows`` rows ``[rows, in]``
    (the batch, or the batch times the guided runs). For 2 rows or more, a float32 weight of at
    least ``PACKED_MIN_SIZE`` on the CPU goes through oneDNN's linear with the weight packed once
    (:func:`packed_linear`): MKL's product of 2 rows costs about twice its product of 1, oneDNN's
    about the same (``python -m argen.benchmark --linear``). For 1 row oneDNN wins little on 2
    threads and loses on 1, so 1 row stays with F.linear. Results differ from F.linear by rounding
    only; without oneDNN, or with a gradient to carry, it is F.linear."""
    weight, bias = weight.detach(), None if bias is None else bias.detach()
    plain = lambda x: F.linear(x, weight, bias)  # noqa: E731
    if (rows < 2 or weight.device.type != "cpu" or weight.dtype != torch.float32
            or weight.numel() < PACKED_MIN_SIZE or not torch.backends.mkldnn.is_available()):
        return plain
    packed = packed_linear(weight, bias, rows)
    if packed is None:
        return plain
    return lambda x: plain(x) if x.requires_grad else packed(x)


def packed_linear(weight, bias, rows):
    """oneDNN's ``x -> x weight^T + bias`` (``torch.ops.mkldnn._linear_pointwise``, no gradient)
    with ``weight`` packed once for ``rows`` rows, or None where this build of torch cannot (tried
    once here on zeros)."""
    def product(x):
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")

    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, rows)
        product(weight.new_zeros(rows, weight.shape[1]))
    except (AttributeError, RuntimeError):
        return None
    return product


def row_buffer(batch, channels, pad, window, width, device=None):
    """A fast path's cache of one layer's input along the current row, zero-padded on the left by
    ``pad`` columns, flat as ``(B, columns x channels)`` -> (the buffer, each column j's window of
    ``window`` columns starting at buffer column j, each column j's own input at buffer column
    pad + j). The views are made once and read in place by ``addmm``: a step only multiplies and
    writes."""
    buffer = torch.zeros(batch, (pad + width) * channels, device=device)
    windows = [buffer[:, j * channels:(j + window) * channels] for j in range(width)]
    inputs = [buffer[:, (pad + j) * channels:(pad + j + 1) * channels] for j in range(width)]
    return buffer, windows, inputs


def head_at_position(head):
    """An output head (ReLUs and 1x1 convolutions) as a function of one position's features
    ``[B, C] -> [B, K]``: the fast paths' last step."""
    layers = [pointwise(conv) for conv in head if isinstance(conv, nn.Conv2d)]

    def apply(h):
        for weight, bias in layers:
            h = torch.addmm(bias, h.relu(), weight)
        return h

    return apply

