"""The contract every argen generative model follows.

A model is an ``nn.Module`` over a grid of integer values ``[B, c, h, w]`` in ``[0, K)``, built
from a config dataclass (the single source of its defaults; see :mod:`argen.configs`):

- ``codec`` (:mod:`.codecs`) converts 8-bit pictures to the model's values and back, and says what
  a value is (a grey level, a binary pixel, an RGB channel level, a BSQ token); ``levels`` (K),
  ``value_shape`` and ``num_values`` come from it; ``num_classes`` (0 = unconditional);
- a teacher-forced ``forward(x, y=None)`` returns logits ``[B, K, c, h, w]`` for every value at
  once. For an autoregressive model (``exact_likelihood``) the logits of a value depend only on
  the values before it in its schedule's order (raster order: row by row, left to right, channels
  in order; the multi-scale PixelRNN's is coarse-to-fine) and on the class, so the sum of their
  log-probabilities is the exact likelihood;
- ``schedule()``: the decoding order the sampler follows by default (raster order here), and
  ``predict(x, y, drawn)``: the logits given the values drawn so far (``forward`` here);
- optionally ``scores_values``: ``forward(x, y, at_values=True)`` gives the log-probabilities of
  the values ``x`` alone ``[B, c, h, w]``, for a model whose K logits cost far more than that
  (a mixture of logistics); the likelihood and training use it;
- optionally ``fast_sampler(y, batch)``: a callable ``step(x, t) -> logits`` for the step of
  ``schedule()`` whose first raster position is ``t`` (``[B, K]`` for a one-value step, ``[B, P, K]``
  for a step of P values, a scale of VAR's pyramid) that reuses work from earlier steps, called in
  the order of the steps. It must give the logits of the naive path.

Sampling, likelihood, training, evaluation and the app are written once against this contract.
"""
import re
import sys
from dataclasses import dataclass, field

import torch
from torch import nn

from ..configs import Configured
from ..data import MAX_LEVELS, NUM_CLASSES, check_labels, get_dataset
from ..schedules import Raster
from .codecs import Codec, Levels, build_codec


FAMILIES = {}  # model_type -> class: what argen.load can build from a config.json


def register(family):
    """Class decorator: make a family loadable by its ``model_type``."""
    if family.model_type in FAMILIES and FAMILIES[family.model_type] is not family:
        raise ValueError(f"model_type {family.model_type!r} is already registered to {FAMILIES[family.model_type]}")
    FAMILIES[family.model_type] = family
    return family


def levels_codec(levels=MAX_LEVELS):
    """The spec of a grey-level codec on MNIST-sized pictures: a config's default codec."""
    return field(default_factory=lambda: Levels(levels).spec)


@dataclass
class ModelConfig:
    """The fields every family has: its codec's spec, its number of classes, the dataset it learns
    from and that dataset's class names (what the app's class picker shows)."""

    codec: dict = levels_codec()
    num_classes: int = NUM_CLASSES  # 0 = unconditional
    dataset: str = "mnist"
    class_names: list | None = None  # None: the dataset's
    class_dropout: float = 0.0  # > 0: training hides the class of this fraction of images behind a learned
    # null class (index num_classes), which classifier-free guidance samples from (Ho & Salimans 2022)

    def __post_init__(self):
        if isinstance(self.codec, Codec):
            self.codec = self.codec.spec
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"num_classes must be an integer >= 0 (0 = unconditional), got {self.num_classes!r}")
        dataset = get_dataset(self.dataset)
        if self.class_names is None:
            names = dataset.class_names
            self.class_names = list(names if self.num_classes in (0, len(names)) else map(str, range(self.num_classes)))
        self.class_names = list(self.class_names)
        if self.num_classes and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names must name the {self.num_classes} classes, got {len(self.class_names)} names")
        if isinstance(self.class_dropout, bool) or not isinstance(self.class_dropout, (int, float)) \
                or not 0 <= self.class_dropout < 1 or (self.class_dropout and not self.num_classes):
            raise ValueError(f"class_dropout must be in [0, 1), and 0 for an unconditional model; got "
                             f"{self.class_dropout!r} with num_classes={self.num_classes}")


