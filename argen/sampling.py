"""One sampler for every model: it iterates a decoding schedule and streams frames as it goes.

Randomness is drawn up front: one uniform number per (image, value position) from ``seed``,
turned into a level by inverse-CDF sampling of the tempered, top-k filtered distribution. So the
same seed gives the same random numbers to any model (differences between models come from the
models alone), and the naive path (the whole network once per step) and a model's fast path give
the same samples. A schedule that draws its own random numbers (MaskGIT's Gumbel noise) takes them
from the same seeded generator, after the uniforms.

The steps run in ``torch.inference_mode`` (a step is dozens of operations on a few rows, and
autograd's bookkeeping of versions and views costs 7-12% of a guided image); the frames are made
outside it, so a caller gets ordinary tensors.
"""
import contextlib
import functools
import math
from dataclasses import dataclass, field

import torch

from .data import check_labels
from .schedules import from_raster, raster_logits, raster_values

MAX_IMAGES = 100


@dataclass
class Frame:
    """The state of a generation after a step of its schedule (all tensors on CPU, on the value grid)."""

    image: torch.Tensor  # (b, c, h, w) long values; 0 where not drawn
    drawn: torch.Tensor  # (b, c, h, w) bool: the values committed so far
    committed: torch.Tensor  # (b, c, h, w) bool: the values committed in this step (the app marks them)
    prob: torch.Tensor  # (b, c, h, w) probability of the chosen value; NaN where not drawn
    entropy: torch.Tensor  # (b, c, h, w) entropy in nats of the distribution it was drawn from; NaN where not drawn
    nll_bits: torch.Tensor  # (b,) -log2 p of the committed values under the model at temperature 1
    step: int  # index of this step in the schedule
    num_steps: int
    done: bool
    # (entropy [b, p], distribution [b, p, K], value [b, p], committed [b, p] or None: all) of the values
    # committed since the last frame, folded as it grows (see `fold`), from which `dist` is found when asked for
    window: list = field(default_factory=list, repr=False)
    schedule: object = field(default=None, repr=False)  # the decoding schedule of the run (its preview)

    @functools.cached_property
    def _peak(self):
        return fold(self.window)

    @property
    def dist(self):
        """``[b, K]``: the distribution of the most uncertain value committed since the last frame."""
        return self._peak[1][:, 0]

    @property
    def dist_value(self):
        """``[b]``: the value drawn from :attr:`dist`."""
        return self._peak[2][:, 0]

    @property
    def values_done(self):
        """Values committed so far in the first image."""
        return int(self.drawn[0].sum())


def check_sampling_args(model, temperature, top_k, every):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(f"every must be an integer >= 1 (steps per frame) or None (the last frame only), got {every!r}")
    if top_k is None:
        return model.levels
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= model.levels:
        raise ValueError(f"top_k must be an integer in 1..{model.levels} (or None for all), got {top_k!r}")
    return top_k


def check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2^63), got {seed!r}")
    return seed


def seeded_uniforms(seed, shape):
    """(uniforms in [0, 1) of ``shape``, the generator for later draws) of a seed in [0, 2^63).
    torch's CPU generator (a Mersenne Twister) keeps only the low 32 bits of a seed, so the high
    bits shift the uniforms by uniforms of their own, modulo 1 (a Cranley-Patterson rotation): a
    seed below 2^32 gives torch's own numbers, and seeds that share their low bits differ."""
    low, high = divmod(check_seed(seed), 2**32)[::-1]
    generator = torch.Generator().manual_seed(low)
    u = torch.rand(shape, generator=generator)
    if high:
        u = (u + torch.rand(shape, generator=torch.Generator().manual_seed(high))).remainder_(1.0)
    return u, generator


def requests(model, classes):
    """Sampler arguments for one image per entry of ``classes``: those labels for a class-conditional
    model, as many images for an unconditional one."""
    return {"labels": torch.as_tensor(classes).reshape(-1)} if model.num_classes else {"num_images": len(classes)}


def batch_labels(model, labels=None, num_images=None):
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
    return batch, check_labels(labels, model.num_classes, batch, model.null_class is not None)


