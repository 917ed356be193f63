"""The contract every argen model follows.

A pixel model is an ``nn.Module`` over images of integer levels ``[B, C, H, W]`` in ``[0, K)``:

- attributes ``levels`` (K), ``image_shape`` (C, H, W) and ``num_classes`` (0 = unconditional);
- a teacher-forced ``forward(x, y=None)`` returning logits ``[B, K, C, H, W]`` for every pixel at
  once, where the logits of a pixel depend only on the pixels before it in raster order (row by
  row, left to right, channels in order inside a pixel) and on the class;
- optionally ``fast_sampler(y, batch)``: a callable ``step(x, t) -> logits [B, K]`` for raster
  index ``t`` that reuses work from earlier steps. It must give the logits of the naive path;
- ``from_pixels`` / ``to_pixels`` between 8-bit images and the model's values. For a pixel model
  the values are quantized grey levels. For a token model each value is one token standing for a
  ``patch_size`` x ``patch_size`` patch of the picture, and its tokenizer does the conversion.

Sampling, likelihood, training, evaluation and the app are written once against this contract.
Config and weights travel together as ``config.json`` + ``model.safetensors``
(huggingface_hub's ``PyTorchModelHubMixin``); ``model_type`` in the config names the class.
"""
import sys

from huggingface_hub import PyTorchModelHubMixin
from torch import nn

from ..data import check_images, check_labels, quantize, to_pixels


class PixelModel(nn.Module, PyTorchModelHubMixin):
    model_type = None  # registry key, written into config.json
    patch_size = 1  # picture pixels per value, along each side
    value_name = "pixels"  # what one sampled value is, for people

    def __init__(self, levels, image_shape, num_classes):
        super().__init__()
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
            raise ValueError(f"levels must be an integer >= 2, got {levels!r}")
        self.levels = levels
        self.image_shape = tuple(int(s) for s in image_shape)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {image_shape!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes must be an integer >= 0 (0 = unconditional), got {num_classes!r}")
        self.num_classes = num_classes

    @property
    def num_pixels(self):
        """Number of sampled values per image (C * H * W)."""
        c, h, w = self.image_shape
        return c * h * w

    def check_input(self, x, y=None):
        """Validated ``(x long [B, C, H, W], y long [B] or None)``; raises ValueError otherwise."""
        x = check_images(x, self.levels, self.image_shape)
        return x, check_labels(y, self.num_classes, x.shape[0])

    def from_pixels(self, images):
        """uint8 pictures ``[B, C, H * p, W * p]`` -> the model's values ``[B, C, H, W]``."""
        return quantize(images, self.levels)

    def to_pixels(self, values, drawn=None):
        """The model's values ``[B, C, H, W]`` -> uint8 pictures, for display and for judging samples.
        ``drawn`` (bool, like ``values``) marks the values sampled so far; a pixel model needs no
        such mask, since its undrawn pixels are 0 and show as black."""
        return to_pixels(values, self.levels)

    def fast_sampler(self, y, batch):
        """An incremental ``step(x, t) -> logits [B, K]``, or None when the model has none."""
        return None

    @property
    def has_fast_path(self):
        """Whether the model overrides :meth:`fast_sampler` with an incremental path."""
        return type(self).fast_sampler is not PixelModel.fast_sampler

    def save(self, directory):
        """Write ``config.json`` (with ``model_type``) and ``model.safetensors``."""
        save_with_type(self, directory)

    @property
    def summary(self):
        """One line for a model picker: the first line of the class docstring."""
        return (self.__class__.__doc__ or self.__class__.__name__).strip().split("\n")[0]

    @property
    def about(self):
        """What the model is and which paper it follows: its module's docstring."""
        return (sys.modules[self.__class__.__module__].__doc__ or "").strip()

    @property
    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())


def save_with_type(module, directory):
    """``save_pretrained`` with ``model_type`` in config.json and no generated model card."""
    from pathlib import Path

    card = Path(directory) / "README.md"
    existed = card.exists()
    module.save_pretrained(directory, config={"model_type": module.model_type, **module._hub_mixin_config})
    if not existed:
        card.unlink(missing_ok=True)


def raster_logits(logits):
    """``[B, K, C, H, W]`` -> ``[B, H*W*C, K]``: the logits in sampling (raster) order."""
    b, k = logits.shape[:2]
    return logits.permute(0, 3, 4, 2, 1).reshape(b, -1, k)


def raster_values(x):
    """``[B, C, H, W]`` -> ``[B, H*W*C]`` in raster order (channels innermost)."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def from_raster(values, image_shape):
    """Inverse of :func:`raster_values`: ``[B, H*W*C] -> [B, C, H, W]``."""
    c, h, w = image_shape
    return values.reshape(values.shape[0], h, w, c).permute(0, 3, 1, 2)


def image_logits(logits, image_shape):
    """Inverse of :func:`raster_logits`: ``[B, H*W*C, K] -> [B, K, C, H, W]``."""
    c, h, w = image_shape
    return logits.reshape(logits.shape[0], h, w, c, -1).permute(0, 4, 3, 1, 2)
