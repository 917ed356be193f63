"""The report card of the shipped models: likelihood, sample quality and speed, measured here.

    python -m argen.evaluate [names...] [--data-dir DIR]          # exact test-set likelihood
    python -m argen.evaluate --all [--seed 0] [--data-dir DIR]     # + sample quality and speed
    python -m argen.evaluate --all --quick                         # a fast look, writes nothing

Likelihood: the exact NLL on the full 10,000-image test set, as bits/dim at the model's K and the
8-bit-equivalent bits/dim (bits/dim + log2(256 / K), so models with different K compare on one
scale; nats/image for binarized models). Sample quality (``--all``): the project's MNIST
classifier labels 100 samples per digit drawn at temperature 1 (does a requested 7 look like a
7?) and a Fréchet distance between its penultimate features of the samples and of the test set,
beside the real-data floor (as many training images vs the test set). Speed: seconds per image
and per batch of ten on this machine, fast and naive paths. The figures go into each
metrics.json, the results table of README.md and ``weights/report.png``.
"""
import argparse
import math
from pathlib import Path

import numpy as np
import torch

from .data import load_mnist, test_levels
from .hub import available, load, model_dir, read_metrics, weights_dir, write_metrics
from .likelihood import bits_per_dim, dataset_nll

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "mnist_test_1000.npz"
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


def load_fixture():
    """The first 1,000 MNIST test images and labels, kept in the repo for tests."""
    data = np.load(FIXTURE)
    return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]).long()


def test_values(model, images, binarization=None):
    """The model's values of uint8 test ``images``: its levels (the fixed Bernoulli draw for
    binarized data) or, for a token model, its tokens."""
    return test_levels(images, model.levels, binarization) if binarization else model.from_pixels(images)


def likelihood_metrics(model, images, labels, binarization=None, progress=False):
    """NLL of uint8 ``images`` under ``model``: nats/image, bits/dim (per value: per token for a
    token model) and 8-bit-equivalent bits/dim."""
    nats = dataset_nll(model, test_values(model, images, binarization), labels if model.num_classes else None,
                       progress=progress)
    bpd = bits_per_dim(nats, model.num_pixels)
    # binarized data is a different dataset, and tokens are not pixels: neither has an 8-bit equivalent
    comparable = not binarization and model.patch_size == 1
    return {"num_images": int(images.shape[0]), "nats_per_image": round(nats, 4), "bits_per_dim": round(bpd, 5),
            "bits_per_dim_8bit": round(bpd + math.log2(256 / model.levels), 5) if comparable else None}


def draw_samples(model, per_class, seed, batch_size=100):
    """``per_class`` samples of each digit (or 10 * per_class unconditional ones) at temperature 1:
    (levels [N, C, H, W], requested labels [N] or None)."""
    from .sampling import sample

    total = 10 * per_class
    labels = torch.arange(10).repeat_interleave(per_class) if model.num_classes else None
    images = []
    for i in range(0, total, batch_size):
        n = min(batch_size, total - i)
        kwargs = {"labels": labels[i:i + n]} if model.num_classes else {"num_images": n}
        images.append(sample(model, seed=seed + i, **kwargs))
    return torch.cat(images), labels


def quality_metrics(model, classifier, reference, per_class, seed):
    """Classifier accuracy on class-conditional samples and the classifier-feature Fréchet distance."""
    from .classifier import frechet_distance, predict

    images, labels = draw_samples(model, per_class, seed)
    predicted, features = predict(classifier, model.to_pixels(images))
    accuracy = None if labels is None else round((predicted == labels).float().mean().item(), 4)
    return {"samples": int(images.shape[0]), "temperature": 1.0, "seed": seed, "accuracy": accuracy,
            "fid": round(frechet_distance(features, reference["test_features"]), 3),
            "fid_floor": reference["fid_floor"]}, images


def speed_metrics(model):
    """Seconds per image and per batch of ten (one per digit), fast and naive paths."""
    from .benchmark import time_stream

    time_stream(model, 1, True, model.num_pixels)  # warm-up
    speed = {"threads": torch.get_num_threads(), "fast_path": model.has_fast_path,
             "seconds_per_image": round(time_stream(model, 1, True, model.num_pixels)[1], 3),
             "seconds_per_10": round(time_stream(model, 10, True, model.num_pixels)[1], 3)}
    if model.has_fast_path:
        speed["naive_seconds_per_image"] = round(time_stream(model, 1, False, model.num_pixels)[1], 3)
    return speed


def reference_features(test_images, real_images):
    """The classifier, its features of the test set and the real-data floor of the Fréchet
    distance (``real_images``, as many as the samples, against the test set)."""
    from .classifier import frechet_distance, load_classifier, predict

    classifier = load_classifier()
    test_features = predict(classifier, test_images)[1]
    real = predict(classifier, real_images)[1]
    return classifier, {"test_features": test_features, "fid_floor": round(frechet_distance(real, test_features), 3)}


def format_table(rows):
    header = (f"{'model':<16} {'K':>4} {'params':>10} {'nats/image':>11} {'bits/dim':>9} {'8-bit bpd':>10} "
              f"{'accuracy':>9} {'FID':>8} {'s/image':>8}")
    lines = [header, "-" * len(header)]
    for name, m in rows:
        t, q, s = m["test"], m.get("quality", {}), m.get("speed", {})
        lines.append(f"{name:<16} {m['data']['levels']:>4} {m['parameters']:>10,} {t['nats_per_image']:>11.2f} "
                     f"{t['bits_per_dim']:>9.4f} {fmt(t['bits_per_dim_8bit'], '.4f'):>10} "
                     f"{fmt(q.get('accuracy'), '.1%'):>9} {fmt(q.get('fid'), '.2f'):>8} "
                     f"{fmt(s.get('seconds_per_image'), '.2f'):>8}")
    return "\n".join(lines)