class GenerativeModel(Configured, nn.Module):
    exact_likelihood = True  # the model gives log p(x) exactly (autoregressive in its schedule's order)
    scores_values = False  # forward(x, y, at_values=True) gives log p of the values alone

    def __init__(self, config=None, **overrides):
        super().__init__()
        self.config = self.resolve_config(config, overrides)
        self.codec = build_codec(self.config.codec)
        self.num_classes = self.config.num_classes

    @property
    def null_class(self):
        """The label of the learned null class (no class: num_classes), or None when it has none."""
        return self.num_classes if self.config.class_dropout else None

    @property
    def label_count(self):
        """How many labels the class embedding holds: the classes, and the null class if any."""
        return self.num_classes + (self.null_class is not None)

    def start_labels(self, y, batch, device):
        """The labels a start token is looked up by: ``y``, or label 0 for every image of an
        unconditional model (one learned start token)."""
        return y if y is not None else torch.zeros(batch, dtype=torch.long, device=device)

    @property
    def can_guide(self):
        """Whether sampling takes ``guidance``: classifier-free with a null class, else by the model's
        own Bayes classifier, which needs an exact likelihood; both need classes."""
        return bool(self.num_classes) and (self.null_class is not None or self.exact_likelihood)

    @property
    def levels(self):
        return self.codec.levels

    @property
    def value_shape(self):
        """(c, h, w) of the model's value grid."""
        return self.codec.value_shape

    @property
    def num_values(self):
        """Number of values per image (c * h * w): the steps of a raster generation."""
        return self.codec.num_values

    def require_grey(self):
        """Raise unless the value grid has one channel (the families without colour groups)."""
        if self.value_shape[0] != 1:
            raise ValueError(f"{type(self).__name__} models one channel (C = 1), got a value grid of {self.value_shape}")

    def check_input(self, x, y=None):
        """Validated ``(x long [B, c, h, w], y long [B] or None)``; raises ValueError otherwise."""
        x = self.codec.check_values(x)
        return x, check_labels(y, self.num_classes, x.shape[0], self.null_class is not None)

    def predict(self, x, y, drawn):
        """Logits ``[B, K, c, h, w]`` of every value given the values drawn so far (``drawn``, bool
        like ``x``): what the sampler's naive path asks. An autoregressive model needs no mask (a
        value's logits never see later values); a masked model (MaskGIT) hides the undrawn ones."""
        return self(x, y)

    def schedule(self):
        """The decoding schedule the sampler follows unless told otherwise."""
        return Raster()

    def fast_sampler(self, y, batch):
        """An incremental ``step(x, t) -> logits`` (see the module's docstring), or None when the model has none. The
        sampler may keep a step's logits until its next frame, so a step returns a tensor of its
        own, never a buffer that a later step writes."""
        return None

    @property
    def has_fast_path(self):
        """Whether the model overrides :meth:`fast_sampler` with an incremental path."""
        return type(self).fast_sampler is not GenerativeModel.fast_sampler

    @property
    def summary(self):
        """One line for a model picker: the first line of the class docstring."""
        return (self.__class__.__doc__ or self.__class__.__name__).strip().split("\n")[0]

    @property
    def about(self):
        """What the model is and which paper it follows: its module's docstring, its Sphinx
        cross-references (:class:`~a.B`) written as Markdown code (`B`) for the app."""
        text = (sys.modules[self.__class__.__module__].__doc__ or "").strip()
        return re.sub(r":(?:class|func|meth|mod):`(~?)([^`]+)`",
                      lambda m: f"`{m[2].split('.')[-1] if m[1] else m[2]}`", text)
