"""Lossless compression with an exact model: the likelihood is a file size.

An autoregressive model that gives a picture N bits can store it in about N bits: a range coder
(``constriction``'s, Bamler 2022) spends ``-log2 p`` bits on each value, with ``p`` the model's
probability of that value given the values before it. This is what such models do beyond drawing
(L3C, BB-ANS, "Language Modeling Is Compression", Delétang et al. 2023).

    data = compress(model, pictures)            # bytes: header + range-coded values + checksum
    pictures = decompress(data)                 # the model is loaded by the name in the header

The encoder and the decoder walk the model's schedule with the same incremental path, the same
batch of pictures, thread count and dtype, and turn each distribution into the coder's integers the
same way, so both see bit-identical probabilities (a single differing bit would garble every later
value). Every value keeps a nonzero quantized probability, so any picture can be stored.

What is stored is the model's values: a codec that loses information on the way in (fewer than
256 grey levels, binarization, BSQ tokens) makes the file lossless over those values, and
:func:`picture_error` says how far its picture is from the input. The class of each picture is
stored too, each at ``log2(classes)`` bits: the class given, else the one the model finds most
probable (so a file costs about its best class's NLL).

The file: ``MAGIC``, the format version, a header (the model's name and a hash of its weights,
the picture count and shape, the batch and thread count the coder ran with), the coded words, and
a CRC-32 of everything before it. A file made by other weights, a truncated or corrupted file,
gives a clear error, never wrong pictures.
"""
import hashlib
import math
import struct
import zlib
from dataclasses import dataclass

import constriction
import numpy as np
import torch

from .likelihood import check_exact, class_posterior
from .sampling import ONE_THREAD_ROWS, predictor, set_threads
from .schedules import from_raster, raster_values

MAGIC = b"ARGEN"
FORMAT_VERSION = 1
SUFFIX = ".argen"
BATCH = 100  # pictures coded together (one run of the model's steps); the decoder runs the same batches
HASH_BYTES = 8
HEADER = struct.Struct(f"<B{HASH_BYTES}sIHHHHBB")  # name length, weights hash, count, C, H, W, batch, threads, flags
HAS_CLASSES = 1


class CompressionError(ValueError):
    """A file that cannot be decompressed (truncated, corrupted, made by other weights), or input that
    cannot be compressed."""


