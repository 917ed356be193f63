"""argen: watch autoregressive image models draw.

    import argen
    model = argen.load("mlp-v3")
    for frame in argen.sample_stream(model, labels=[7], seed=0, every=28):
        ...  # frame.image, frame.prob, frame.entropy, frame.dist
"""
from .hub import available, load
from .likelihood import bits_per_dim, nll
from .sampling import Frame, sample, sample_stream

__all__ = ["Frame", "available", "bits_per_dim", "load", "nll", "sample", "sample_stream"]
