"""The classifiers that judge samples (evaluation only, never used to train generators).

One per dataset (``mnist-classifier``, ``games-classifier``; see :data:`argen.data.DATASETS`): a
small VGG-style CNN (two 3x3 conv pairs with max-pooling, a 128-unit penultimate layer). A
classifier also judges larger pictures whose height and width are whole multiples of its own:
they are area-averaged down first (``games-classifier`` reads 96 x 128 game frames as 32 x 32,
blocks of 3 x 4 pixels, the same whole screen the 32 x 32 frames were shrunk from).
``features`` returns the penultimate activations for a classifier-feature Fréchet distance
(the FID recipe of Heusel et al. 2017 with this network in place of Inception).
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .configs import Configured
from .data import NUM_CLASSES, check_uint8_images, get_dataset


@dataclass
class ClassifierConfig:
    width: int = 32
    feature_dim: int = 128
    dropout: float = 0.3
    num_classes: int = NUM_CLASSES
    dataset: str = "mnist"  # its pictures' shape comes from the dataset
    mean: float = 0.1307  # pixel statistics the input is normalised with (MNIST's)
    std: float = 0.3081


class Classifier(Configured, nn.Module):
    """The judge of samples: a small VGG-style CNN over a dataset's pictures."""

    model_type = "image-classifier"
    config_class = ClassifierConfig

    def __init__(self, config=None, **overrides):
        super().__init__()
        self.config = c = self.resolve_config(config, overrides)
        self.image_shape = channels, height, width = get_dataset(c.dataset).image_shape
        wide, feature_dim = c.width, c.feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(channels, wide, 3, padding=1), nn.ReLU(), nn.Conv2d(wide, wide, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(wide, 2 * wide, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * wide, 2 * wide, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 14 -> 7
            nn.Flatten(), nn.Linear(2 * wide * (height // 4) * (width // 4), feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(feature_dim, c.num_classes))

    def features(self, images):
        """Penultimate features ``[B, feature_dim]`` of uint8 images ``[B, C, H, W]`` of its dataset."""
        images = shrink_to(check_uint8_images(images), self.image_shape, self.config.dataset)
        return self.body((images.float() / 255 - self.config.mean) / self.config.std)

    def forward(self, images):
        return self.head(self.features(images))


def shrink_to(images, shape, dataset):
    """uint8 ``images`` at ``shape`` (C, H, W): as they are, or area-averaged down by whole factors
    (and rounded back to 8 bits, as the judged dataset's own pictures were)."""
    (c, h, w), (_, channels, height, width) = shape, images.shape
    if (channels, height, width) == (c, h, w):
        return images
    if channels != c or height % h or width % w:
        raise ValueError(f"this classifier judges pictures of shape {shape} ({dataset}) or whole multiples of its "
                         f"height and width, got {tuple(images.shape[1:])}")
    return F.avg_pool2d(images.float(), (height // h, width // w)).round().to(torch.uint8)


@torch.no_grad()
def predict(classifier, images, batch_size=500):
    """(predicted labels ``[N]``, penultimate features ``[N, D]``) of uint8 images."""
    classifier.eval()
    device = next(classifier.parameters()).device
    labels, features = [], []
    for i in range(0, images.shape[0], batch_size):
        f = classifier.features(images[i:i + batch_size].to(device))
        features.append(f.cpu())
        labels.append(classifier.head(f).argmax(-1).cpu())
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