def fmt(value, spec):
    return "—" if value is None else format(value, spec)


def markdown_table(names):
    """The README's results table, from each model's metrics.json."""
    rows = ["| model | K | parameters | test nats/image | test bits/dim | 8-bit-equiv. bits/dim | sample accuracy "
            "| FID (real floor) | s/image fast (naive) | s/10 images | training | hardware |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        m = read_metrics(name)
        t, q, s, tr = m.get("test", {}), m.get("quality", {}), m.get("speed", {}), m.get("train", {})
        if not t:
            continue
        fid = f"{q['fid']:.2f} ({q['fid_floor']:.2f})" if q else "—"
        naive = f" ({s['naive_seconds_per_image']:.2f})" if "naive_seconds_per_image" in s else ""
        per_image = f"{s['seconds_per_image']:.2f}{naive}" if s else "—"
        bpd = f"{t['bits_per_dim']:.4f}"
        if "tokenizer" in m:
            bpd += f" per token (tokenizer PSNR {m['tokenizer']['psnr_db']:.1f} dB)"
        rows.append(f"| `{name}` | {m['data']['levels']} | {m['parameters']:,} | {t['nats_per_image']:.2f} "
                    f"| {bpd} | {fmt(t['bits_per_dim_8bit'], '.4f')} "
                    f"| {fmt(q.get('accuracy'), '.1%')} | {fid} | {per_image} "
                    f"| {fmt(s.get('seconds_per_10'), '.2f')} | {tr.get('wall_minutes', '?')} min, "
                    f"{tr.get('epochs', '?')} epochs | {tr.get('hardware', '?')} |")
    return "\n".join(rows)


def update_readme(names, readme=README):
    """Replace the table between the results markers of README.md."""
    text = readme.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    readme.write_text(text[:start] + "\n" + markdown_table(names) + "\n" + text[end:])


def comparison_plot(rows, path):
    """Bits/dim (8-bit equivalent) and sample accuracy per model, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name, _ in rows]
    bpd = [m["test"]["bits_per_dim_8bit"] or 0 for _, m in rows]
    accuracy = [100 * (m.get("quality", {}).get("accuracy") or 0) for _, m in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.5 * len(rows) + 1.5), sharey=True)
    left.barh(names, bpd, color="tab:blue")
    left.set(xlabel="test bits/dim, 8-bit equivalent (lower is better)")
    right.barh(names, accuracy, color="tab:green")
    right.set(xlabel="classifier accuracy on samples, % (higher is better)", xlim=(0, 100))
    for ax in (left, right):
        ax.grid(axis="x", alpha=0.3)
    left.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m argen.evaluate",
                                     description="The report card of the shipped models.")
    parser.add_argument("names", nargs="*", help=f"models (default: all shipped: {available()})")
    parser.add_argument("--data-dir", default=None, help="MNIST root (default: $ARGEN_DATA or ./data)")
    parser.add_argument("--all", action="store_true", help="also sample quality and speed")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 test images and 10 samples per digit; prints, writes nothing")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
    args = parser.parse_args(argv)
    names = args.names or available()
    for name in names:
        model_dir(name)  # fail early on an unknown name
    from .render import grid

    images, labels = load_fixture() if args.quick else load_mnist("test", args.data_dir)
    per_class = 10 if args.quick else 100
    if args.all:  # quick: the fixture's second half stands in for the training images
        real = images[-100:] if args.quick else load_mnist("train", args.data_dir)[0][-10 * per_class:]
        classifier, reference = reference_features(images[:-100] if args.quick else images, real)
    rows = []
    for name in names:
        model, metrics = load(name), read_metrics(name)
        binarization = metrics.get("data", {}).get("binarization")
        metrics["data"] = {"levels": model.levels, "binarization": binarization}
        metrics["parameters"] = model.num_parameters
        metrics["test"] = likelihood_metrics(model, images, labels, binarization, progress=True)
        if model.patch_size > 1:  # a token model: its likelihood is over tokens; how faithful are they?
            from .tokenizer import tokenizer_metrics

            metrics["tokenizer"] = tokenizer_metrics(model.tokenizer, images)
        if not args.quick:
            metrics["fixture"] = likelihood_metrics(model, *load_fixture(), binarization)
        if args.all:
            metrics["quality"], samples = quality_metrics(model, classifier, reference, per_class, args.seed)
            metrics["speed"] = speed_metrics(model)
            if not args.quick:
                grid(model.to_pixels(samples[::10] if per_class == 100 else samples), 256, nrow=10, scale=2).save(
                    model_dir(name) / "samples.png")
        if not args.quick:
            write_metrics(model_dir(name), metrics)
        rows.append((name, metrics))
    print(format_table(rows))
    if args.all:
        print(f"FID floor (real images vs test set, {10 * per_class} images): {reference['fid_floor']}")
    if not args.quick:
        update_readme(available())
        if args.all:
            comparison_plot([(n, read_metrics(n)) for n in available()], weights_dir() / "report.png")
        print(f"updated {README.name}'s results table")


if __name__ == "__main__":
    main()
