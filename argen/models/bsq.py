"""Binary Spherical Quantization (Zhao, Xiong & Krähenbühl 2024, "Image and Video Tokenization with
Binary Spherical Quantization", BSQ-ViT).

A latent vector is projected to L dimensions and L2-normalised onto the unit sphere. Each dimension
is then binarised to +-1/sqrt(L) with a straight-through sign, which gives 2^L codes with no
codebook to learn (lookup-free quantization, on the sphere). Reading the bits as an integer gives
the token index. ``indices_to_codes`` is the public inverse path: index -> bits -> code, and
``decode_indices`` adds the projection back to the latent dimension.

Two optional losses come from the paper. The commitment loss ||u - q||^2 keeps the sphere points
near their codes. The entropy loss makes each point confident about its code (low per-sample
entropy) and makes the batch spread over the codes (high codebook entropy, weighted by
``codebook_weight``, the paper's gamma). Both start from the soft bit probabilities
sigmoid(4 u_d sqrt(L) / tau). A point's code distribution is the product of its bits', so its
per-sample entropy is the sum of bit entropies, exactly. The codebook entropy is that of the
batch's mean code distribution. The paper bounds it by the sum of the mean bits' entropies,
because 2^L codes are too many to list at L = 18. With at most 2^12 codes we compute it exactly.
The bound is blind to bits that are balanced but correlated: a batch split between codes 0 and
2^L - 1 scores as if it used them all.
"""
import math
from collections import namedtuple

import torch
import torch.nn.functional as F
from torch import nn

Quantized = namedtuple("Quantized", "quantized indices aux_loss")


def binary_entropy(p):
    """Entropy in nats of Bernoulli(p), elementwise, in float32 (in bfloat16, 1 - 1e-6 is 1 and the
    entropy of a confident bit would be 0 * log 0)."""
    p = p.float().clamp(1e-6, 1 - 1e-6)
    return -(p * p.log() + (1 - p) * (1 - p).log())


class BSQ(nn.Module):
    """Binary Spherical Quantizer: ``dim``-dimensional latents <-> integer tokens in [0, 2^bits)."""

    def __init__(self, dim, bits=10, entropy_weight=0.1, codebook_weight=1.0, commitment_weight=0.25,
                 temperature=1.0):
        super().__init__()
        if not 1 <= bits <= 24:
            raise ValueError(f"bits must be in 1..24 (2^bits codes), got {bits!r}")
        self.bits, self.temperature = bits, temperature
        self.entropy_weight, self.codebook_weight = entropy_weight, codebook_weight
        self.commitment_weight = commitment_weight
        self.project_in = nn.Linear(dim, bits)
        self.project_out = nn.Linear(bits, dim)
        self.register_buffer("powers", 2 ** torch.arange(bits - 1, -1, -1), persistent=False)  # first bit = MSB

    @property
    def codebook_size(self):
        return 2 ** self.bits

    def indices_to_codes(self, indices):
        """Integer tokens ``[...]`` -> codes ``[..., bits]`` of +-1/sqrt(bits) (on the unit sphere)."""
        if indices.dtype.is_floating_point or (indices < 0).any() or (indices >= self.codebook_size).any():
            raise ValueError(f"indices must be integers in [0, {self.codebook_size})")
        bits = (indices[..., None] // self.powers) % 2
        return (2 * bits.float() - 1) / math.sqrt(self.bits)

    def codes_to_indices(self, codes):
        """Codes (or any points) ``[..., bits]`` -> integer tokens: bit d is 1 where dimension d > 0."""
        return ((codes > 0).long() * self.powers).sum(-1)

    def decode_indices(self, indices):
        """Integer tokens ``[...]`` -> latents ``[..., dim]``: the decoder's input."""
        return self.project_out(self.indices_to_codes(indices))

    def codebook_entropy(self, p):
        """Entropy in nats of the mean code distribution of soft bit probabilities ``p`` ``[n, bits]``:
        exact over the 2^bits codes up to 2^12 of them, else the paper's bound (sum of the mean bits'
        entropies)."""
        if self.bits > 12:
            return binary_entropy(p.mean(0)).sum()
        with torch.autocast(p.device.type, enabled=False):
            p = p.float().clamp(1e-6, 1 - 1e-6)
            bits = self.indices_to_codes(torch.arange(self.codebook_size, device=p.device)).gt(0).float()  # (K, bits)
            log_q = p.log() @ bits.T + (1 - p).log() @ (1 - bits).T  # (n, K): log q(code | point)
            mean = log_q.exp().mean(0)
            return -(mean * mean.clamp_min(1e-30).log()).sum()

    def forward(self, z):
        """``z`` ``[..., dim]`` -> ``Quantized(quantized [..., dim], indices [...], aux_loss)``."""
        u = F.normalize(self.project_in(z), dim=-1)  # on the unit sphere
        q = torch.where(u > 0, 1.0, -1.0) / math.sqrt(self.bits)
        quantized = u + (q - u).detach()  # straight-through sign
        aux_loss = self.commitment_weight * (u - q.detach()).pow(2).sum(-1).mean()
        if self.entropy_weight and self.training:  # a training loss: evaluation skips its (n, 2^bits) table
            p = torch.sigmoid(4 * u * math.sqrt(self.bits) / self.temperature).flatten(0, -2)  # (n, bits)
            per_sample = binary_entropy(p).sum(-1).mean()
            codebook = self.codebook_entropy(p)
            aux_loss = aux_loss + self.entropy_weight * (per_sample - self.codebook_weight * codebook)
        return Quantized(self.project_out(quantized), self.codes_to_indices(q), aux_loss)
