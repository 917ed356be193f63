"""Patch auto-encoder: the encoder and decoder of the image tokenizer (from the course project).

The encoder splits the image into p x p patches (p = 4 gives a 7 x 7 grid for 28 x 28) and embeds
each patch linearly (a p x p convolution with stride p). It then lets neighbouring patches
interact through 3 x 3 convolutions with GELU and projects to the latent dimension (128). The
decoder mirrors it and ends with a p x p transposed convolution back to pixels in [0, 1]. With
:class:`~argen.models.bsq.BSQ` between the two, each patch becomes one integer token.
"""
from torch import nn


def mixing(channels, num_convs):
    """``num_convs`` residual-free GELU + 3x3 convolutions: neighbouring patches interact."""
    return nn.Sequential(*(module for _ in range(num_convs)
                           for module in (nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1))))


class PatchAutoEncoder(nn.Module):
    def __init__(self, image_shape=(1, 28, 28), patch_size=4, hidden_channels=128, latent_dim=128, num_convs=2):
        super().__init__()
        c, height, width = image_shape
        if height % patch_size or width % patch_size:
            raise ValueError(f"patch_size {patch_size} must divide the image size {height}x{width}")
        self.grid = (height // patch_size, width // patch_size)
        self.encoder = nn.Sequential(nn.Conv2d(c, hidden_channels, patch_size, stride=patch_size),
                                     mixing(hidden_channels, num_convs), nn.GELU(),
                                     nn.Conv2d(hidden_channels, latent_dim, 1))
        self.decoder = nn.Sequential(nn.Conv2d(latent_dim, hidden_channels, 1), mixing(hidden_channels, num_convs),
                                     nn.GELU(), nn.ConvTranspose2d(hidden_channels, c, patch_size, stride=patch_size),
                                     nn.Sigmoid())

    def encode(self, images):
        """Images ``[B, C, H, W]`` in [0, 1] -> latents ``[B, latent_dim, H/p, W/p]``."""
        return self.encoder(images)

    def decode(self, latents):
        """Latents ``[B, latent_dim, H/p, W/p]`` -> images ``[B, C, H, W]`` in [0, 1]."""
        return self.decoder(latents)
