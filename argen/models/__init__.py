"""Model families, one file each, all following the contract in :mod:`argen.models.base`."""
from .base import PixelModel
from .gated_pixelcnn import GatedPixelCNN
from .lstm import PixelLSTM
from .mlp import PixelMLP
from .pixelcnn import PixelCNN
from .pixelrnn import DiagonalBiLSTM, RowLSTM
from .transformer import PixelGPT, TokenGPT

FAMILIES = (PixelMLP, PixelLSTM, PixelCNN, GatedPixelCNN, RowLSTM, DiagonalBiLSTM, PixelGPT, TokenGPT)
MODEL_TYPES = {cls.model_type: cls for cls in FAMILIES}

__all__ = ["MODEL_TYPES", "DiagonalBiLSTM", "GatedPixelCNN", "PixelCNN", "PixelGPT", "PixelLSTM", "PixelMLP",
           "PixelModel", "RowLSTM", "TokenGPT"]
