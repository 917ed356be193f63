"""The image tokenizer: patch auto-encoder + Binary Spherical Quantization (the course project).

``BSQTokenizer`` turns a picture into a grid of integer tokens (one per p x p patch, 2^bits
possible values; a 28 x 28 digit with 4 x 4 patches gives 7 x 7) and back: encoder -> BSQ ->
decoder. The two concepts have their own files (:mod:`.patch_ae`, :mod:`.bsq`). A leaf module: the
token codec (:class:`argen.models.codecs.Tokens`) composes it into the GPT prior.

    tokenizer = argen.load("bsq-tokenizer")
    tokens = tokenizer.encode(images)         # uint8 [B, 1, 28, 28] -> long [B, 7, 7]
    images = tokenizer.decode(tokens)         # -> float [B, 1, 28, 28] in [0, 1]
"""
import math
from dataclasses import dataclass

import torch
from torch import nn

from ..data import IMAGE_SHAPE, MAX_LEVELS, check_images
from ..configs import Configured
from .bsq import BSQ
from .multiscale_bsq import MultiScaleBSQ
from .patch_ae import PatchAutoEncoder


@dataclass
class BSQTokenizerConfig:
    image_shape: tuple = IMAGE_SHAPE
    dataset: str = "mnist"  # what it was trained on (argen.data.DATASETS); the train command sets the shape from it
    patch_size: int = 4
    hidden_channels: int = 128
    latent_dim: int = 128
    num_convs: int = 2
    bits: int = 10  # 2^bits codes
    entropy_weight: float = 0.0  # BSQ's entropy loss (off for the digits: it did not help there)
    codebook_weight: float = 1.0  # its codebook term's weight relative to the per-sample term (gamma)
    commitment_weight: float = 0.0  # BSQ's commitment loss
    scales: list | None = None  # [(h, w), ...] from (1, 1) to the token grid: multi-scale residual tokens
    # (VAR's pyramid, :mod:`.multiscale_bsq`); None: one token per patch

    def __post_init__(self):
        self.image_shape = tuple(self.image_shape)
        if self.scales is not None:
            self.scales = [list(scale) for scale in self.scales]


class BSQTokenizer(Configured, nn.Module):
    """Patch auto-encoder with a BSQ bottleneck: images <-> grids of integer tokens."""

    model_type = "bsq-tokenizer"
    config_class = BSQTokenizerConfig

    def __init__(self, config=None, **overrides):
        super().__init__()
        self.config = c = self.resolve_config(config, overrides)
        self.image_shape, self.patch_size = c.image_shape, c.patch_size
        self.autoencoder = PatchAutoEncoder(c.image_shape, c.patch_size, c.hidden_channels, c.latent_dim, c.num_convs)
        self.grid = self.autoencoder.grid
        options = {"entropy_weight": c.entropy_weight, "codebook_weight": c.codebook_weight,
                   "commitment_weight": c.commitment_weight}
        self.quantizer = (BSQ(c.latent_dim, c.bits, **options) if c.scales is None
                          else MultiScaleBSQ(c.latent_dim, self.grid, c.scales, c.bits, **options))
        self.token_shape = self.grid if c.scales is None else (self.quantizer.num_tokens,)  # one image's tokens

    @property
    def codebook_size(self):
        return self.quantizer.codebook_size

    @property
    def bits_per_image(self):
        return math.prod(self.token_shape) * self.config.bits

    def forward(self, images):
        """Float images ``[B, C, H, W]`` in [0, 1] -> (reconstructions, tokens ``[B, *token_shape]``, aux loss)."""
        latents = self.autoencoder.encode(images).permute(0, 2, 3, 1)  # (b, h, w, latent)
        quantized, tokens, aux_loss = self.quantizer(latents)
        return self.autoencoder.decode(quantized.permute(0, 3, 1, 2)), tokens, aux_loss

    @torch.no_grad()
    def encode(self, images, batch_size=200):
        """uint8 images ``[B, C, H, W]`` (0..255) -> tokens ``[B, *token_shape]``, in batches."""
        images = check_images(images, MAX_LEVELS, self.image_shape)
        return torch.cat([self.quantizer(self.autoencoder.encode(batch.float() / 255).permute(0, 2, 3, 1)).indices
                          for batch in images.split(batch_size)])  # the encoder alone: no reconstruction

    @torch.no_grad()
    def decode(self, tokens, drawn=None):
        """Tokens ``[B, *token_shape]`` -> float images ``[B, C, H, W]`` in [0, 1]. A pyramid decodes
        from its ``drawn`` tokens alone where given (bool like ``tokens``): the scales drawn so far."""
        if tuple(tokens.shape[1:]) != self.token_shape:
            raise ValueError(f"tokens must have shape [B, {', '.join(map(str, self.token_shape))}], "
                             f"got {tuple(tokens.shape)}")
        latents = self.quantizer.decode_indices(tokens) if drawn is None else self.quantizer.decode_indices(tokens, drawn)
        return self.autoencoder.decode(latents.permute(0, 3, 1, 2))


def psnr(reconstructions, images):
    """Peak signal-to-noise ratio in dB per image, for values in [0, 1]."""
    mse = (reconstructions - images).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


@torch.no_grad()
def tokenizer_metrics(tokenizer, images, batch_size=500):
    """On uint8 ``images``: mean PSNR, codes used, code perplexity and compression."""
    scores, counts = [], torch.zeros(tokenizer.codebook_size)
    device = next(tokenizer.parameters()).device
    for batch in images.split(batch_size):
        x = batch.to(device).float() / 255
        reconstructions, tokens, _ = tokenizer(x)
        scores.append(psnr(reconstructions, x).cpu())
        counts += torch.bincount(tokens.flatten().cpu(), minlength=tokenizer.codebook_size).float()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    raw_bits = math.prod(tokenizer.image_shape) * 8
    return {"psnr_db": round(torch.cat(scores).mean().item(), 3), "codes_used": int((counts > 0).sum()),
            "codebook_size": tokenizer.codebook_size, "code_perplexity": round(math.exp(entropy), 1),
            "bits_per_image": tokenizer.bits_per_image, "raw_bits_per_image": raw_bits,
            "compression": round(raw_bits / tokenizer.bits_per_image, 2), "num_images": int(images.shape[0])}
