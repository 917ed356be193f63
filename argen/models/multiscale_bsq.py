"""Multi-scale residual quantization (Tian et al. 2024, "Visual Autoregressive Modeling", VAR's
tokenizer), on Binary Spherical Quantization codes.

The encoder's latent map ``f`` (h x w positions of D numbers) is quantized coarse to fine. At scale
k (h_k x w_k positions, the last one the full h x w), what the coarser scales have not explained
yet, the residual ``f - f_hat``, is averaged down to h_k x w_k and quantized by BSQ (one token per
position); the token's latent is upsampled (bicubic) back to h x w and added to ``f_hat``. The
decoder reads ``f_hat``, the sum over the scales, so a picture can be decoded from the coarse
scales alone: a blurry first draft that each finer scale sharpens. The tokens come out flattened,
scale after scale and in raster order within a scale: the *pyramid*.

The transformer that predicts the pyramid (:mod:`.var`) reads, for scale k, ``f_hat`` of the
scales before it averaged down to h_k x w_k (:meth:`MultiScaleBSQ.scale_input`): what has been
drawn so far, at the size of what comes next.

Different from VAR: the codes are BSQ's (lookup-free: 2^bits codes with no codebook to learn); each
scale has its own projections in and out of the code space (a BSQ code has unit norm, and a finer
residual is smaller); and there is no convolution after the upsampling (VAR's phi).
"""
from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn

from .bsq import BSQ, Quantized

Scale = namedtuple("Scale", "height width start stop")  # tokens [start, stop) of the pyramid


def check_scales(scales, grid):
    """The scales as ``(height, width)`` tuples: at least two, growing, from 1 x 1 to the ``grid``."""
    sizes = [tuple(int(s) for s in scale) for scale in scales]
    growing = all(a[0] <= b[0] and a[1] <= b[1] and a != b for a, b in zip(sizes, sizes[1:]))
    if len(sizes) < 2 or sizes[0] != (1, 1) or sizes[-1] != tuple(grid) or not growing:
        raise ValueError(f"scales must grow from (1, 1) to the token grid {tuple(grid)}, each no smaller than the "
                         f"one before, got {scales!r}")
    return sizes


class MultiScaleBSQ(nn.Module):
    """Residual BSQ over ``scales`` (``[(h_k, w_k), ...]``, the last the latent ``grid``): latents
    ``[B, h, w, dim]`` <-> a pyramid of tokens ``[B, N]`` in [0, 2^bits)."""

    def __init__(self, dim, grid, scales, bits=10, **bsq_options):
        super().__init__()
        self.grid = tuple(grid)
        sizes, start, self.scales = check_scales(scales, grid), 0, []
        for h, w in sizes:
            self.scales.append(Scale(h, w, start, start + h * w))
            start += h * w
        self.num_tokens = start
        self.bits = bits
        self.quantizers = nn.ModuleList(BSQ(dim, bits, **bsq_options) for _ in sizes)

    @property
    def codebook_size(self):
        return 2 ** self.bits

    def upsample(self, latent):
        """``[B, D, h_k, w_k]`` -> ``[B, D, h, w]`` (bicubic)."""
        if tuple(latent.shape[-2:]) == self.grid:
            return latent
        return F.interpolate(latent, size=self.grid, mode="bicubic", align_corners=False)

    def forward(self, z):
        """``z`` ``[B, h, w, dim]`` -> ``Quantized(f_hat [B, h, w, dim], tokens [B, N], aux_loss)``."""
        rest = z.permute(0, 3, 1, 2)  # (b, d, h, w): what is left to explain
        f_hat, tokens, aux_loss = torch.zeros_like(rest), [], 0.0
        for scale, quantizer in zip(self.scales, self.quantizers):
            r = F.interpolate(rest, size=scale[:2], mode="area")  # (b, d, h_k, w_k)
            quantized, indices, aux = quantizer(r.permute(0, 2, 3, 1))
            latent = self.upsample(quantized.permute(0, 3, 1, 2))
            f_hat, rest = f_hat + latent, rest - latent
            tokens.append(indices.flatten(1))
            aux_loss = aux_loss + aux
        return Quantized(f_hat.permute(0, 2, 3, 1), torch.cat(tokens, 1), aux_loss / len(self.scales))

    def check_tokens(self, tokens):
        if tokens.dim() != 2 or tokens.shape[1] != self.num_tokens:
            raise ValueError(f"a pyramid of tokens has shape [B, {self.num_tokens}], got {tuple(tokens.shape)}")
        return tokens

    def scale_latent(self, tokens, k, drawn=None):
        """Scale ``k``'s contribution to ``f_hat`` ``[B, D, h, w]`` from its tokens (``tokens`` ``[B, N]``,
        the whole pyramid); only its ``drawn`` ones (bool ``[B, N]``) where given."""
        scale, quantizer = self.scales[k], self.quantizers[k]
        latent = quantizer.decode_indices(tokens[:, scale.start:scale.stop])  # (b, n_k, d)
        if drawn is not None:
            latent = latent * drawn[:, scale.start:scale.stop, None]
        return self.upsample(latent.transpose(1, 2).reshape(len(tokens), -1, scale.height, scale.width))

    def scale_input(self, f_hat, k):
        """``f_hat`` ``[B, D, h, w]`` averaged down to scale ``k``: ``[B, n_k, D]``, in raster order."""
        scale = self.scales[k]
        return F.interpolate(f_hat, size=scale[:2], mode="area").flatten(2).transpose(1, 2)

    def scale_inputs(self, tokens):
        """What a next-scale predictor reads before each scale but the first: ``[B, N - 1, D]``, scale k's
        ``f_hat`` of scales < k at scale k's size (VAR's teacher-forcing input)."""
        tokens = self.check_tokens(tokens)
        f_hat, inputs = 0.0, []
        for k in range(1, len(self.scales)):
            f_hat = f_hat + self.scale_latent(tokens, k - 1)
            inputs.append(self.scale_input(f_hat, k))
        return torch.cat(inputs, 1)

    def decode_indices(self, tokens, drawn=None):
        """A pyramid ``[B, N]`` -> ``f_hat`` ``[B, h, w, D]``: the sum over its scales (of the ``drawn``
        tokens where given: bool ``[B, N]``)."""
        tokens = self.check_tokens(tokens)
        f_hat = sum(self.scale_latent(tokens, k, drawn) for k in range(len(self.scales)))
        return f_hat.permute(0, 2, 3, 1)

    def token_scale(self):
        """The scale of every token of the pyramid: long ``[N]``."""
        return torch.cat([torch.full((s.stop - s.start,), k) for k, s in enumerate(self.scales)])

    def extra_repr(self):
        return f"scales={[s[:2] for s in self.scales]}, bits={self.bits}, tokens={self.num_tokens}"

