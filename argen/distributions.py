"""Output distributions over the K levels of a value, as layers any model can put on its features.

- :class:`DiscretizedLogisticMixture` (PixelCNN++, Salimans et al. 2017): a mixture of logistics
  over the levels scaled to [-1, 1], each level the mass of its bin, the edge bins taking the
  tails; for RGB the channels of a pixel are coupled R -> G -> B. It gives the exact
  log-probabilities of all K levels, so a model that uses it keeps the K-logit contract (the one
  sampler, likelihood and maps work unchanged). PixelCNN++ and the colour LSTM use it.
- The K-way softmax needs no layer of its own: a model's logits are its log-probabilities up to a
  constant (``log_softmax``).
"""
import torch
import torch.nn.functional as F
from torch import nn

SMALL = 1 << 20  # elements (components x levels x positions) below which a mixture's levels are computed at once


def log_bin_mass(values, means, log_scales, levels):
    """log P(value) under each logistic component, for integer ``values`` broadcastable against
    ``means`` and ``log_scales`` (on the [-1, 1] scale). Level k covers centre_k +- 1/(K-1); level 0
    takes everything below, level K-1 everything above. A middle bin's log(sigmoid(a) - sigmoid(b))
    is computed as log sigmoid(a) + log sigmoid(-b) + log(1 - exp(-(a - b))) with the bin's width
    a - b given directly, so nothing cancels at any scale (the reference's mid-bin fallback is not needed)."""
    half_width, inv_scales = 1 / (levels - 1), torch.exp(-log_scales)
    centred = (values * (2 / (levels - 1)) - 1 - means) * inv_scales
    log_below_upper = F.logsigmoid(centred + half_width * inv_scales)  # log P(X < upper edge)
    log_above_lower = F.logsigmoid(-(centred - half_width * inv_scales))  # log P(X > lower edge)
    width = -torch.expm1(-2 * half_width * inv_scales)
    inside = log_below_upper + log_above_lower + torch.log(width.clamp(min=1e-30))
    return torch.where(values == 0, log_below_upper, torch.where(values == levels - 1, log_above_lower, inside))


def logistic_mixture_log_probs(log_weights, means, log_scales, levels):
    """Exact log-probabilities ``[B, K, C, H, W]`` of all K levels under a discretized mixture of
    logistics: ``log_weights`` (normalized over components) ``[B, M, 1 or C, H, W]``, ``means`` and
    ``log_scales`` ``[B, M, C, H, W]``. Whole images one component at a time, so that no tensor is
    M times the size of the result; a few positions (what a sampler asks) all components at once,
    in a few operations instead of a few per component."""
    if means.numel() * levels <= SMALL:
        levels_at = torch.arange(levels, device=means.device).view(1, 1, levels, 1, 1, 1)  # against (B, M, 1, C, H, W)
        log_mass = log_bin_mass(levels_at, means.unsqueeze(2), log_scales.unsqueeze(2), levels)
        return torch.logsumexp(log_weights.unsqueeze(2) + log_mass, 1)
    levels_at = torch.arange(levels, device=means.device).view(1, levels, 1, 1, 1)  # against (B, 1, C, H, W)
    total = None
    for m in range(means.shape[1]):
        term = log_weights[:, m:m + 1] + log_bin_mass(levels_at, means[:, m:m + 1], log_scales[:, m:m + 1], levels)
        total = term if total is None else torch.logaddexp(total, term)
    return total


class DiscretizedLogisticMixture(nn.Module):
    """The output distribution of PixelCNN++, as a layer any model can put on its features: per
    position ``num_params`` numbers (per component a weight, then per channel a mean and a log
    scale and, for RGB, the coupling coefficients (G|R), (B|R), (B|G)) -> exact log-probabilities of
    the K levels of each channel. RGB: one component per pixel, as in the paper; channel i weighs
    the components by how well they explain the pixel's channels < i, and its mean moves with them,
    so a pixel's channels stay autoregressive R -> G -> B. It has no weights of its own."""

    def __init__(self, levels, channels, num_mixtures):
        super().__init__()
        self.levels, self.channels, self.num_mixtures = levels, channels, num_mixtures

    @property
    def num_params(self):
        c = self.channels
        return self.num_mixtures * (1 + 2 * c + c * (c - 1) // 2)

    def forward(self, params, x, at_values=False, channel=None):
        """``params`` ``[B, num_params, h, w]`` and the values ``x`` ``[B, C, h, w]`` there (only the
        channels before each one are read) -> log-probabilities ``[B, K, C, h, w]``, or with
        ``at_values`` those of the values ``x`` alone ``[B, C, h, w]``. With ``channel`` (what a
        sampler asks at one value), the K log-probabilities of that channel alone ``[B, K, 1, h, w]``."""
        m, (b, c, height, width) = self.num_mixtures, x.shape
        params = params.float()
        weights, rest = params[:, :m], params[:, m:].reshape(b, -1, m, height, width).transpose(1, 2)  # (B, M, P, h, w)
        means, log_scales, coupling = rest[:, :, :c], rest[:, :, c:2 * c].clamp(min=-7), torch.tanh(rest[:, :, 2 * c:])
        log_weights = F.log_softmax(weights, 1).unsqueeze(2)  # (B, M, 1, h, w)
        if c > 1:
            means = self.coupled_means(means, coupling, x.float() * (2 / (self.levels - 1)) - 1)
            log_at_values = log_bin_mass(x.unsqueeze(1), means, log_scales, self.levels)  # (B, M, C, h, w)
            log_weights = F.log_softmax(log_weights + log_at_values.cumsum(2) - log_at_values, 1)
        elif at_values:
            log_at_values = log_bin_mass(x.unsqueeze(1), means, log_scales, self.levels)
        if at_values:
            return torch.logsumexp(log_weights + log_at_values, 1)
        if channel is not None:
            at = slice(channel, channel + 1)
            log_weights = log_weights[:, :, at] if c > 1 else log_weights
            means, log_scales = means[:, :, at], log_scales[:, :, at]
        return logistic_mixture_log_probs(log_weights, means, log_scales, self.levels)

    @staticmethod
    def coupled_means(means, coupling, scaled):
        """Each channel's means ``[B, M, C, h, w]`` moved by the pixel's earlier channels (teacher-forced
        ``scaled`` values ``[B, C, h, w]`` on [-1, 1]) with the coefficients ``coupling``
        ``[B, M, C(C-1)/2, h, w]`` of (G|R), (B|R), (B|G), as in the paper."""
        moved, pair = [means[:, :, 0]], 0
        for i in range(1, means.shape[2]):
            mean = means[:, :, i]
            for j in range(i):
                mean = mean + coupling[:, :, pair] * scaled[:, j].unsqueeze(1)
                pair += 1
            moved.append(mean)
        return torch.stack(moved, 2)
