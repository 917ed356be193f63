"""Pipelines: what a user does with a model, composed from the codec, the sampler and the likelihood
(the pipelines of diffusers, for autoregressive image models). The app only lays out widgets and
calls these.

    frames = generate(model, classes=[7, 7, 3], seed=0, every=28)       # stream Frames
    frames = complete(model, pictures, classes=[7] * 4, rows=14)        # keep the top 14 rows
    for runners in race([model_a, model_b], classes=[3], seed=0): ...  # side by side, live
    result = score(model, pictures)                                     # bits, surprise map, p(class | image)
    runners = compare([model_a, model_b], classes=[3], seed=0)          # the race's finish
"""
import math
import time
from collections import namedtuple

import torch

from .likelihood import check_exact, class_posterior, surprise_bits
from .sampling import entropy, requests, sample_stream
from .schedules import from_raster, raster_logits, raster_values

Score = namedtuple("Score", "bits bits_per_value surprise posterior label")
Runner = namedtuple("Runner", "model frame seconds")


def generate(model, classes, *, temperature=1.0, top_k=None, seed=0, every=1, schedule=None, fast=True,
             guidance=None):
    """Frames of a generation of one image per entry of ``classes`` (an unconditional model
    draws as many images and ignores the classes)."""
    return sample_stream(model, temperature=temperature, top_k=top_k, seed=seed, every=every, schedule=schedule,
                         fast=fast, guidance=guidance, **requests(model, classes))


def pictures(model, frame):
    """uint8 pictures of a :class:`Frame` as a person is shown them: its schedule's preview (the
    values drawn so far; a multi-scale model's small image enlarged until its pixels are drawn),
    the pixels of no value drawn yet as a light checkerboard (:func:`~argen.render.undrawn_checker`)."""
    from .render import undrawn_checker

    values, shown = (frame.schedule or model.schedule()).preview(frame.image, frame.drawn)
    pictures = model.codec.decode(values, shown)
    if frame.done:
        return pictures
    p = cell(model)
    undrawn = ~model.codec.to_grid(shown, "any").any(1).repeat_interleave(p, 1).repeat_interleave(p, 2)
    return undrawn_checker(pictures, undrawn)


def cell(model):
    """Picture pixels along each side of one cell of the model's grid (1 for a pixel model, the
    patch size for a token model): how a per-value map or mark lines up with the picture."""
    return model.codec.cell


def value_map(model, per_value, reduce="finest"):
    """A per-value figure ``[B, c, h, w]`` (a probability, an entropy, a surprise) as maps ``[B, h', w']``
    on the codec's grid of cells (:meth:`~argen.models.codecs.Codec.to_grid`, ``reduce``), the mean
    over colour channels."""
    grid = model.codec.to_grid(per_value, reduce)
    return grid.nanmean(1) if grid.shape[1] > 1 else grid[:, 0]


def kept_rows(model, rows):
    """The picture rows a completion keeps when asked for ``rows`` (fewer where a value covers
    several rows; none for a pyramid, which keeps its coarse scales)."""
    return model.codec.kept_rows(rows)


def complete(model, pictures, classes, rows, *, temperature=1.0, top_k=None, seed=0, every=1, fast=True):
    """Frames of completions of uint8 ``pictures`` (one, or one per class) that keep their top
    ``rows`` picture rows (the values wholly inside them; a pyramid's coarse scales, see
    :meth:`~argen.models.codecs.Pyramid.kept_values`) and sample the rest."""
    values = model.codec.encode(pictures)
    batch = len(classes)
    if values.shape[0] not in (1, batch):
        raise ValueError(f"give one picture or one per completion ({batch}), got {values.shape[0]}")
    return sample_stream(model, temperature=temperature, top_k=top_k, seed=seed, every=every, fast=fast,
                         prompt=values.expand(batch, -1, -1, -1), keep=model.codec.kept_values(rows),
                         **requests(model, classes))


@torch.no_grad()
def score(model, pictures, label=None):
    """The exact likelihood of uint8 ``pictures`` ``[B, C, H, W]`` under ``model``: a :class:`Score`
    of bits per image ``[B]``, bits per value ``[B]``, the surprise of each value (bits, on the value
    grid), p(class | image) ``[B, classes]`` (None when unconditional) and the class scored under
    ``[B]``: ``label`` where given, else the most probable class."""
    x = model.codec.encode(pictures)
    posterior = class_posterior(model, x) if model.num_classes else None
    y = None
    if model.num_classes:
        y = posterior.argmax(-1) if label is None else torch.as_tensor(label).reshape(-1).expand(x.shape[0])
    surprise = surprise_bits(model, x, y)
    bits = surprise.flatten(1).sum(1)
    return Score(bits, bits / model.num_values, surprise, posterior, y)


def steps_for_pixels(model, pixels):
    """Schedule steps per frame for about ``pixels`` picture pixels per frame (a raster step commits
    one value, a MaskGIT step many)."""
    values_per_step = model.num_values / model.schedule().num_steps(model.num_values)
    return max(1, round(pixels / model.codec.pixels_per_value / values_per_step))


def steps_for_frames(model, frames):
    """Schedule steps per frame for the whole picture in about ``frames`` frames, whatever its size."""
    return max(1, math.ceil(model.schedule().num_steps(model.num_values) / frames))


