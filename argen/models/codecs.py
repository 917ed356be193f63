"""Codecs: between 8-bit pictures and a model's values, one small object per kind of value.

A model never sees pictures. Its codec turns uint8 pictures ``[B, C, H, W]`` into the model's
values, an integer grid ``[B, c, h, w]`` of levels in ``[0, K)``, and back, and it says what a
value is:

- :class:`Levels`: each 8-bit channel quantized into K equal bins; grey for C = 1, RGB for C = 3
  (a value is one colour channel; channels are innermost in raster order: R, G, B of a pixel);
- :class:`Binary`: black and white, by a fixed threshold or by the literature's dynamic Bernoulli
  draw (p = intensity / 255). Training takes a fresh draw per batch; scoring takes one fixed-seed
  draw, so the app scores a picture the way the recorded metrics do;
- :class:`Tokens`: a frozen BSQ tokenizer (patch auto-encoder + Binary Spherical Quantization),
  one token per p x p patch;
- :class:`Pyramid`: a frozen multi-scale BSQ tokenizer (VAR's): a pyramid of token maps from 1 x 1
  to the patch grid, flattened scale after scale into one row of values ``[B, 1, 1, N]``.

Maps of per-value figures (probability, entropy, surprise) are shown on the codec's *grid*, the
cells of the picture (``grid_shape``; a pixel, a patch): one value per cell for every codec but the
pyramid, whose values :meth:`Codec.to_grid` lays over the cells.

Each codec is composed into its model (``model.codec``) and its ``spec``, a JSON dict naming its
``kind``, is saved in the model's config.json; :func:`build_codec` rebuilds it. Nothing outside
this file asks how many pixels a value covers or how values become pictures.
"""
import dataclasses
import math

import torch
from torch import nn

from ..data import (IMAGE_SHAPE, MAX_LEVELS, binarize, binarized_test_set, check_images, check_levels,
                    check_uint8_images, dequantize, dynamic_binarize, quantize)
from .bsq_tokenizer import BSQTokenizer, BSQTokenizerConfig, tokenizer_metrics


class Codec(nn.Module):
    """What every codec says and does; subclasses set the shapes and the conversions."""

    kind = None  # registry key, saved in the spec
    unit = "pixel"  # what one value is, for people

    def __init__(self, levels, picture_shape, value_shape, patch_size=1):
        super().__init__()
        self.levels = levels
        self.picture_shape = tuple(int(s) for s in picture_shape)  # (C, H, W) of the 8-bit pictures
        self.value_shape = tuple(int(s) for s in value_shape)  # (c, h, w) of the model's values
        self.patch_size = patch_size  # picture pixels along each side of one value position

    @property
    def num_values(self):
        return math.prod(self.value_shape)

    @property
    def pixels_per_value(self):
        """Picture pixels one value stands for: a patch for a token, a third of a pixel for RGB."""
        return math.prod(self.picture_shape[1:]) / self.num_values

    @property
    def units(self):
        return self.unit + "s"

    @property
    def spec(self):
        """The JSON form saved in config.json."""
        raise NotImplementedError

    def extra_repr(self):
        return str(self.spec)

    def check_values(self, values):
        """Validated values: integers in [0, K) of shape [B, *value_shape] (as ``long``)."""
        return check_images(values, self.levels, self.value_shape)

    def check_pictures(self, pictures):
        pictures = check_uint8_images(pictures)
        if tuple(pictures.shape[1:]) != self.picture_shape:
            raise ValueError(f"pictures must have shape [B, {', '.join(map(str, self.picture_shape))}], "
                             f"got {tuple(pictures.shape)}")
        return pictures

    def encode(self, pictures):
        """uint8 pictures -> values, the same every time (scoring, evaluation, prompts)."""
        raise NotImplementedError

    def encode_for_training(self, pictures, generator=None):
        """uint8 pictures -> values for a training batch (where a codec draws, a fresh draw)."""
        return self.encode(pictures)

    def decode(self, values, drawn=None):
        """Values -> uint8 pictures. ``drawn`` (bool, like ``values``) marks the values sampled so far;
        the pixels of the others are black."""
        raise NotImplementedError

    @property
    def grid_shape(self):
        """(c, h, w) of the cells a per-value map is shown on: the value grid itself here."""
        return self.value_shape

    @property
    def cell(self):
        """Picture pixels along each side of one cell of the grid (1 for a pixel, the patch size for a token)."""
        return self.picture_shape[1] // self.grid_shape[1]

    def to_grid(self, per_value, reduce="finest"):
        """Per-value figures ``[B, *value_shape]`` on the grid ``[B, *grid_shape]``. One value per cell
        here; a codec whose values overlap cells says how (``reduce``: ``finest``, the finest value
        drawn there, NaN = not drawn; ``share``, each value spread evenly over the cells it covers,
        so that the map sums to the values' sum; ``any``, whether any value there is set)."""
        return per_value

    def grid_position(self, position):
        """The value shown at cell ``position`` (channel, row, col) of the grid, as a value position."""
        return tuple(position)

    def kept_values(self, rows):
        """How many leading raster values lie wholly inside the top ``rows`` picture rows: what a
        completion that keeps them keeps."""
        picture_rows = self.picture_shape[1]
        if isinstance(rows, bool) or not isinstance(rows, int) or not 0 <= rows <= picture_rows:
            raise ValueError(f"rows to keep must be an integer in 0..{picture_rows}, got {rows!r}")
        c, h, w = self.value_shape
        return rows * h // picture_rows * w * c

    def kept_rows(self, rows):
        """The picture rows such a completion keeps (fewer than ``rows`` where a value covers several rows)."""
        c, h, w = self.value_shape
        return self.kept_values(rows) // (w * c) * self.picture_shape[1] // h

    def kept_words(self, rows):
        """What such a completion keeps, in words, for a person."""
        kept = self.kept_rows(rows)
        return f"the top {kept} of {rows} rows asked" + (
            f" (a {self.unit} covers {self.cell} rows)" if kept != rows else "")

    def bits_8bit(self, bits_per_value):
        """The 8-bit-equivalent bits/dim of a bits/value figure, where one exists (else None)."""
        return None

    def report(self, pictures):
        """The codec's own figures on uint8 ``pictures`` for metrics.json (a learned codec's fidelity)."""
        return {}


