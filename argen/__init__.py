"""argen: watch autoregressive image models draw.

    import argen
    model = argen.load("mlp-v3")
    for frame in argen.generate(model, classes=[7], seed=0, every=28):
        ...  # frame.image, frame.drawn, frame.prob, frame.entropy, frame.dist
    pictures = model.codec.decode(frame.image)
    data = argen.compress(model, pictures)  # bytes: about the bits the model gives the pictures
"""
__version__ = "0.5.0"  # as in pyproject.toml

from .compression import compress, decompress
from .hub import available, load
from .likelihood import bits_per_dim, nll
from .pipelines import compare, complete, generate, score
from .sampling import Frame, sample, sample_stream
from .schedules import Confidence, Raster

__all__ = ["Confidence", "Frame", "Raster", "available", "bits_per_dim", "compare", "complete", "compress", "decompress", "generate", "load",
           "nll", "sample", "sample_stream", "score"]