def weights_hash(model):
    """The first bytes of a SHA-256 over the model's weights (names, shapes and values, in order)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.digest()[:HASH_BYTES]


def check_compressible(model):
    """Raise unless the model gives an exact likelihood along a fixed order (a value per step, or a
    scale of a pyramid per step, its values independent given the earlier steps)."""
    try:
        check_exact(model)
    except ValueError as error:
        raise CompressionError(f"cannot compress with {type(model).__name__}: {error}") from None
    if model.schedule().steps_of(model.num_values) is None:
        raise CompressionError(f"cannot compress with {type(model).__name__}: its schedule has no fixed order, so its "
                               f"distributions are not conditionals in one order")


def probabilities(logits):
    """The coder's probabilities ``float32 [..., K]`` from logits ``[..., K]``: a float32 softmax, so that
    encoder and decoder, given the same logits, hand the coder the same numbers."""
    return logits.float().softmax(-1).numpy()


@dataclass
class Walk:
    """The model's incremental path over one batch of pictures, step by step in its schedule's order:
    :meth:`next` gives the distributions of the next step's values (one, or a scale of a pyramid),
    :meth:`put` commits the values there."""

    model: torch.nn.Module
    labels: torch.Tensor | None
    batch: int

    def __post_init__(self):
        model, n = self.model, self.model.num_values
        self.schedule = model.schedule()
        self.steps = [self.schedule.positions(step, n) for step in range(self.schedule.num_steps(n))]
        self.raster = [torch.arange(n)[at].tolist() for at in self.steps]  # each step's raster positions
        self.values = torch.zeros(self.batch, n, dtype=torch.long)
        self.drawn = torch.zeros(self.batch, n, dtype=torch.bool)
        self.x, self.mask = from_raster(self.values, model.value_shape), from_raster(self.drawn, model.value_shape)
        self.written = (self.values.numpy(), self.drawn.numpy())  # numpy views: cheaper to write a few values into
        with torch.inference_mode():  # the model's own schedule: its fast path where it has one
            self.predict, _ = predictor(model, self.labels, self.batch, self.schedule, fast=True)
        self.step = 0

    def __len__(self):
        return len(self.steps)

    def next(self):
        """(the next step's raster positions, their probabilities ``float32 [B, P, K]``), in inference mode."""
        logits = self.predict(self.x, self.mask, self.steps[self.step])
        return self.raster[self.step], probabilities(logits)

    def put(self, positions, values):
        """Commit ``values`` (int ``[B, P]``) at raster ``positions``."""
        self.written[0][:, positions] = values
        self.written[1][:, positions] = True
        self.step += 1


@dataclass
class Encoded:
    """What :func:`encode` made: the file, and what each value cost."""

    data: bytes
    bits: torch.Tensor  # (b, c, h, w) -log2 p of each value under the distribution handed to the coder: the surprise map
    classes: torch.Tensor | None  # (b,) the class each picture was coded under

    @property
    def payload_bytes(self):
        """The file's size less the header and checksum: the range-coded values."""
        return len(self.data) - header_size(self.data)


def header_size(data):
    """Bytes of ``data`` that are not coded values: magic, version, header, name, word count and checksum."""
    name_length = data[len(MAGIC) + 1]
    return len(MAGIC) + 1 + HEADER.size + name_length + 4 + 4


def check_pictures(model, pictures):
    if not isinstance(pictures, torch.Tensor) or pictures.dtype != torch.uint8 or pictures.dim() != 4 \
            or tuple(pictures.shape[1:]) != model.codec.picture_shape or not len(pictures):
        shape = tuple(pictures.shape) if isinstance(pictures, torch.Tensor) else type(pictures).__name__
        dtype = pictures.dtype if isinstance(pictures, torch.Tensor) else ""
        raise CompressionError(f"pictures must be uint8 [B, {', '.join(map(str, model.codec.picture_shape))}] with "
                               f"B >= 1 for this model, got {shape} {dtype}".rstrip())
    if len(pictures) >= 2**32:
        raise CompressionError(f"at most {2**32 - 1} pictures per file, got {len(pictures)}")
    return pictures


def coded_classes(model, values, classes):
    """The class each picture is coded under (None for an unconditional model): ``classes`` where
    given, else the most probable class by the model's Bayes rule."""
    if not model.num_classes:
        if classes is not None:
            raise CompressionError("this model is unconditional: pass classes=None")
        return None
    if classes is None:
        with torch.no_grad():
            return torch.cat([class_posterior(model, values[i:i + BATCH]).argmax(-1)
                              for i in range(0, len(values), BATCH)])
    classes = torch.as_tensor(classes)
    if classes.dtype.is_floating_point or classes.dtype == torch.bool or classes.numel() != len(values) \
            or classes.numel() and (classes.min() < 0 or classes.max() >= model.num_classes):
        raise CompressionError(f"classes must be {len(values)} integers in [0, {model.num_classes}) (one per picture), "
                               f"got {classes.tolist()!r}")
    return classes.long().reshape(-1)


def batches(count, batch):
    return [(i, min(i + batch, count)) for i in range(0, count, batch)]


def run_coder(model, count, classes, threads, code_value):
    """Walk the model over ``count`` pictures in batches of :data:`BATCH` on ``threads`` threads (one
    for a batch small enough, the sampler's rule), calling ``code_value(start, stop, position,
    probabilities [b, K]) -> values [b]`` for each value, in raster order within a step."""
    caller = torch.get_num_threads()
    try:
        for start, stop in batches(count, BATCH):
            set_threads(1 if model.has_fast_path and stop - start <= ONE_THREAD_ROWS else threads)
            walk = Walk(model, None if classes is None else classes[start:stop], stop - start)
            with torch.inference_mode():  # dozens of small operations a step: no autograd bookkeeping
                for _ in range(len(walk)):
                    positions, probs = walk.next()
                    walk.put(positions, np.stack([code_value(start, stop, position, np.ascontiguousarray(probs[:, i]))
                                                  for i, position in enumerate(positions)], 1))
    finally:
        set_threads(caller)


def encode(model, pictures, classes=None, name=None):
    """Compress uint8 ``pictures`` ``[B, C, H, W]`` with ``model``: an :class:`Encoded` with the file
    bytes and the bits each value cost. ``name`` (default: the name :func:`argen.load` gave the model)
    is what :func:`decompress` loads."""
    check_compressible(model)
    pictures = check_pictures(model, pictures)
    name = name if name is not None else getattr(model, "name", "")
    if len(name.encode()) > 255:
        raise CompressionError(f"a model name is at most 255 bytes, got {name!r}")
    encoded = model.codec.encode(pictures)
    values = raster_values(encoded).numpy()  # (b, n)
    classes = coded_classes(model, encoded, classes)
    threads = torch.get_num_threads()
    if threads > 255:
        raise CompressionError(f"the coder runs on at most 255 threads, torch has {threads}")
    coder = constriction.stream.queue.RangeEncoder()
    categorical = constriction.stream.model.Categorical(perfect=False)
    if classes is not None:
        coder.encode(classes.numpy().astype(np.int32), categorical, uniform(model.num_classes, len(classes)))
    bits = np.zeros(values.shape)

    def code_value(start, stop, position, probs):
        chosen = values[start:stop, position]
        coder.encode(chosen.astype(np.int32), categorical, probs)
        bits[start:stop, position] = -np.log2(probs[np.arange(len(chosen)), chosen] / probs.sum(-1))
        return chosen

    run_coder(model, len(values), classes, threads, code_value)
    words = coder.get_compressed()
    data = pack(name, weights_hash(model), pictures.shape, threads, classes is not None, words)
    return Encoded(data, from_raster(torch.from_numpy(bits), model.value_shape).float(), classes)


def compress(model, pictures, classes=None):
    """uint8 ``pictures`` ``[B, C, H, W]`` -> the bytes of an ``.argen`` file (see :func:`encode`)."""
    return encode(model, pictures, classes).data


def uniform(count, rows):
    return np.ones((rows, count), np.float64)


def pack(name, digest, shape, threads, has_classes, words):
    name = name.encode()
    body = (MAGIC + bytes([FORMAT_VERSION])
            + HEADER.pack(len(name), digest, shape[0], *shape[1:], BATCH, threads, HAS_CLASSES * has_classes)
            + name + struct.pack("<I", len(words)) + words.astype("<u4").tobytes())
    return body + struct.pack("<I", zlib.crc32(body))


@dataclass
class Header:
    """What an ``.argen`` file says about itself."""

    name: str
    weights: bytes
    count: int
    shape: tuple  # (C, H, W) of the pictures
    batch: int
    threads: int
    has_classes: bool
    words: np.ndarray  # the range coder's uint32 words


def read_header(data):
    """The :class:`Header` of an ``.argen`` file's bytes; a clear error for anything else."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CompressionError(f"expected the bytes of an {SUFFIX} file, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise CompressionError(f"the file is empty, not an {SUFFIX} file")
    if not data.startswith(MAGIC):
        raise CompressionError(f"not an {SUFFIX} file: it does not start with {MAGIC!r}")
    version = data[len(MAGIC)] if len(data) > len(MAGIC) else None
    if version != FORMAT_VERSION:
        raise CompressionError(f"unsupported {SUFFIX} format version {version}; this argen reads version "
                               f"{FORMAT_VERSION}")
    start = len(MAGIC) + 1
    if len(data) < start + HEADER.size + 8:
        raise CompressionError(f"the file is truncated: {len(data)} bytes, shorter than any {SUFFIX} file")
    body, (checksum,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) != checksum:
        raise CompressionError("the file is corrupted or truncated: its checksum does not match its contents")
    name_length, digest, count, *shape, batch, threads, flags = HEADER.unpack_from(data, start)
    at = start + HEADER.size
    name = data[at:at + name_length].decode()
    (num_words,) = struct.unpack_from("<I", data, at + name_length)
    words = np.frombuffer(body, "<u4", offset=at + name_length + 4)
    if len(words) != num_words or batch < 1 or threads < 1:
        raise CompressionError("the file is corrupted: its header does not match its length")
    return Header(name, digest, count, tuple(shape), batch, threads, bool(flags & HAS_CLASSES),
                  words.astype(np.uint32))


def model_of(header, model=None):
    """The model to decode a file with: ``model``, else the shipped model the header names."""
    if model is not None:
        return model
    if not header.name:
        raise CompressionError("the file names no model: pass the model it was made with")
    from .hub import load  # the hub reads the weights folder; the coder itself needs none

    return load(header.name)


def decode(data, model=None):
    """(values long ``[B, c, h, w]``, classes ``[B]`` or None, the model) of an ``.argen`` file; ``model``
    defaults to the shipped model its header names."""
    header = read_header(data)
    model = model_of(header, model)
    check_compressible(model)
    if weights_hash(model) != header.weights:
        raise CompressionError(f"the file was made by other weights than this model's "
                               f"({getattr(model, 'name', '') or type(model).__name__}, named in the file: "
                               f"{header.name!r}): it can only be decompressed with the model that made it")
    if header.shape != model.codec.picture_shape or header.batch != BATCH:
        raise CompressionError(f"the file holds pictures of shape {header.shape} coded in batches of {header.batch}; "
                               f"this model takes {model.codec.picture_shape} in batches of {BATCH}")
    if header.has_classes != bool(model.num_classes):
        raise CompressionError("the file's classes do not fit the model: made with another model")
    coder = constriction.stream.queue.RangeDecoder(header.words)
    categorical = constriction.stream.model.Categorical(perfect=False)
    classes = None
    if header.has_classes:
        classes = torch.from_numpy(coder.decode(categorical, uniform(model.num_classes, header.count)).astype(np.int64))
    values = np.zeros((header.count, model.num_values), np.int64)

    def code_value(start, stop, position, probs):
        values[start:stop, position] = coder.decode(categorical, probs)
        return values[start:stop, position]

    run_coder(model, header.count, classes, header.threads, code_value)
    return from_raster(torch.from_numpy(values), model.value_shape).contiguous(), classes, model


def decompress(data, model=None):
    """The uint8 pictures ``[B, C, H, W]`` of an ``.argen`` file (exactly the input where the model's
    codec is lossless; else its picture of the stored values, see :func:`picture_error`)."""
    values, _, model = decode(data, model)
    with torch.no_grad():
        return model.codec.decode(values)


def picture_error(model, pictures):
    """(largest absolute difference, PSNR in dB; inf when equal) between uint8 ``pictures`` and what the
    model's codec gives back: what a file loses on the way in, before the coder."""
    with torch.no_grad():
        back = model.codec.decode(model.codec.encode(pictures))
    difference = back.float() - pictures.float()
    mse = float(difference.pow(2).mean())
    return int(difference.abs().max()), math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def classical_sizes(pictures):
    """Bytes of each uint8 picture ``[B, C, H, W]`` stored alone by the classical lossless formats:
    ``{format: [sizes]}`` for PNG (optimized) and WebP lossless (Pillow), JPEG XL lossless (effort 9,
    where ``imagecodecs`` is installed) and lzma of the raw bytes."""
    import io
    import lzma

    from PIL import Image

    arrays = [p[0] if p.shape[0] == 1 else p.transpose(1, 2, 0) for p in pictures.numpy()]

    def saved(array, **options):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, **options)
        return len(buffer.getvalue())

    sizes = {"PNG (optimize)": [saved(a, format="png", optimize=True) for a in arrays],
             "WebP lossless": [saved(a, format="webp", lossless=True, quality=100, method=6) for a in arrays]}
    try:
        import imagecodecs
    except ImportError:
        imagecodecs = None
    if imagecodecs is not None and imagecodecs.JPEGXL.available:
        sizes["JPEG XL lossless"] = [len(imagecodecs.jpegxl_encode(a, lossless=True, effort=9)) for a in arrays]
    sizes["lzma"] = [len(lzma.compress(a.tobytes(), preset=9 | lzma.PRESET_EXTREME)) for a in arrays]
    return sizes


