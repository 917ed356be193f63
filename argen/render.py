"""Images of levels and of per-pixel maps, for sample grids and the app."""
import math

import numpy as np
import torch
from PIL import Image

from .data import dequantize


def to_uint8(x, levels):
    """Levels ``[B, C, H, W]`` -> uint8 ``[B, H, W, C]`` numpy array; K=2 shows as black/white."""
    pixels = (x.long() * 255).to(torch.uint8) if levels == 2 else dequantize(x, levels)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


def grid(x, levels, nrow=10, padding=2, scale=1):
    """A PIL grid of images of levels ``[B, C, H, W]``, ``nrow`` images per row."""
    images = to_uint8(x, levels)
    b, h, w, c = images.shape
    rows = math.ceil(b / nrow)
    canvas = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), 128, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        canvas[top:top + h, left:left + w] = image
    picture = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def colormap(values, vmin, vmax, cmap="viridis", nan_rgb=(32, 32, 32)):
    """A float map ``[H, W]`` -> RGB uint8 ``[H, W, 3]`` through a matplotlib colormap;
    NaN (not yet sampled) shows as ``nan_rgb``."""
    from matplotlib import colormaps

    values = np.asarray(values, dtype=np.float64)
    scaled = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    rgb = (colormaps[cmap](np.nan_to_num(scaled))[..., :3] * 255).astype(np.uint8)
    rgb[np.isnan(values)] = nan_rgb
    return rgb