def race(models, classes, *, temperature=1.0, seed=0, pixels_per_frame=28, frames=None, settings=None):
    """Every model draws the same classes with the same random numbers, all advancing about
    ``pixels_per_frame`` picture pixels per frame (None: to the end at once), or each its whole
    picture in about ``frames`` frames: yields, per frame, one :class:`Runner` per model (its latest
    frame, a finished model keeping its last, and its seconds so far). ``settings``: one dict of
    sampling settings (``temperature``, ``top_k``, ``guidance``) per model, in place of ``temperature``."""
    settings = settings or [{"temperature": temperature}] * len(models)
    if len(settings) != len(models):
        raise ValueError(f"give one settings dict per model ({len(models)}), got {len(settings)}")

    def every(model):
        if frames is not None:
            return steps_for_frames(model, frames)
        return None if pixels_per_frame is None else steps_for_pixels(model, pixels_per_frame)
    streams = [generate(model, classes, seed=seed, every=every(model), **chosen)
               for model, chosen in zip(models, settings)]
    latest, seconds = [None] * len(models), [0.0] * len(models)
    while True:
        moved = False
        for i, stream in enumerate(streams):
            if latest[i] is not None and latest[i].done:
                continue
            started = time.perf_counter()
            latest[i] = next(stream)
            seconds[i] += time.perf_counter() - started
            moved = True
        if not moved:
            return
        yield [Runner(*race) for race in zip(models, latest, seconds)]


def compare(models, classes, *, temperature=1.0, seed=0):
    """Each model draws one image per class with the same seed, so the same random numbers: the
    finish of a :func:`race` run in one go, one :class:`Runner` per model (last frame, seconds)."""
    *_, finish = race(models, classes, temperature=temperature, seed=seed, pixels_per_frame=None)
    return finish


Inspection = namedtuple("Inspection", "dist value prob entropy posterior_before posterior_after")


@torch.no_grad()
def inspect(model, values, label, position):
    """The distribution a value of a finished image was drawn from (at temperature 1), by one
    teacher-forced pass: ``values`` ``[c, h, w]``, ``label`` (None when unconditional), ``position``
    (channel, row, col) on the value grid. With a class-conditional model, also p(class | the values
    drawn before it) and p(class | those and it): how the value moved the model's belief in each class."""
    check_exact(model)
    x = model.codec.check_values(values[None])
    classes = torch.arange(max(model.num_classes, 1))
    y = classes if model.num_classes else None
    log_probs = model(x.expand(len(classes), -1, -1, -1), y).log_softmax(1)  # (C, K, c, h, w): under each class
    own = 0 if label is None else int(label)
    dist = log_probs[own][(slice(None), *position)].exp()
    value = int(x[(0, *position)])
    posterior_before = posterior_after = None
    if model.num_classes:
        picked = raster_values(log_probs.gather(1, x.expand(len(classes), -1, -1, -1)[:, None])[:, 0])  # (C, n)
        steps, step = steps_to(model, position)
        prefix = picked[:, steps < step].sum(1)  # the values drawn before it
        t = raster_index(model, position)
        posterior_before, posterior_after = prefix.softmax(0), (prefix + picked[:, t]).softmax(0)
    return Inspection(dist, value, float(dist[value]), float(entropy(dist[None])[0]), posterior_before, posterior_after)


def raster_index(model, position):
    """The raster index of ``position`` (channel, row, col) on the value grid (channels innermost)."""
    c, h, w = model.value_shape
    if len(position) != 3 or not all(isinstance(i, int) and 0 <= i < size for i, size in zip(position, (c, h, w))):
        raise ValueError(f"position must be (channel, row, col) inside the value grid {(c, h, w)}, got {position!r}")
    channel, row, col = position
    return (row * w + col) * c + channel


def steps_to(model, position):
    """(the step of the model's schedule that draws each raster position, long ``[n]``; the step that
    draws ``position`` (channel, row, col) on the value grid). A value's logits may read the values
    of earlier steps only."""
    t = raster_index(model, position)
    steps = model.schedule().steps_of(model.num_values)
    if steps is None:
        raise ValueError(f"{model.schedule()!r} has no fixed order: which values come before another depends on the run")
    return steps, int(steps[t])


def drawn_before(model, position):
    """Bool mask on the value grid: the values the model draws before ``position`` (channel, row, col)."""
    steps, step = steps_to(model, position)
    return from_raster((steps < step)[None], model.value_shape)[0]


@torch.no_grad()
def receptive_field(model, position, contexts=1, seed=0, chunk=128):
    """The values the logits at ``position`` (channel, row, col) depend on, as a bool mask on the value
    grid: changing such a value changes them at all, in at least one of ``contexts`` random images
    (class 0). The unchanged image rides in every batch, so that a value with no path to the position
    compares bit for bit. Only values drawn before the position are tried: a causal model sees no later one."""
    check_exact(model)
    steps, step = steps_to(model, position)
    t, before = raster_index(model, position), (steps < step).nonzero()[:, 0]
    generator = torch.Generator().manual_seed(seed)
    seen = torch.zeros(model.num_values, dtype=torch.bool)
    for _ in range(contexts):
        x = torch.randint(0, model.levels, (1, model.num_values), generator=generator)
        for start in range(0, len(before), chunk):
            earlier = before[start:start + chunk]
            changed = x.repeat(len(earlier) + 1, 1)  # row 0: the image as it is
            changed[torch.arange(1, len(earlier) + 1), earlier] = (x[0, earlier] + 1) % model.levels
            y = torch.zeros(len(changed), dtype=torch.long) if model.num_classes else None
            logits = raster_logits(model(from_raster(changed, model.value_shape), y))[:, t]
            seen[earlier] |= (logits[1:] != logits[:1]).any(-1)
    return from_raster(seen[None], model.value_shape)[0]