def blank_undrawn(pictures, drawn, patch_size):
    """Set the pixels of values not drawn yet to 0 (black). ``drawn`` is on the value grid."""
    if drawn is None:
        return pictures
    mask = drawn.to(pictures.device)
    if patch_size > 1:
        mask = mask.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)
    return pictures * mask


class Levels(Codec):
    """Each 8-bit channel quantized into K equal-width bins (grey: C = 1; RGB: C = 3)."""

    kind = "levels"

    def __init__(self, levels=MAX_LEVELS, image_shape=IMAGE_SHAPE):
        check_levels(levels)
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {image_shape!r}")
        super().__init__(levels, image_shape, image_shape)
        self.unit = "pixel" if self.picture_shape[0] == 1 else "colour value"

    @property
    def spec(self):
        return {"kind": self.kind, "levels": self.levels, "image_shape": list(self.picture_shape)}

    def encode(self, pictures):
        return quantize(self.check_pictures(pictures), self.levels)

    def decode(self, values, drawn=None):
        pictures = (values.long() * 255).to(torch.uint8) if self.levels == 2 else dequantize(values, self.levels)
        return blank_undrawn(pictures, drawn, 1)

    def bits_8bit(self, bits_per_value):
        """Each of the K bins spread uniformly over its 256/K grey values: + log2(256 / K)."""
        return bits_per_value + math.log2(MAX_LEVELS / self.levels)


BINARIZATIONS = ("threshold", "dynamic")


class Binary(Levels):
    """Black and white: 1 where the pixel is >= 128 (``threshold``), or a Bernoulli draw with
    p = intensity / 255 (``dynamic``; Salakhutdinov & Murray 2008)."""

    kind = "binary"

    def __init__(self, binarization="dynamic", image_shape=IMAGE_SHAPE):
        if binarization not in BINARIZATIONS:
            raise ValueError(f"binarization must be one of {BINARIZATIONS}, got {binarization!r}")
        super().__init__(2, image_shape)
        self.binarization = binarization

    @property
    def spec(self):
        return {"kind": self.kind, "binarization": self.binarization, "image_shape": list(self.picture_shape)}

    def encode(self, pictures):
        """The fixed-seed draw that the binarized test set is scored on (or the threshold)."""
        pictures = self.check_pictures(pictures)
        return binarized_test_set(pictures) if self.binarization == "dynamic" else binarize(pictures)

    def encode_for_training(self, pictures, generator=None):
        if self.binarization == "dynamic":
            return dynamic_binarize(self.check_pictures(pictures), generator)
        return self.encode(pictures)

    def bits_8bit(self, bits_per_value):
        return None  # binarized pictures are another dataset


class Tokens(Codec):
    """A frozen BSQ tokenizer: one token (2^bits values) per p x p patch of the picture."""

    kind = "bsq-tokens"
    unit = "token"

    def __init__(self, tokenizer=None):
        config = BSQTokenizerConfig(**(tokenizer or {}))
        model = BSQTokenizer(config)
        super().__init__(model.codebook_size, config.image_shape, (1, *model.grid), config.patch_size)
        self.tokenizer = model.requires_grad_(False)

    @property
    def spec(self):
        return {"kind": self.kind, "tokenizer": {**dataclasses.asdict(self.tokenizer.config),
                                                 "image_shape": list(self.picture_shape)}}

    def train(self, mode=True):
        return super().train(False)  # frozen: trained on its own, used as it was shipped

    def encode(self, pictures):
        return self.tokenizer.encode(self.check_pictures(pictures))[:, None]  # (b, 1, h, w)

    def report(self, pictures):
        return {"tokenizer": tokenizer_metrics(self.tokenizer, self.check_pictures(pictures))}

    def decode(self, values, drawn=None):
        pictures = (self.tokenizer.decode(values[:, 0]) * 255).round().to(torch.uint8)
        return blank_undrawn(pictures, drawn, self.patch_size)


