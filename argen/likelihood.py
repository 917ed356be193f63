"""Exact likelihood of values under an autoregressive model (one teacher-forced pass, no sampling)."""
import math

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def check_exact(model):
    if not model.exact_likelihood:
        raise ValueError(f"{type(model).__name__} has no exact likelihood: its logits are not conditionals in one "
                         f"fixed order, so their log-probabilities do not sum to log p(x)")


def nll(model, x, y=None):
    """Negative log-likelihood of each image in nats: ``[B]`` (differentiable; used for training)."""
    check_exact(model)
    if model.scores_values:  # the log-probabilities of the values alone, without all K logits
        return -model(x, y, at_values=True).flatten(1).sum(1)
    logits = model(x, y)  # (b, K, c, h, w)
    return F.cross_entropy(logits, x.long(), reduction="none").flatten(1).sum(1)


def bits_per_dim(nats, num_values):
    """Nats per image -> bits per value."""
    return nats / (num_values * math.log(2))


@torch.no_grad()
def dataset_nll(model, x, y=None, batch_size=250, progress=False, desc="nll"):
    """Mean NLL in nats/image over a whole set of values, in batches (no gradients)."""
    device = next(model.parameters()).device
    total = 0.0
    batches = range(0, x.shape[0], batch_size)
    for i in tqdm(batches, desc=desc, disable=not progress, leave=False):
        yb = None if y is None else y[i:i + batch_size].to(device)
        total += nll(model, x[i:i + batch_size].to(device), yb).double().sum().item()
    return total / x.shape[0]


@torch.no_grad()
def surprise_bits(model, x, y=None):
    """Per-value surprise ``-log2 p(x_i | x_<i, y)`` in bits: ``[B, c, h, w]``."""
    check_exact(model)
    logits = model(x, y)
    return F.cross_entropy(logits, x.long(), reduction="none") / math.log(2)


@torch.no_grad()
def class_posterior(model, x):
    """``p(class | image)`` ``[B, num_classes]`` by Bayes' rule over a class-conditional model
    with a uniform prior: softmax over classes of ``log p(image | class)``."""
    if not model.num_classes:
        raise ValueError("p(class | image) needs a class-conditional model; this one is unconditional")
    b = x.shape[0]
    classes = torch.arange(model.num_classes)
    log_likelihood = -nll(model, x.repeat_interleave(model.num_classes, 0), classes.repeat(b))
    return log_likelihood.reshape(b, model.num_classes).softmax(-1)