def read_pictures(paths, shape):
    """uint8 pictures ``[B, C, H, W]`` from image files of ``shape`` (C, H, W): grey for C = 1, RGB for C = 3."""
    from PIL import Image, UnidentifiedImageError

    mode = {1: "L", 3: "RGB"}[shape[0]]
    pictures = []
    for path in paths:
        try:
            with Image.open(path) as image:
                picture = np.asarray(image.convert(mode))
        except (UnidentifiedImageError, OSError) as error:
            raise CompressionError(f"{path}: not a picture this machine can read ({error})") from None
        if picture.shape[:2] != tuple(shape[1:]):
            raise CompressionError(f"{path}: the model takes {shape[1]} x {shape[2]} pictures, got "
                                   f"{picture.shape[0]} x {picture.shape[1]}")
        pictures.append(torch.from_numpy(picture.reshape(*picture.shape[:2], -1).transpose(2, 0, 1).copy()))
    return torch.stack(pictures)


def write_atomic_bytes(path, data):
    """Write ``data`` to a temporary file beside ``path``, then rename it: no half-written file."""
    from pathlib import Path

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def describe(model, pictures, encoded):
    """What a file holds, for people: its size against the model's NLL, and what the codec lost."""
    count, payload = len(pictures), encoded.payload_bytes
    text = (f"{count} picture{'s' * (count > 1)} in {len(encoded.data)} bytes ({payload} of coded values, "
            f"{len(encoded.data) - payload} of header): {8 * payload / count / model.num_values:.4f} bits per "
            f"{model.codec.unit} against the model's {float(encoded.bits.sum()) / count / model.num_values:.4f}")
    largest, psnr = picture_error(model, pictures)
    if largest:
        text += (f"\nlossless over the model's values ({model.codec.kind}, {model.levels} values per "
                 f"{model.codec.unit}), not over the pictures: they come back within {largest} grey levels "
                 f"(PSNR {psnr:.1f} dB)")
    return text


