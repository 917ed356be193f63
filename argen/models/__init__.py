"""Model families, one file each, all following the contract in :mod:`argen.models.base`, and the
modules they are built from or judged by (the tokenizer; the classifier lives in argen.classifier)."""
from .base import FAMILIES, GenerativeModel, ModelConfig, register
from .bsq_tokenizer import BSQTokenizer
from .codecs import Binary, Levels, Pyramid, Tokens, build_codec
from .gated_pixelcnn import GatedPixelCNN
from .lstm import PixelLSTM
from .maskgit import MaskGIT
from .mlp import PixelMLP
from .pixelcnn import PixelCNN
from .pixelcnnpp import PixelCNNPP
from .pixelrnn import DiagonalBiLSTM, MultiScalePixelRNN, RowLSTM
from .transformer import ImageGPT
from .var import VAR

__all__ = ["FAMILIES", "BSQTokenizer", "Binary", "DiagonalBiLSTM", "GatedPixelCNN", "GenerativeModel", "ImageGPT",
           "Levels", "MaskGIT", "ModelConfig", "MultiScalePixelRNN", "PixelCNN", "PixelCNNPP", "PixelLSTM", "PixelMLP", "Pyramid", "RowLSTM", "Tokens", "VAR", "build_codec", "register"]
