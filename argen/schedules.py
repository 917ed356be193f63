"""Decoding schedules: which value positions a generation commits at each step (the idea of
diffusers' schedulers, for decoding orders).

The one sampler (:mod:`argen.sampling`) asks its schedule, at every step, which positions the
model must predict (``positions``), draws a proposal for each, and lets the schedule choose which
of them to commit (``commit``). Positions are raster indices over the value grid (row by row,
channels innermost).

- :class:`Raster`: one value per step in raster order, the schedule of the autoregressive models.
  A model's incremental fast path relies on the order of its own schedule.
- :class:`CoarseToFine`: one value per step, the multi-scale PixelRNN's order: first the pixels of
  every f-th row and column (a small image, in its own raster order), then the others in raster order.
- :class:`NextScale`: VAR's (Tian et al. 2024): a whole scale of a pyramid of token maps per step,
  coarse to fine; the values are the pyramid flattened scale after scale.
- :class:`Confidence`: MaskGIT's (Chang et al. 2022): all positions start masked; at each of T
  steps the model predicts every position, and the most confident masked proposals are kept so
  that ``n * cos(pi/2 * (t+1)/T)`` stay masked after step t; the confidence carries Gumbel noise
  whose temperature anneals linearly to zero.

Prompt values (completion) are "forced": the sampler gives them infinite confidence, so a schedule
commits them first (raster order reaches a kept prefix first by itself).
"""
import math

import torch


class Schedule:
    def order(self, num_values):
        """The raster positions in the order the steps commit them, one per step (long ``[num_values]``),
        or None when a step may commit several. A schedule with an order gives one position per
        step, ``order[step]``, and commits it: the sampler does not ask :meth:`commit`. A model's
        fast path follows its own schedule's order."""
        return None

    def num_steps(self, num_values):
        raise NotImplementedError

    def steps_of(self, num_values):
        """The step that commits each raster position, long ``[num_values]``, or None where that
        depends on the run (MaskGIT's confidence). A value's logits may read every value of an earlier
        step, and none of its own step or later."""
        order = self.order(num_values)
        if order is None:
            return None
        steps = torch.empty_like(order)
        steps[order] = torch.arange(len(order))
        return steps

    def positions(self, step, num_values):
        """The raster positions (a ``slice``, or a long tensor, of P) whose logits the model gives at ``step``."""
        raise NotImplementedError

    def preview(self, values, drawn):
        """What a person is shown of a generation in progress: ``(values, shown)`` from the values and
        ``drawn`` ``[B, c, h, w]``, the values not ``shown`` drawn black. Here the values drawn so far."""
        return values, drawn

    def commit(self, step, num_values, confidence, drawn, generator):
        """Which of the step's proposals to commit: bool ``[B, P]`` (None: all of them), from the
        probability of each proposal ``confidence`` ``[B, P]`` (inf where forced) and ``drawn`` ``[B, P]``.
        Asked only of a schedule without an order."""
        raise NotImplementedError


class Raster(Schedule):
    """One value per step, in raster order."""

    def order(self, num_values):
        return torch.arange(num_values)

    def num_steps(self, num_values):
        return num_values

    def positions(self, step, num_values):
        return slice(step, step + 1)

    def commit(self, step, num_values, confidence, drawn, generator):
        return None

    def __repr__(self):
        return "Raster()"


class CoarseToFine(Schedule):
    """Multi-scale (van den Oord et al. 2016): first the small image, the pixels of every ``factor``-th
    row and column from the top-left one, in its raster order; then the other pixels in raster order,
    each seeing the whole small image. ``shape`` is the value grid (c, h, w)."""

    def __init__(self, shape, factor=2):
        c, h, w = shape
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 2 or h % factor or w % factor:
            raise ValueError(f"factor must be an integer >= 2 that divides the height and width {h} x {w}, "
                             f"got {factor!r}")
        self.shape, self.factor = tuple(shape), factor
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        coarse = self.in_small(rows, cols)[..., None].expand(h, w, c).flatten()
        positions = torch.arange(h * w * c)
        self._order = torch.cat([positions[coarse], positions[~coarse]])

    def in_small(self, row, col):
        """Whether the pixel at (row, col) belongs to the small image (numbers or tensors)."""
        return (row % self.factor == 0) & (col % self.factor == 0)

    def small(self, grid):
        """The small image of a grid ``[..., h, w]``: ``[..., h / factor, w / factor]``."""
        return grid[..., ::self.factor, ::self.factor]

    def enlarge(self, small):
        """Each pixel of a small image ``[..., h, w]`` as a factor x factor block."""
        return small.repeat_interleave(self.factor, -2).repeat_interleave(self.factor, -1)

    def order(self, num_values):
        if num_values != len(self._order):
            raise ValueError(f"{self!r} orders {len(self._order)} values, asked for {num_values}")
        return self._order

    def num_steps(self, num_values):
        return len(self.order(num_values))

    def positions(self, step, num_values):
        return self._order[step:step + 1]

    def commit(self, step, num_values, confidence, drawn, generator):
        return None

    def preview(self, values, drawn):
        """The small image enlarged (each of its pixels a factor x factor block), refined as the others are drawn."""
        return (torch.where(drawn, values, self.enlarge(self.small(values))),
                drawn | self.enlarge(self.small(drawn)))

    def __repr__(self):
        return f"CoarseToFine(shape={self.shape}, factor={self.factor})"


