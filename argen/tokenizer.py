"""The image tokenizer: patch auto-encoder + Binary Spherical Quantization (the course project).

``BSQTokenizer`` turns a 28 x 28 digit into a 7 x 7 grid of integer tokens (one per 4 x 4 patch,
2^bits possible values) and back. Here the composition lives: encoder -> BSQ -> decoder. The two
concepts have their own files (:mod:`argen.models.patch_ae`, :mod:`argen.models.bsq`).

    tokenizer = load_tokenizer()              # weights/bsq-tokenizer
    tokens = tokenizer.encode(images)         # uint8 [B, 1, 28, 28] -> long [B, 7, 7]
    images = tokenizer.decode(tokens)         # -> float [B, 1, 28, 28] in [0, 1]

``python -m argen.tokenizer [--data-dir DIR] [--out data/tokens.npz]`` caches the token grids of
the MNIST training and test sets (with their labels) for training a prior over tokens.
"""
import argparse
import math
from pathlib import Path

import numpy as np

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from .data import check_images
from .models.base import save_with_type
from .models.bsq import BSQ
from .models.patch_ae import PatchAutoEncoder

NAME = "bsq-tokenizer"


class BSQTokenizer(nn.Module, PyTorchModelHubMixin):
    """Patch auto-encoder with a BSQ bottleneck: images <-> grids of integer tokens."""

    model_type = "bsq_tokenizer"

    def __init__(self, image_shape=(1, 28, 28), patch_size=4, hidden_channels=128, latent_dim=128, num_convs=2,
                 bits=10, entropy_weight=0.0, commitment_weight=0.0):
        super().__init__()
        self.image_shape, self.patch_size = tuple(image_shape), patch_size
        self.autoencoder = PatchAutoEncoder(self.image_shape, patch_size, hidden_channels, latent_dim, num_convs)
        self.quantizer = BSQ(latent_dim, bits, entropy_weight=entropy_weight, commitment_weight=commitment_weight)
        self.grid = self.autoencoder.grid

    @property
    def codebook_size(self):
        return self.quantizer.codebook_size

    @property
    def bits_per_image(self):
        return self.grid[0] * self.grid[1] * self.quantizer.bits

    def forward(self, images):
        """Float images ``[B, C, H, W]`` in [0, 1] -> (reconstructions, tokens ``[B, h, w]``, aux loss)."""
        latents = self.autoencoder.encode(images).permute(0, 2, 3, 1)  # (b, h, w, latent)
        quantized, tokens, aux_loss = self.quantizer(latents)
        return self.autoencoder.decode(quantized.permute(0, 3, 1, 2)), tokens, aux_loss

    @torch.no_grad()
    def encode(self, images):
        """uint8 images ``[B, C, H, W]`` (0..255) -> tokens ``[B, h, w]``."""
        images = check_images(images, 256, self.image_shape)
        return self(images.float() / 255)[1]

    @torch.no_grad()
    def decode(self, tokens):
        """Tokens ``[B, h, w]`` -> float images ``[B, C, H, W]`` in [0, 1]."""
        if tokens.dim() != 3 or tuple(tokens.shape[1:]) != self.grid:
            raise ValueError(f"tokens must have shape [B, {self.grid[0]}, {self.grid[1]}], got {tuple(tokens.shape)}")
        return self.autoencoder.decode(self.quantizer.decode_indices(tokens).permute(0, 3, 1, 2))

    def save(self, directory):
        save_with_type(self, directory)


def psnr(reconstructions, images):
    """Peak signal-to-noise ratio in dB per image, for values in [0, 1]."""
    mse = (reconstructions - images).pow(2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


@torch.no_grad()
def tokenizer_metrics(tokenizer, images, batch_size=500):
    """On uint8 ``images``: mean PSNR, codes used, code perplexity and compression."""
    scores, counts = [], torch.zeros(tokenizer.codebook_size)
    for batch in images.split(batch_size):
        x = batch.float() / 255
        reconstructions, tokens, _ = tokenizer(x)
        scores.append(psnr(reconstructions, x))
        counts += torch.bincount(tokens.flatten(), minlength=tokenizer.codebook_size).float()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    raw_bits = math.prod(tokenizer.image_shape) * 8
    return {"psnr_db": round(torch.cat(scores).mean().item(), 3), "codes_used": int((counts > 0).sum()),
            "codebook_size": tokenizer.codebook_size, "code_perplexity": round(math.exp(entropy), 1),
            "bits_per_image": tokenizer.bits_per_image, "raw_bits_per_image": raw_bits,
            "compression": round(raw_bits / tokenizer.bits_per_image, 2), "num_images": int(images.shape[0])}


def load_tokenizer(name_or_dir=NAME):
    """The shipped tokenizer (eval mode, CPU)."""
    from .hub import model_dir

    return BSQTokenizer.from_pretrained(model_dir(name_or_dir), map_location="cpu", local_files_only=True).eval()


@torch.no_grad()
def tokenize(tokenizer, images, batch_size=1000):
    """Token grids ``[N, h, w]`` of uint8 ``images``, in batches."""
    return torch.cat([tokenizer.encode(batch) for batch in images.split(batch_size)])


def main(argv=None):
    from .data import load_mnist

    parser = argparse.ArgumentParser(prog="python -m argen.tokenizer", description="Cache MNIST as token grids.")
    parser.add_argument("--tokenizer", default=NAME, help="a shipped tokenizer name or folder")
    parser.add_argument("--data-dir", default=None, help="MNIST root (default: $ARGEN_DATA or ./data)")
    parser.add_argument("--out", default="data/tokens.npz")
    args = parser.parse_args(argv)
    tokenizer = load_tokenizer(args.tokenizer)
    arrays = {}
    for split in ("train", "test"):
        images, labels = load_mnist(split, args.data_dir)
        arrays[f"{split}_tokens"] = tokenize(tokenizer, images).numpy().astype(np.int32)
        arrays[f"{split}_labels"] = labels.numpy()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(out)
    print(f"{out}: {', '.join(f'{k} {v.shape}' for k, v in arrays.items())}")


if __name__ == "__main__":
    main()
