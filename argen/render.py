"""Pictures and per-value maps as PIL images, for sample grids and the app. Pictures come in as
uint8 ``[B, C, H, W]`` (a codec's ``decode``)."""
import math

import numpy as np
from PIL import Image


def to_numpy(pictures):
    """uint8 pictures ``[B, C, H, W]`` -> a ``[B, H, W, C]`` numpy array."""
    return pictures.permute(0, 2, 3, 1).cpu().numpy()


def grid(pictures, nrow=10, padding=2, scale=1):
    """A PIL grid of uint8 pictures ``[B, C, H, W]``, ``nrow`` pictures per row."""
    images = to_numpy(pictures)
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


def mark_pixel(picture, box, color=(255, 48, 48)):
    """Draw a rectangle outline ``box`` = (left, top, right, bottom) on an RGB picture."""
    from PIL import ImageDraw

    ImageDraw.Draw(picture).rectangle(box, outline=color, width=max(1, (box[2] - box[0]) // 6))
    return picture


def tile(arrays, nrow, scale, padding=1, fill=96):
    """Tile equal-size RGB arrays ``[H, W, 3]`` into one upscaled PIL picture (nearest neighbour)."""
    h, w, _ = arrays[0].shape
    rows = math.ceil(len(arrays) / nrow)
    canvas = np.full((rows * (h + padding) - padding, nrow * (w + padding) - padding, 3), fill, np.uint8)
    for i, array in enumerate(arrays):
        r, c = divmod(i, nrow)
        canvas[r * (h + padding):r * (h + padding) + h, c * (w + padding):c * (w + padding) + w] = array
    return Image.fromarray(canvas.repeat(scale, 0).repeat(scale, 1))


def layout(batch, picture_size=(32, 32)):
    """(images per row, upscale factor) for a batch of pictures ``(H, W)`` shown in one panel: a
    picture larger than 32 x 32 is enlarged less, so that the panel stays about as large."""
    nrow = batch if batch <= 4 else math.ceil(batch / 2)
    scale = {1: 10, 2: 8}.get(nrow, 6 if nrow <= 4 else 4)
    return nrow, math.ceil(scale * 32 / max(32, *picture_size))


def canvas(pictures, marks=None, cell=1, padding=1, captions=None, kept_rows=0):
    """The pictures ``[B, C, H, W]`` upscaled, with the values just drawn outlined: ``marks`` is a bool
    mask ``[B, h, w]`` on the value grid, where one position covers ``cell`` x ``cell`` pixels.
    ``captions`` (one short text per picture) are written in their corners, and a line under the
    top ``kept_rows`` rows shows what a completion kept."""
    from PIL import ImageDraw, ImageFont

    images = to_numpy(pictures)
    rgb = [np.repeat(image, 3, -1) if image.shape[-1] == 1 else image for image in images]
    h, w = rgb[0].shape[:2]
    nrow, scale = layout(len(rgb), (h, w))
    picture = tile(rgb, nrow, scale, padding)
    draw, font = ImageDraw.Draw(picture), ImageFont.load_default(size=max(12, 3 * scale))
    for i in range(len(rgb)):
        top, left = (i // nrow) * (h + padding) * scale, (i % nrow) * (w + padding) * scale
        if captions is not None:
            draw.text((left + 3, top + 1), str(captions[i]), fill=(255, 200, 0), font=font)
        if kept_rows:
            draw.line((left, top + kept_rows * scale, left + w * scale - 1, top + kept_rows * scale),
                      fill=(0, 170, 255), width=max(1, scale // 4))
    if marks is not None:
        for i, row, col in marks.nonzero().tolist():
            r, c = divmod(i, nrow)
            top = (r * (h + padding) + row * cell) * scale
            left = (c * (w + padding) + col * cell) * scale
            mark_pixel(picture, (left, top, left + cell * scale - 1, top + cell * scale - 1))
    return picture


def field_picture(seen, earlier, position, cell=1):
    """A receptive field ``seen`` (bool ``[h, w]`` on the value grid) of ``position`` (row, col):
    of the values drawn ``earlier`` (bool ``[h, w]``), those it sees in blue and those it cannot see
    in orange (a blind spot, or beyond its reach); the position in red and later values dark; a
    value covers ``cell`` x ``cell`` pixels."""
    h, w = seen.shape
    earlier = earlier.numpy()
    rgb = np.full((h, w, 3), 40, np.uint8)
    rgb[earlier & seen.numpy()] = (80, 160, 255)
    rgb[earlier & ~seen.numpy()] = (255, 170, 0)
    rgb[position] = (230, 40, 40)
    return tile([rgb], 1, layout(1, (h * cell, w * cell))[1] * cell)


def cell_at(batch, picture_size, x, y, padding=1):
    """Inverse of :func:`canvas`'s layout: the (image, row, col) of the picture pixel at canvas
    coordinates (x, y), or None on the padding between pictures."""
    (h, w), (nrow, scale) = picture_size, layout(batch, picture_size)
    (tile_row, inside_y), (tile_col, inside_x) = divmod(y // scale, h + padding), divmod(x // scale, w + padding)
    image = tile_row * nrow + tile_col
    if inside_y >= h or inside_x >= w or tile_col >= nrow or image >= batch:
        return None
    return image, inside_y, inside_x


def colorbar(height, vmin, vmax, cmap, font_size):
    """A vertical colour scale with its top, middle and bottom figures, as a PIL picture. The
    figures are at most a sixth of the scale's height, so that they never overlap."""
    from PIL import ImageDraw, ImageFont

    font_size = max(8, min(font_size, height // 6))
    font = ImageFont.load_default(size=font_size)
    width = 26 + 3 * font_size
    ramp = colormap(np.linspace(vmax, vmin, height)[:, None].repeat(14, 1), vmin, vmax, cmap)
    bar = Image.new("RGB", (width, height), (255, 255, 255))
    bar.paste(Image.fromarray(ramp), (4, 0))
    draw = ImageDraw.Draw(bar)
    for y, value in ((0, vmax), ((height - font_size) // 2, (vmin + vmax) / 2), (height - font_size - 2, vmin)):
        draw.text((22, y), f"{value:.2g}", fill=(0, 0, 0), font=font)
    return bar


MAP_TOP = 40  # the least height of the white band above a map, where a browser's label chip and buttons sit


def map_band(width):
    """The white band above a map panel ``width`` pixels wide: a ninth of its width, at least
    :data:`MAP_TOP`, so that it stays as tall as the browser's label chip when a wide panel (several
    pictures) is shown small."""
    return max(MAP_TOP, width // 9)


def map_panel(values, vmin, vmax, cmap, label, padding=1, cell=1):
    """Per-value maps ``[B, h, w]`` (NaN = not yet drawn) coloured, tiled and given a colour scale
    whose figures stay readable when the panel is shown small; a value covers ``cell`` x ``cell``
    picture pixels, so the maps come out as large as the pictures. The scale's unit (``label``) is
    written in the band above it (:func:`map_band`), right-aligned, clear of the label chip."""
    from PIL import ImageDraw, ImageFont

    arrays = [colormap(v, vmin, vmax, cmap) for v in np.asarray(values)]
    nrow, scale = layout(len(arrays), (arrays[0].shape[0] * cell, arrays[0].shape[1] * cell))
    scale *= cell
    picture = tile(arrays, nrow, scale, padding, fill=255)
    bar = colorbar(picture.height, vmin, vmax, cmap, font_size=max(14, picture.width // 16))
    width = picture.width + bar.width
    band = map_band(width)
    panel = Image.new("RGB", (width, picture.height + band), (255, 255, 255))
    panel.paste(picture, (0, band))
    panel.paste(bar, (picture.width, band))
    draw = ImageDraw.Draw(panel)
    font = ImageFont.load_default(size=max(12, band // 3))
    draw.text((width - 4 - draw.textlength(label, font=font), band - font.size - 6), label, fill=(80, 80, 80),
              font=font)
    return panel


def undrawn_checker(pictures, undrawn, size=4):
    """uint8 pictures ``[B, C, H, W]`` with the pixels not drawn yet (bool ``[B, H, W]``) shown as a
    light grey checkerboard of ``size``-pixel squares (as an editor shows transparency), so that a
    black pixel drawn and a pixel not drawn look different."""
    import torch

    h, w = pictures.shape[2:]
    rows, cols = torch.arange(h)[:, None] // size, torch.arange(w)[None] // size
    checker = torch.where((rows + cols) % 2 == 0, 200, 160).to(torch.uint8)  # (h, w)
    return torch.where(undrawn[:, None], checker, pictures)


def distribution_chart(probs, chosen=None, width=448, height=180, margin=20):
    """A bar chart of a distribution over K levels, the chosen level in red. ``margin``: a blank
    band at the top, under the label that the app lays over the picture's top-left corner."""
    from PIL import ImageDraw

    probs = np.asarray(probs, dtype=np.float64)
    k = len(probs)
    picture = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    top, bottom, left = margin + 14, height - 14, 28
    bar = (width - left - 4) / k
    peak = max(probs.max(), 1e-12)
    for i, p in enumerate(probs):
        x0 = left + i * bar
        color = (230, 50, 50) if i == chosen else (70, 110, 200)
        draw.rectangle((x0, bottom - (bottom - top) * p / peak, x0 + max(bar - 1, 1), bottom), fill=color)
    draw.line((left, bottom, width - 4, bottom), fill=(0, 0, 0))
    draw.text((2, top - 10), f"{peak:.2f}", fill=(0, 0, 0))
    draw.text((2, bottom - 10), "0", fill=(0, 0, 0))
    draw.text((left, bottom + 2), "0", fill=(0, 0, 0))
    draw.text((width - 30, bottom + 2), f"{k - 1}", fill=(0, 0, 0))
    if chosen is not None:
        title = f"chosen {chosen}: p={probs[chosen]:.3f}"
        draw.text((width - 4 - draw.textlength(title), margin), title, fill=(200, 30, 30))
    return picture