class NextScale(Schedule):
    """A whole scale per step, coarse to fine: ``sizes`` are the scales' token counts, in order."""

    def __init__(self, sizes):
        sizes = [int(n) for n in sizes]
        if not sizes or min(sizes) < 1:
            raise ValueError(f"sizes must be positive token counts, one per scale, got {sizes!r}")
        self.sizes = sizes
        self.starts = [0]
        for n in sizes:
            self.starts.append(self.starts[-1] + n)

    def check(self, num_values):
        if num_values != self.starts[-1]:
            raise ValueError(f"{self!r} covers {self.starts[-1]} values, asked for {num_values}")

    def num_steps(self, num_values):
        self.check(num_values)
        return len(self.sizes)

    def steps_of(self, num_values):
        self.check(num_values)
        return torch.cat([torch.full((n,), k) for k, n in enumerate(self.sizes)])

    def positions(self, step, num_values):
        return slice(self.starts[step], self.starts[step + 1])

    def commit(self, step, num_values, confidence, drawn, generator):
        return None

    def __repr__(self):
        return f"NextScale(sizes={self.sizes})"


class Confidence(Schedule):
    """MaskGIT: in each of ``steps`` steps, commit the most confident masked positions (cosine schedule)."""

    STEPS, CHOICE_TEMPERATURE = 8, 4.5  # the defaults (MaskGIT's configs take theirs from here)

    def __init__(self, steps=STEPS, choice_temperature=CHOICE_TEMPERATURE):
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        self.steps, self.choice_temperature = steps, choice_temperature

    def num_steps(self, num_values):
        return min(self.steps, num_values)

    def positions(self, step, num_values):
        return slice(0, num_values)

    def masked_after(self, step, num_values):
        """How many positions stay masked after ``step`` (0 after the last)."""
        return math.floor(num_values * math.cos(math.pi / 2 * (step + 1) / self.num_steps(num_values)))

    def commit(self, step, num_values, confidence, drawn, generator):
        masked = (~drawn).sum(1)  # (b,)
        count = (masked - self.masked_after(step, num_values)).clamp_min(1)
        temperature = self.choice_temperature * (1 - (step + 1) / self.num_steps(num_values))
        u = torch.rand(confidence.shape, generator=generator).clamp(1e-20, 1 - 1e-7)
        gumbel = -torch.log(-torch.log(u))
        score = (confidence.clamp_min(1e-30).log() + temperature * gumbel).masked_fill(drawn, -math.inf)
        rank = score.argsort(1, descending=True).argsort(1)  # (b, P): 0 = the most confident
        return (rank < count[:, None]) & ~drawn

    def __repr__(self):
        return f"Confidence(steps={self.steps}, choice_temperature={self.choice_temperature})"


def raster_values(x):
    """``[B, C, H, W]`` -> ``[B, H*W*C]`` in raster order (channels innermost)."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


def from_raster(values, shape):
    """Inverse of :func:`raster_values`: ``[B, H*W*C] -> [B, C, H, W]`` for ``shape`` (C, H, W)."""
    c, h, w = shape
    return values.reshape(values.shape[0], h, w, c).permute(0, 3, 1, 2)


def raster_logits(logits):
    """``[B, K, C, H, W]`` -> ``[B, H*W*C, K]``: the logits in raster order."""
    b, k = logits.shape[:2]
    return logits.permute(0, 3, 4, 2, 1).reshape(b, -1, k)


def image_logits(logits, shape):
    """Inverse of :func:`raster_logits`: ``[B, H*W*C, K] -> [B, K, C, H, W]``."""
    c, h, w = shape
    return logits.reshape(logits.shape[0], h, w, c, -1).permute(0, 4, 3, 1, 2)
