"""Model families, one file each, all following the contract in :mod:`argen.models.base`."""
from .base import PixelModel
from .gated_pixelcnn import GatedPixelCNN
from .lstm import PixelLSTM
from .mlp import PixelMLP
from .pixelcnn import PixelCNN
from .pixelrnn import DiagonalBiLSTM, RowLSTM

MODEL_TYPES = {cls.model_type: cls for cls in (PixelMLP, PixelLSTM, PixelCNN, GatedPixelCNN, RowLSTM, DiagonalBiLSTM)}

__all__ = ["MODEL_TYPES", "DiagonalBiLSTM", "GatedPixelCNN", "PixelCNN", "PixelLSTM", "PixelMLP", "PixelModel",
           "RowLSTM"]
