"""Exact likelihood of shipped models on the MNIST test set.

    python -m argen.evaluate [names...] [--data-dir DIR]

Scores every named model (default: all shipped) on the full 10,000-image test set, prints a table
with bits/dim at the model's K and the 8-bit-equivalent bits/dim (bits/dim + log2(256 / K), so
models with different K compare on one scale), and writes the figures into each metrics.json.
"""
import argparse
import math
from pathlib import Path

import numpy as np
import torch

from .data import load_mnist, test_levels
from .hub import available, load, model_dir, read_metrics, write_metrics
from .likelihood import bits_per_dim, dataset_nll

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mnist_test_1000.npz"


def load_fixture():
    """The first 1,000 MNIST test images and labels, kept in the repo for tests."""
    data = np.load(FIXTURE)
    return torch.from_numpy(data["images"]), torch.from_numpy(data["labels"]).long()


def likelihood_metrics(model, images, labels, binarization=None, progress=False):
    """NLL of uint8 ``images`` under ``model``: nats/image, bits/dim and 8-bit-equivalent bits/dim."""
    x = test_levels(images, model.levels, binarization)
    nats = dataset_nll(model, x, labels if model.num_classes else None, progress=progress)
    bpd = bits_per_dim(nats, model.num_pixels)
    return {"num_images": int(images.shape[0]), "nats_per_image": round(nats, 4),
            "bits_per_dim": round(bpd, 5),
            # binarized data is a different dataset: it has no 8-bit equivalent
            "bits_per_dim_8bit": None if binarization else round(bpd + math.log2(256 / model.levels), 5)}


def evaluate(name, images, labels):
    """Measure one shipped model on the full test set and the fixture subset; update metrics.json."""
    model = load(name)
    metrics = read_metrics(name)
    binarization = metrics.get("data", {}).get("binarization")
    metrics["test"] = likelihood_metrics(model, images, labels, binarization, progress=True)
    metrics["fixture"] = likelihood_metrics(model, *load_fixture(), binarization)
    metrics["parameters"] = model.num_parameters
    write_metrics(model_dir(name), metrics)
    return metrics


def format_table(rows):
    header = f"{'model':<16} {'K':>4} {'params':>10} {'nats/image':>11} {'bits/dim':>9} {'8-bit bits/dim':>15}"
    lines = [header, "-" * len(header)]
    for name, levels, m in rows:
        t = m["test"]
        eight = "—" if t["bits_per_dim_8bit"] is None else f"{t['bits_per_dim_8bit']:.4f}"
        lines.append(f"{name:<16} {levels:>4} {m['parameters']:>10,} {t['nats_per_image']:>11.2f} "
                     f"{t['bits_per_dim']:>9.4f} {eight:>15}")
    return "\n".join(lines)


README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"


def markdown_table(names):
    """The README's results table, from each model's metrics.json."""
    lines = ["| model | K | parameters | test nats/image | test bits/dim | 8-bit-equivalent bits/dim "
             "| training | hardware |", "|---|---|---|---|---|---|---|---|"]
    for name in names:
        m = read_metrics(name)
        t, tr = m.get("test", {}), m.get("train", {})
        if not t:
            continue
        eight = "—" if t.get("bits_per_dim_8bit") is None else f"{t['bits_per_dim_8bit']:.4f}"
        lines.append(f"| `{name}` | {m['data']['levels']} | {m['parameters']:,} | {t['nats_per_image']:.2f} "
                     f"| {t['bits_per_dim']:.4f} | {eight} | {tr.get('wall_minutes', '?')} min, "
                     f"{tr.get('epochs', '?')} epochs | {tr.get('hardware', '?')} |")
    return "\n".join(lines)


def update_readme(names, readme=README):
    """Replace the table between the results markers of README.md."""
    text = readme.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    readme.write_text(text[:start] + "\n" + markdown_table(names) + "\n" + text[end:])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m argen.evaluate", description=__doc__.split("\n")[1])
    parser.add_argument("names", nargs="*", help=f"models to evaluate (default: all shipped: {available()})")
    parser.add_argument("--data-dir", default=None, help="MNIST root (default: $ARGEN_DATA or ./data)")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md's results table as it is")
    args = parser.parse_args(argv)
    names = args.names or available()
    for name in names:
        model_dir(name)  # fail early on an unknown name
    images, labels = load_mnist("test", args.data_dir)
    rows = []
    for name in names:
        rows.append((name, load(name).levels, evaluate(name, images, labels)))
    print(format_table(rows))
    if not args.no_readme:
        update_readme(available())
        print(f"updated the results table in {README}")


if __name__ == "__main__":
    main()