def check_prompt(model, prompt, keep, batch):
    """(prompt values ``[B, n]`` in raster order or None, forced positions bool ``[n]``).
    ``keep`` is a number of leading raster values or a bool mask on the value grid ``[c, h, w]``."""
    n = model.num_values
    if prompt is None:
        if keep:
            raise ValueError(f"keep={keep!r} needs a prompt to keep values from")
        return None, torch.zeros(n, dtype=torch.bool)
    prompt = model.codec.check_values(prompt)
    if prompt.shape[0] != batch:
        raise ValueError(f"prompt holds {prompt.shape[0]} images for a batch of {batch}")
    if isinstance(keep, torch.Tensor) and keep.dtype == torch.bool:
        if tuple(keep.shape) != model.value_shape:
            raise ValueError(f"a keep mask must have the value grid's shape {model.value_shape}, got {tuple(keep.shape)}")
        forced = raster_values(keep[None])[0]
    elif isinstance(keep, int) and not isinstance(keep, bool) and 0 <= keep <= n:
        forced = torch.arange(n) < keep
    else:
        raise ValueError(f"keep must be a number of values in 0..{n} or a bool mask of shape {model.value_shape}, "
                         f"got {keep!r}")
    return raster_values(prompt), forced


def sampling_distribution(logits, temperature, top_k):
    """Softmax of ``logits / temperature`` restricted to the ``top_k`` largest: ``[..., K]``."""
    logits = logits.float() if temperature == 1 else logits.float() / temperature
    if top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    return logits.softmax(-1)


def entropy(probs):
    """Entropy in nats of each distribution in ``probs`` ``[..., K]``."""
    return -(probs * probs.clamp_min(1e-30).log()).sum(-1)


def draw(probs, u):
    """Inverse-CDF sampling: the level whose CDF interval holds ``u`` ``[...]`` in [0, 1)."""
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf, u[..., None] * cdf[..., -1:])[..., 0].clamp_max(probs.shape[-1] - 1)


WINDOW_STEPS = 64  # one-value steps are settled (and folded into the window) at least this often, so memory stays small


def fold(window):
    """The entries of a window of steps as one entry: each image's most uncertain committed value
    (its entropy ``[B, 1]``, distribution ``[B, 1, K]`` and value ``[B, 1]``, committed); where none
    was committed, entropy -1 and a zero distribution. A tie goes to the earliest value."""
    uncertainty = torch.cat([u if c is None else u.masked_fill(~c, -1.0) for u, _, _, c in window], 1)
    top, index = uncertainty.max(1)  # the first of equal maxima
    rows, none = torch.arange(len(top)), top < 0
    dist = torch.cat([d for _, d, _, _ in window], 1)[rows, index].masked_fill(none[:, None], 0)
    value = torch.cat([v for _, _, v, _ in window], 1)[rows, index].masked_fill(none, 0)
    return top.clamp_min(-1)[:, None], dist[:, None], value[:, None], None


def follows_own_schedule(model, schedule):
    """Whether ``schedule`` commits the values in the steps of the model's own schedule (one value a
    step in its order, or a scale a step), the steps a model's fast path is written for."""
    n = model.num_values
    steps, own = schedule.steps_of(n), model.schedule().steps_of(n)
    return steps is not None and own is not None and torch.equal(steps, own)


def predictor(model, y, batch, schedule, fast):
    """(``predict(x, drawn, at) -> logits [B, P, K]`` at raster positions ``at`` (a slice or a long
    tensor), whether it is a fast path): the model's fast path where it has one and the schedule
    follows the model's own steps, else the whole network once per step."""
    if y is not None:
        y = y.to(next(model.parameters()).device)
    step = model.fast_sampler(y, batch) if fast and follows_own_schedule(model, schedule) else None
    if step is not None:
        def fast_step(x, drawn, at):
            logits = step(x, at.start if isinstance(at, slice) else int(at[0]))
            return logits[:, None] if logits.dim() == 2 else logits
        return fast_step, True
    # a copy: the sampler may keep a step's logits until the next frame, and a view would keep the whole image's
    return (lambda x, drawn, at: raster_logits(model.predict(x, y, drawn))[:, at].clone()), False


ONE_THREAD_ROWS = 2  # a CPU fast path with at most this many rows per step (one image, guided or not) runs on one thread