def compress_main(argv=None):
    """``python -m argen.compress MODEL picture.png ... -o file.argen [--classes 7 3 ...]``."""
    import argparse

    from .hub import load

    parser = argparse.ArgumentParser(prog="python -m argen.compress",
                                     description="Store pictures losslessly in about the bits a model gives them.")
    parser.add_argument("model", help="a shipped model with an exact likelihood (python -c 'import argen; "
                                      "print(argen.available())')")
    parser.add_argument("pictures", nargs="+", help="picture files (PNG, ...) of the model's size")
    parser.add_argument("-o", "--output", required=True, help=f"the {SUFFIX} file to write")
    parser.add_argument("--classes", type=int, nargs="+", help="one class per picture (default: the most probable)")
    args = parser.parse_args(argv)
    try:
        model = load(args.model)
        pictures = read_pictures(args.pictures, model.codec.picture_shape)
        encoded = encode(model, pictures, args.classes, name=args.model)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    write_atomic_bytes(args.output, encoded.data)
    print(f"wrote {args.output}: {describe(model, pictures, encoded)}")


def decompress_main(argv=None):
    """``python -m argen.decompress file.argen -o folder/``: one PNG per picture."""
    import argparse
    from pathlib import Path

    from PIL import Image

    parser = argparse.ArgumentParser(prog="python -m argen.decompress",
                                     description=f"Restore the pictures of an {SUFFIX} file as PNGs.")
    parser.add_argument("file", help=f"an {SUFFIX} file made by python -m argen.compress")
    parser.add_argument("-o", "--output", required=True, help="the folder to write 0000.png, 0001.png, ... into")
    args = parser.parse_args(argv)
    try:
        data = Path(args.file).read_bytes()
        pictures = decompress(data)
    except (OSError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    for i, picture in enumerate(pictures.numpy()):
        tmp = folder / f"{i:04d}.png.tmp"
        Image.fromarray(picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)).save(tmp, format="png")
        tmp.replace(folder / f"{i:04d}.png")
    print(f"wrote {len(pictures)} picture{'s' * (len(pictures) > 1)} to {folder}/ (model {read_header(data).name})")
