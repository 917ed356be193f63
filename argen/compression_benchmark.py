"""File sizes of the exact models against classical lossless codecs (figures, not assertions).

    python -m argen.compression_benchmark --data-dir ../shared/data                     # MNIST, all 10,000
    python -m argen.compression_benchmark --count 1000 pixel-gpt gated-pixelcnn-binary
    python -m argen.compression_benchmark --dataset games --data-dir data --count 200
    python -m argen.compression_benchmark --one pixel-gpt --data-dir ../shared/data      # decode vs sample one

For the first ``--count`` test pictures of a dataset: bytes per picture of PNG (optimized) and WebP
lossless (Pillow), JPEG XL lossless (``imagecodecs``, effort 9; each picture its own file) and of lzma
(each picture alone, and the whole set as one stream); then, for each exact shipped model of the
dataset (or the models named), the ``.argen`` file of the whole set per picture, its overhead
over the model's own bits (the ideal code length, class included), the seconds per picture to
encode and to decode on ``--threads`` threads, and whether every picture came back exactly (the
model's values; for a lossy codec the PSNR of its pictures).
"""
import argparse
import lzma
import math
import time

import torch

from . import compression
from .data import get_dataset, load_dataset
from .hub import available, load


def classical_sizes(pictures):
    """Mean bytes per picture of each classical lossless format, and lzma over the whole set."""
    sizes = {name: sum(each) / len(each) for name, each in compression.classical_sizes(pictures).items()}
    sizes["lzma (whole set)"] = len(lzma.compress(pictures.numpy().tobytes(), preset=9 | lzma.PRESET_EXTREME)) \
        / len(pictures)
    return sizes


def model_row(name, pictures, labels):
    """One model's figures on the pictures (coded under their own labels)."""
    model = load(name)
    classes = labels if model.num_classes else None
    started = time.perf_counter()
    encoded = compression.encode(model, pictures, classes, name=name)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    values, _, _ = compression.decode(encoded.data, model)
    decode_s = time.perf_counter() - started
    exact = torch.equal(values, model.codec.encode(pictures))
    count = len(pictures)
    ideal = (float(encoded.bits.sum()) + (count * math.log2(model.num_classes) if classes is not None else 0)) / 8
    _, psnr = compression.picture_error(model, pictures)
    return {"bytes": len(encoded.data) / count, "ideal": ideal / count,
            "overhead": (encoded.payload_bytes - ideal) / ideal, "header": len(encoded.data) - encoded.payload_bytes,
            "encode": encode_s / count, "decode": decode_s / count, "exact": exact, "psnr": psnr}


def one_picture_seconds(name, picture, label, repeats=3):
    """(seconds to sample one picture, seconds to decode one stored picture) with the same model, the
    best of ``repeats`` runs each, interleaved so both meet the same machine."""
    from .sampling import requests, sample

    model = load(name)
    classes = label[None] if model.num_classes else None
    data = compression.compress(model, picture[None], classes)
    best_sample = best_decode = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        sample(model, seed=0, **requests(model, [int(label)]))
        best_sample = min(best_sample, time.perf_counter() - started)
        started = time.perf_counter()
        compression.decode(data, model)
        best_decode = min(best_decode, time.perf_counter() - started)
    return best_sample, best_decode


def exact_models(dataset):
    names = []
    for name in available():
        model = load(name)
        if model.config.dataset == dataset and model.exact_likelihood:
            names.append(name)
    return names


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m argen.compression_benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="models (default: every exact shipped model of the dataset)")
    parser.add_argument("--dataset", default="mnist", help="mnist, games (32 x 32) or games-96x128")
    parser.add_argument("--data-dir", default=None, help="where the dataset lives (as for training)")
    parser.add_argument("--count", type=int, default=10_000, help="the first this many test pictures")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--one", action="store_true",
                        help="only time one picture: sampling it against decoding it (the best of 3, interleaved)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    get_dataset(args.dataset)
    images, labels = load_dataset(args.dataset, "test", args.data_dir)
    pictures, labels = images[:args.count], labels[:args.count]
    if args.one:
        for name in args.names or exact_models(args.dataset):
            sampled, decoded = one_picture_seconds(name, pictures[0], labels[0])
            print(f"{name:22s} one picture: sample {sampled:.3f} s, decode {decoded:.3f} s", flush=True)
        return
    count = len(pictures)
    print(f"{args.dataset}: the first {count} test pictures, {tuple(pictures.shape[1:])}, raw "
          f"{pictures[0].numel()} bytes each; bytes per picture:")
    classical = classical_sizes(pictures)
    for codec, size in classical.items():
        print(f"  {codec:22s} {size:9.1f}")
    webp, jxl = classical["WebP lossless"], classical.get("JPEG XL lossless", math.nan)
    for name in args.names or exact_models(args.dataset):
        row = model_row(name, pictures, labels)
        lossless = "exact" if row["psnr"] == math.inf else f"values exact, pictures at {row['psnr']:.1f} dB"
        print(f"  {name:22s} {row['bytes']:9.1f}  ({webp / row['bytes']:.2f}x smaller than WebP, "
              f"{jxl / row['bytes']:.2f}x than JPEG XL; the model's bits {row['ideal']:.1f}, coder overhead {row['overhead']:+.2%}, header "
              f"{row['header']} bytes per file; encode {row['encode'] * 1000:.1f} ms, decode "
              f"{row['decode'] * 1000:.1f} ms per picture; round trip of all {count}: "
              f"{lossless if row['exact'] else 'FAILED'})", flush=True)


if __name__ == "__main__":
    main()
