"""Model families, one file each, all following the contract in :mod:`argen.models.base`."""
from .base import PixelModel
from .mlp import PixelMLP

MODEL_TYPES = {cls.model_type: cls for cls in (PixelMLP,)}

__all__ = ["MODEL_TYPES", "PixelModel", "PixelMLP"]
