"""One sampler for every model: pixel by pixel in raster order, streaming frames as it goes.

Randomness is drawn up front: one uniform number per (image, pixel) from ``seed``, turned into a
level by inverse-CDF sampling of the tempered, top-k filtered distribution. So the same seed gives
the same random numbers to any model (differences between models come from the models alone), and
the naive path (the whole network once per pixel) and a model's fast path give the same samples.
"""
import math
from dataclasses import dataclass

import torch

from .data import check_images, check_labels
from .models.base import from_raster, raster_logits, raster_values

MAX_IMAGES = 100


@dataclass
class Frame:
    """The state of a generation after sampling raster index ``index`` (all tensors on CPU)."""

    image: torch.Tensor  # (b, c, h, w) long levels; unsampled pixels are 0
    prob: torch.Tensor  # (b, c, h, w) probability of the chosen level; NaN where unsampled
    entropy: torch.Tensor  # (b, c, h, w) entropy in nats of the sampled distribution; NaN where unsampled
    dist: torch.Tensor  # (b, K) the distribution the last pixel was drawn from
    nll_bits: torch.Tensor  # (b,) -log2 p(sample so far) under the model at temperature 1
    index: int  # raster index of the last sampled value
    row: int
    col: int
    channel: int
    done: bool

    @property
    def pixels_done(self):
        return self.index + 1


def check_sampling_args(model, temperature, top_k):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is None:
        return model.levels
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= model.levels:
        raise ValueError(f"top_k must be an integer in 1..{model.levels} (or None for all), got {top_k!r}")
    return top_k


def batch_labels(model, labels, num_images):
    """The batch size and validated labels (None for an unconditional model)."""
    if model.num_classes:
        if labels is None:
            raise ValueError(f"this model is class-conditional: pass labels in [0, {model.num_classes})")
        labels = torch.as_tensor(labels).reshape(-1)
        batch = labels.numel()
    else:
        if labels is not None:
            raise ValueError("this model is unconditional: pass num_images instead of labels")
        batch = 1 if num_images is None else num_images
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_IMAGES:
        raise ValueError(f"number of images must be an integer in 1..{MAX_IMAGES}, got {batch!r}")
    return batch, check_labels(labels, model.num_classes, batch)


def sampling_distribution(logits, temperature, top_k):
    """Softmax of ``logits / temperature`` restricted to the ``top_k`` largest: ``[B, K]``."""
    logits = logits.float() if temperature == 1 else logits.float() / temperature
    if top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    return logits.softmax(-1)


def entropy(probs):
    """Entropy in nats of each row of ``probs`` ``[..., K]``."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(-1)


def draw(probs, u):
    """Inverse-CDF sampling: the level whose CDF interval holds ``u`` ``[B]`` in [0, 1)."""
    cdf = probs.cumsum(-1)
    index = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1).contiguous())
    return index.squeeze(-1).clamp_max(probs.shape[-1] - 1)


@torch.no_grad()
def sample_stream(model, labels=None, temperature=1.0, top_k=None, seed=0, every=1, *,
                  num_images=None, prompt=None, prompt_pixels=0, fast=True):
    """Generate images pixel by pixel, yielding a :class:`Frame` every ``every`` pixels and at the end.

    ``labels``: one class per image for a class-conditional model (a batch in one pass); an
    unconditional model takes ``num_images`` instead. ``prompt`` (levels ``[B, C, H, W]``) with
    ``prompt_pixels`` > 0 keeps the first raster values of the prompt and samples the rest
    (completion). ``fast`` uses the model's incremental path when it has one (same samples).
    """
    top_k = check_sampling_args(model, temperature, top_k)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an integer >= 1 (pixels per frame), got {every!r}")
    batch, y = batch_labels(model, labels, num_images)
    n = model.num_pixels
    if prompt is not None:
        prompt = check_images(prompt, model.levels, model.image_shape)
        if prompt.shape[0] != batch:
            raise ValueError(f"prompt holds {prompt.shape[0]} images for a batch of {batch}")
        prompt = raster_values(prompt)
    if not 0 <= prompt_pixels <= n or (prompt_pixels and prompt is None):
        raise ValueError(f"prompt_pixels must be in 0..{n} and needs a prompt, got {prompt_pixels!r}")

    device = next(model.parameters()).device
    u = torch.rand(batch, n, generator=torch.Generator().manual_seed(int(seed)))
    step = model.fast_sampler(y, batch) if fast else None
    if step is None:
        def step(x, t):
            return raster_logits(model(x, y))[:, t]

    values = torch.zeros(batch, n, dtype=torch.long)
    prob = torch.full((batch, n), math.nan)
    ent = torch.full((batch, n), math.nan)
    nll_nats = torch.zeros(batch)
    c, h, w = model.image_shape
    for t in range(n):
        x = from_raster(values, model.image_shape).to(device)
        logits = step(x, t).float().cpu()  # (b, K)
        dist = sampling_distribution(logits, temperature, top_k)
        chosen = prompt[:, t] if t < prompt_pixels else draw(dist, u[:, t])
        values[:, t] = chosen
        chosen = chosen[:, None]  # gather is several times cheaper than fancy indexing here
        prob[:, t] = dist.gather(1, chosen)[:, 0]
        ent[:, t] = entropy(dist)
        nll_nats -= logits.log_softmax(-1).gather(1, chosen)[:, 0]
        if (t + 1) % every == 0 or t == n - 1:
            yield Frame(image=from_raster(values, model.image_shape).clone(),
                        prob=from_raster(prob, model.image_shape).clone(),
                        entropy=from_raster(ent, model.image_shape).clone(),
                        dist=dist, nll_bits=nll_nats / math.log(2), index=t,
                        row=t // c // w, col=t // c % w, channel=t % c, done=t == n - 1)


def sample(model, labels=None, temperature=1.0, top_k=None, seed=0, **kwargs):
    """The finished images of :func:`sample_stream`: long levels ``[B, C, H, W]``."""
    frame = None
    for frame in sample_stream(model, labels, temperature, top_k, seed, every=model.num_pixels, **kwargs):
        pass
    return frame.image
