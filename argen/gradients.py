"""How much gradient reaches earlier pixels in the sequence LSTM: the diagnosis of vanishing gradients over a long sequence, measured.

    python -m argen.gradients [name] [--images 64] [--init] [--data-dir DIR]

For target pixels in the lower half of the image, the loss of that one pixel is backpropagated to
the LSTM input at every earlier step. The input at step s carries pixel s - 1, so the gradient
there says how strongly that pixel can steer learning of the target. The script prints the mean
gradient norm by distance in pixels: 1 is the pixel to the left, 28 the pixel above, 280 ten
rows up. ``--init`` does the same for a freshly initialised model of the same configuration.
"""
import argparse

import torch
import torch.nn.functional as F

from .data import get_dataset
from .hub import load
from .models import PixelLSTM
from .schedules import raster_values

DISTANCES = (1, 2, 3, 27, 28, 29, 56, 84, 140, 280, 420)


def gradient_by_distance(model, x, y, targets):
    """``[max distance + 1]`` mean gradient norm at the input carrying the pixel ``d`` steps before each target."""
    inputs = model.inputs(x, y).detach().requires_grad_()
    logits = model.sequence_logits(inputs)  # (b, n, K)
    values = raster_values(x)
    span = min(targets) + 1
    total = torch.zeros(span)
    for t in targets:
        loss = F.cross_entropy(logits[:, t], values[:, t])
        grad, = torch.autograd.grad(loss, inputs, retain_graph=True)
        by_step = grad.norm(dim=-1).mean(0)  # (n,)
        total += by_step[t - span + 1:t + 1].flip(0)  # index d - 1: the input of step t - d + 1 carries pixel t - d
    return total / len(targets)


def describe(distance, width):
    """Where the pixel ``distance`` steps back in raster order lies, e.g. "1 row up, 1 right"."""
    rows, cols = divmod(distance, width)
    if cols > width // 2:
        rows, cols = rows + 1, cols - width  # negative: to the right
    where = [f"{rows} row{'s' * (rows > 1)} up"] if rows else []
    if cols:
        where.append(f"{abs(cols)} {'left' if cols > 0 else 'right'}")
    return ", ".join(where)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m argen.gradients", description=__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", default="lstm", help="a shipped sequence LSTM (default: lstm)")
    parser.add_argument("--images", type=int, default=64, help="test images to average over")
    parser.add_argument("--init", action="store_true", help="also measure a freshly initialised model")
    parser.add_argument("--data-dir", default=None, help="the data folder (default: $ARGEN_DATA or ./data)")
    args = parser.parse_args(argv)
    trained = load(args.name)
    if not isinstance(trained, PixelLSTM) or trained.scores_values:
        raise SystemExit(f"{args.name!r} is not a grey sequence LSTM with a softmax output (a PixelLSTM such as lstm)")
    images, labels = get_dataset(trained.config.dataset).load("test", args.data_dir)
    x = trained.codec.encode(images[:args.images])
    y = labels[:args.images] if trained.num_classes else None
    _, height, width = trained.value_shape
    targets = [row * width + col for row in range(height // 2, height - 4, 2) for col in (width // 3, width // 2)]
    models = {"trained": trained}
    if args.init:
        torch.manual_seed(0)
        models["init"] = type(trained)(trained.config).eval()
    curves = {label: gradient_by_distance(model, x, y, targets) for label, model in models.items()}
    print(f"mean |d loss(pixel t) / d input carrying pixel t - d| over {len(targets)} targets "
          f"(rows {height // 2}..{height - 5}) and {x.shape[0]} test images")
    print(f"{'d':>4}  {'where':<22}" + "".join(f" {label:>12} {'/ d=1':>8}" for label in curves))
    for d in DISTANCES:
        if d <= len(next(iter(curves.values()))):
            print(f"{d:>4}  {describe(d, width):<22}"
                  + "".join(f" {curve[d - 1]:>12.3e} {curve[d - 1] / curve[0]:>8.1e}" for curve in curves.values()))


if __name__ == "__main__":
    main()
