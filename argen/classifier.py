"""The MNIST classifier that judges samples (evaluation only, never used to train generators).

A small VGG-style CNN (two 3x3 conv pairs with max-pooling, a 128-unit penultimate layer).
``features`` returns the penultimate activations for a classifier-feature Fréchet distance
(the FID recipe of Heusel et al. 2017 with this network in place of Inception).
"""
from dataclasses import dataclass

import torch
from torch import nn

from .configs import Configured
from .data import IMAGE_SHAPE, NUM_CLASSES, check_uint8_images

MEAN, STD = 0.1307, 0.3081  # MNIST pixel statistics
NAME = "mnist-classifier"


@dataclass
class MNISTClassifierConfig:
    width: int = 32
    feature_dim: int = 128
    dropout: float = 0.3
    num_classes: int = NUM_CLASSES


class MNISTClassifier(Configured, nn.Module):
    """The judge of samples: a small VGG-style CNN over 28 x 28 grey pictures."""

    model_type = NAME
    config_class = MNISTClassifierConfig

    def __init__(self, config=None, **overrides):
        super().__init__()
        self.config = c = self.resolve_config(config, overrides)
        width, feature_dim = c.width, c.feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Linear(2 * width * (IMAGE_SHAPE[1] // 4) * (IMAGE_SHAPE[2] // 4), feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(feature_dim, c.num_classes))

    def features(self, images):
        """Penultimate features ``[B, feature_dim]`` of uint8 images ``[B, 1, 28, 28]``."""
        x = (check_uint8_images(images).float() / 255 - MEAN) / STD
        return self.body(x)

    def forward(self, images):
        return self.head(self.features(images))


@torch.no_grad()
def predict(classifier, images, batch_size=500):
    """(predicted labels ``[N]``, penultimate features ``[N, D]``) of uint8 images."""
    classifier.eval()
    labels, features = [], []
    for i in range(0, images.shape[0], batch_size):
        f = classifier.features(images[i:i + batch_size])
        features.append(f)
        labels.append(classifier.head(f).argmax(-1))
    return torch.cat(labels), torch.cat(features)


def frechet_distance(a, b):
    """Fréchet distance between Gaussians fitted to feature sets ``a`` ``[N, D]`` and ``b`` ``[M, D]``."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    values, vectors = torch.linalg.eigh(cov_a)
    sqrt_a = vectors @ torch.diag(values.clamp_min(0).sqrt()) @ vectors.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)