def step_threads(fast_path, rows, device):
    """The torch CPU threads a sampling run's steps are fastest on: one for a fast path on the CPU
    with at most ``ONE_THREAD_ROWS`` rows (one image, guided or not, or two unguided), else the
    caller's. Such a step is dozens of products of a row or two, too small to split: handing them to
    a second thread costs more than it saves (``python -m argen.benchmark`` against
    ``--all-threads``, docs/results.md). The sampler itself sets no threads: a caller applies this
    rule (:func:`threads`) where it owns the process, as the benchmark and the evaluation do."""
    one = fast_path and rows <= ONE_THREAD_ROWS and device.type == "cpu"
    return 1 if one else torch.get_num_threads()


def set_threads(count):
    """``torch.set_num_threads(count)`` where it changes anything: the call also sets the count that
    threads starting their first parallel work take, so it is made no more than needed."""
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


@contextlib.contextmanager
def threads(count):
    """torch's CPU threads at ``count`` inside the block, the caller's count back after it: a
    caller's thread policy, for code that owns the process (the sampler sets none)."""
    before = torch.get_num_threads()
    set_threads(count)
    try:
        yield
    finally:
        set_threads(before)


def run_threads(model, images, guidance=None):
    """:func:`step_threads` for ``images`` images of ``model`` at ``guidance``: its fast path's rule
    (a step's rows: each image's runs times the values a step draws, a whole scale for VAR)."""
    guided = guidance is not None and guidance != 1
    runs = 1 if not guided else 2 if model.null_class is not None else model.num_classes  # see guidance_of
    per_step = model.num_values // model.schedule().num_steps(model.num_values)
    rows = images * runs * per_step
    return step_threads(model.has_fast_path, rows, next(model.parameters()).device)


def guidance_of(model, y, scale):
    """The guidance of a sampling run, or None (``scale`` None or 1): classifier-free for a model
    trained with a null class, else by the model's own Bayes classifier."""
    if scale is None:
        return None
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale < 0:
        raise ValueError(f"guidance must be a finite number >= 0 (1 = none), got {scale!r}")
    if scale == 1:
        return None
    if not model.can_guide:
        raise ValueError(f"guidance needs a class-conditional model with an exact likelihood or a null class; "
                         f"{type(model).__name__} here has num_classes={model.num_classes}, "
                         f"exact_likelihood={model.exact_likelihood}, null class={model.null_class}")
    return (ClassFreeGuidance if model.null_class is not None else BayesGuidance)(model, y, scale)


class BayesGuidance:
    """Guidance by the model's own Bayes classifier, which needs no retraining. Each image is run
    under every class in one batch; the log-likelihood of its prefix under each class gives
    p(class | prefix), and the class-free next-value distribution is the posterior-weighted mixture
    ``u = log sum_c p(c | prefix) p(value | prefix, c)``. Values are drawn from
    ``u + scale * (log p(value | prefix, y) - u)``: scale 1 is the model itself, larger scales push
    each value towards what tells the requested class apart (classifier-free guidance's formula,
    with the model's Bayes mixture as the class-free model)."""

    def __init__(self, model, y, scale):
        self.y, self.scale, self.classes = y, scale, model.num_classes
        self.run_labels = torch.arange(self.classes).repeat(len(y))  # image i under class c: row i * C + c
        self.log_prefix = torch.zeros(len(y), self.classes)  # log p(values so far | c)
        self.log_probs = None

    def logits(self, run_logits):
        """(logits to sample from, the model's log-probabilities under the requested class, up to a
        constant), each ``[B, P, K]``, from the run's logits ``[B * C, P, K]``."""
        b = len(self.y)
        self.log_probs = run_logits.log_softmax(-1).reshape(b, self.classes, *run_logits.shape[1:])
        conditional = self.log_probs[torch.arange(b), self.y]
        posterior = self.log_prefix.log_softmax(1)[:, :, None, None]
        mixture = (self.log_probs + posterior).logsumexp(1)
        return mixture + self.scale * (conditional - mixture), conditional

    def update(self, chosen, commit):
        """Add the committed values ``chosen`` ``[B, P]`` to every class's prefix log-likelihood."""
        index = chosen[:, None, :, None].expand(-1, self.classes, -1, 1)
        picked = self.log_probs.gather(-1, index)[..., 0]  # (b, C, p)
        if commit is not None:
            picked = picked * commit[:, None]
        self.log_prefix += picked.sum(-1)