class Pyramid(Tokens):
    """A frozen multi-scale BSQ tokenizer (VAR): token maps from 1 x 1 to the patch grid, flattened
    into one row of values; a picture decodes from the scales drawn so far."""

    kind = "bsq-pyramid"

    def __init__(self, tokenizer=None):
        model = BSQTokenizer(BSQTokenizerConfig(**(tokenizer or {})))
        if model.config.scales is None:
            raise ValueError("a pyramid codec needs a tokenizer with scales (a multi-scale BSQ tokenizer)")
        Codec.__init__(self, model.codebook_size, model.config.image_shape, (1, 1, model.quantizer.num_tokens),
                       model.config.patch_size)
        self.tokenizer = model.requires_grad_(False)
        self.scales = model.quantizer.scales
        self.register_buffer("token_scale", model.quantizer.token_scale(), persistent=False)

    @property
    def grid_shape(self):
        return (1, *self.tokenizer.grid)

    def encode(self, pictures):
        return self.tokenizer.encode(self.check_pictures(pictures))[:, None, None]  # (b, 1, 1, n)

    def decode(self, values, drawn=None):
        """The picture of the drawn scales' sum (all of them where ``drawn`` is None)."""
        tokens = values[:, 0, 0]
        pictures = self.tokenizer.decode(tokens, None if drawn is None else drawn[:, 0, 0].to(tokens.device))
        return (pictures * 255).round().to(torch.uint8)

    def cells(self, scale):
        """The token of ``scale`` over each cell of the grid, long ``[h, w]`` (nearest), and how many cells each covers."""
        s, (h, w) = scale, self.grid_shape[1:]
        tokens = torch.arange(s.start, s.stop, dtype=torch.float).reshape(1, 1, s.height, s.width)
        index = torch.nn.functional.interpolate(tokens, size=(h, w), mode="nearest")[0, 0].long()
        return index, torch.bincount(index.flatten(), minlength=s.stop)

    def to_grid(self, per_value, reduce="finest"):
        if reduce not in ("finest", "share", "any"):
            raise ValueError(f"reduce must be 'finest', 'share' or 'any', got {reduce!r}")
        rows, shown = per_value[:, 0, 0], None
        for scale in self.scales:
            index, count = self.cells(scale)
            here = rows[:, index]  # (b, h, w): each cell's token of this scale
            if reduce == "share":  # each token's figure split evenly over its cells: the map sums to the values' sum
                here = here.nan_to_num(0) / count[index]
                shown = here if shown is None else shown + here
            elif reduce == "any":
                shown = here.bool() if shown is None else shown | here.bool()
            else:  # the finest scale drawn there
                shown = here if shown is None else torch.where(here.isnan(), shown, here)
        return shown[:, None]

    def grid_position(self, position):
        """The finest scale's token at the cell."""
        _, row, col = position
        last = self.scales[-1]
        return 0, 0, last.start + row * last.width + col

    def kept_values(self, rows):
        """The coarse scales whose token rows are at most ``rows`` / H of the finest one's: a completion
        keeps the picture's outline and redraws its detail (rows = H keeps every scale)."""
        super().kept_values(rows)  # checks rows
        finest = self.scales[-1].height
        kept = [s for s in self.scales if s.height * self.picture_shape[1] <= rows * finest]
        return kept[-1].stop if kept else 0

    def kept_rows(self, rows):
        return 0  # a pyramid keeps scales, not rows

    def kept_words(self, rows):
        kept = [s for s in self.scales if s.stop <= self.kept_values(rows)]
        largest = f" (up to {kept[-1].height} × {kept[-1].width} tokens)" if kept else ""
        return f"the {len(kept)} coarsest of {len(self.scales)} scales{largest}, for {rows} of {self.picture_shape[1]} rows"


CODECS = {codec.kind: codec for codec in (Levels, Binary, Tokens, Pyramid)}


def build_codec(spec):
    """A codec from its spec (a dict with ``kind``), or the codec itself."""
    if isinstance(spec, Codec):
        return spec
    if not isinstance(spec, dict) or spec.get("kind") not in CODECS:
        raise ValueError(f"a codec spec is a dict whose 'kind' is one of {sorted(CODECS)}, got {spec!r}")
    return CODECS[spec["kind"]](**{k: v for k, v in spec.items() if k != "kind"})