class ClassFreeGuidance(BayesGuidance):
    """Classifier-free guidance (Ho & Salimans 2022) for a model trained with a null class: each
    image is run under its class and under the null class in one batch, and values are drawn from
    ``u + scale * (log p(value | prefix, y) - u)`` with ``u`` the null class's log-probabilities."""

    def __init__(self, model, y, scale):
        self.y, self.scale, self.classes = y, scale, 2
        self.run_labels = torch.stack([y, torch.full_like(y, model.null_class)], 1).flatten()  # rows 2i, 2i + 1

    def logits(self, run_logits):
        """(``free + scale * (conditional - free)``, the conditional logits): on the logits as they
        come, since each run's log-normaliser only shifts the guided logits by a constant, which
        the softmax drops (and the NLL normalises ``own`` itself)."""
        conditional, free = run_logits.reshape(len(self.y), 2, *run_logits.shape[1:]).unbind(1)
        return free.lerp(conditional, self.scale), conditional

    def update(self, chosen, commit):
        """Nothing to keep: the class-free model is the null class itself."""


@torch.no_grad()
def sample_stream(model, labels=None, temperature=1.0, top_k=None, seed=0, every=1, *, num_images=None,
                  prompt=None, keep=0, schedule=None, fast=True, guidance=None):
    """Generate images along a decoding schedule, yielding a :class:`Frame` every ``every`` steps
    (None: none before the last) and at the end.

    ``labels``: one class per image for a class-conditional model (a batch in one pass); an
    unconditional model takes ``num_images`` instead. ``prompt`` (values ``[B, c, h, w]``) with
    ``keep`` (a number of leading raster values, or a bool mask on the value grid) keeps those
    values of the prompt and samples the rest (completion). ``schedule`` defaults to the model's
    own (its order for an autoregressive model: another order draws each value from logits that
    may read values not drawn yet). ``fast`` uses the model's incremental path when it has one and the
    schedule follows the model's own order (same samples). ``guidance`` (a scale; None or 1 = none) steers a
    class-conditional model towards its labels (:func:`guidance_of`: classifier-free with a null
    class, else :class:`BayesGuidance`).
    """
    top_k = check_sampling_args(model, temperature, top_k, every)
    batch, y = batch_labels(model, labels, num_images)
    prompt, forced = check_prompt(model, prompt, keep, batch)
    schedule = schedule or model.schedule()
    n, shape = model.num_values, model.value_shape
    u, generator = seeded_uniforms(seed, (batch, n))
    device = next(model.parameters()).device
    guide = guidance_of(model, y, guidance)
    runs = 1 if guide is None else guide.classes  # runs of each image: row i * runs + r is image i
    with torch.inference_mode():  # the fast path's caches are only used by the steps (below)
        predict, _ = predictor(model, y if guide is None else guide.run_labels, batch * runs, schedule, fast)

    values = torch.zeros(batch, n, dtype=torch.long)
    drawn = torch.zeros(batch, n, dtype=torch.bool)
    prob = torch.full((batch, n), math.nan)
    ent = torch.full((batch, n), math.nan)
    nll_nats = torch.zeros(batch)
    window = []
    # the model reads views of the values drawn so far (one run per image, or per image and class when
    # guided) on its device, written in place as values are committed
    shared = runs == 1 and device.type == "cpu"
    run_values, run_drawn = (values, drawn) if shared else (
        values.repeat_interleave(runs, 0).to(device), drawn.repeat_interleave(runs, 0).to(device))
    x, mask = from_raster(run_values, shape), from_raster(run_drawn, shape)
    by_image = [t.view(batch, runs, n) for t in (run_values, run_drawn)]  # (b, runs, n) views

    def settle(at, dist, own, chosen, commit):
        """The bookkeeping of drawn proposals ``chosen`` ``[b, p]`` at raster positions ``at``: the
        probability and entropy maps, the NLL (from the model's own log-probabilities up to a
        constant, ``own``) and the window."""
        nonlocal window, nll_nats
        chosen_prob = dist.gather(-1, chosen[..., None])[..., 0]  # gather: several times cheaper than indexing
        uncertainty = entropy(dist)  # (b, p)
        log_p = own.log_softmax(-1).gather(-1, chosen[..., None])[..., 0]
        if commit is None:
            prob[:, at], ent[:, at] = chosen_prob, uncertainty
        else:
            prob[:, at] = torch.where(commit, chosen_prob, prob[:, at])
            ent[:, at] = torch.where(commit, uncertainty, ent[:, at])
            log_p = torch.where(commit, log_p, 0.0)
        nll_nats = nll_nats - log_p.sum(1)
        window.append((uncertainty, dist, chosen, commit))
        if len(window) > 1 or dist.shape[1] > 1:  # a window keeps its most uncertain value, so memory stays small
            window = [fold(window)]

    # A schedule with an order commits its one position at every step (it is not asked): the
    # bookkeeping of its steps waits for the next frame (at most WINDOW_STEPS steps), done for all
    # of them at once.
    one_at_a_time = schedule.order(n) is not None
    positions = torch.arange(n)
    pending = []  # (positions [1], distribution [b, 1, K], own log-probabilities [b, 1, K], value [b, 1]) not settled
    num_steps = schedule.num_steps(n)
    for step in range(num_steps):
        # a step's dozens of small operations skip autograd's bookkeeping (version counters, views);
        # the frames are made outside, so what a caller gets are ordinary tensors
        with torch.inference_mode():
            at = schedule.positions(step, n)  # raster positions (p of them): a slice or a long tensor
            logits = predict(x, mask, at).float().cpu()  # (b, p, K), or (b * C, p, K) when guided
            own = logits  # the model's own log-probabilities up to a constant, for the NLL: its logits unless guided
            if guide is not None:
                logits, own = guide.logits(logits)
            if one_at_a_time and own.shape[1] != 1:
                raise ValueError(f"a schedule with an order gives one position per step; {schedule!r} gave "
                                 f"{own.shape[1]} at step {step}")
            dist = sampling_distribution(logits, temperature, top_k)
            chosen = draw(dist, u[:, at])  # (b, p)
            forced_here = forced[at] if prompt is not None else None  # the kept values among the step's positions
            if forced_here is not None:
                chosen = torch.where(forced_here, prompt[:, at], chosen)
            commit = None
            if not one_at_a_time:
                confidence = dist.gather(-1, chosen[..., None])[..., 0]
                if forced_here is not None:
                    confidence = confidence.masked_fill(forced_here, math.inf)
                commit = schedule.commit(step, n, confidence, drawn[:, at], generator)  # (b, p) bool, or None: all
                if commit is not None and forced_here is not None:
                    commit = commit | (forced_here & ~drawn[:, at])  # kept values are committed first, all at once
            if guide is not None:
                guide.update(chosen, commit)
            if commit is None:
                values[:, at], drawn[:, at] = chosen, True
            else:
                values[:, at] = torch.where(commit, chosen, values[:, at])
                drawn[:, at] |= commit
            if not shared and commit is None:
                by_image[0][:, :, at], by_image[1][:, :, at] = chosen[:, None].to(device), True
            elif not shared:
                by_image[0][:, :, at], by_image[1][:, :, at] = values[:, None, at].to(device), drawn[:, None, at].to(device)
            if one_at_a_time:
                pending.append((positions[at], dist, own, chosen))
            else:
                settle(at, dist, own, chosen, commit)
            done = step == num_steps - 1
            frame = done or (every and (step + 1) % every == 0)
            if pending and (frame or len(pending) == WINDOW_STEPS):
                index, dists, owns, values_drawn = zip(*pending)
                settle(torch.cat(index), torch.cat(dists, 1), torch.cat(owns, 1), torch.cat(values_drawn, 1), None)
                pending = []
        if frame:
            now = torch.zeros(batch, n, dtype=torch.bool)
            now[:, at] = True if commit is None else commit
            yield Frame(image=from_raster(values, shape).clone(), drawn=from_raster(drawn, shape).clone(),
                        committed=from_raster(now, shape), prob=from_raster(prob, shape).clone(),
                        entropy=from_raster(ent, shape).clone(), nll_bits=nll_nats / math.log(2), step=step,
                        num_steps=num_steps, done=done, schedule=schedule,
                        window=[tuple(None if t is None else t.clone() for t in entry) for entry in window])
            window = []


def sample(model, labels=None, temperature=1.0, top_k=None, seed=0, **kwargs):
    """The finished values of :func:`sample_stream`: long ``[B, c, h, w]``."""
    frame = None
    for frame in sample_stream(model, labels, temperature, top_k, seed, every=None, **kwargs):
        pass
    return frame.image
