"""Measures of game frames that see objects, not only palette.

A classifier that tells ten games apart reads a frame's palette and scenery: samples with the
right colours in the right bands pass it whether or not they hold a paddle, a ball or an alien.
These measures look at what moves:

- **Object statistics** (:func:`object_statistics`): each game's background is the per-pixel mode
  of its training frames (:func:`backgrounds`); a pixel is foreground where any channel differs
  from it by more than :data:`FOREGROUND_LEVELS` grey levels. Per game: the foreground share and
  the number of connected foreground blobs (8-connected) per frame, for samples and real frames.
- **C2ST** (Lopez-Paz & Oquab 2017, :func:`c2st`): a small CNN critic learns to tell samples from
  test frames on half of each; its accuracy on the other half is the score (0.5: it cannot tell),
  over several random splits. It reads each frame beside its difference from the game's
  background and pools by the maximum too, so that objects, not only colours, decide. Its control is the same critic on training frames against test
  frames (different episodes of the same games).
- **Improved precision and recall** (Kynkäänniemi et al. 2019, :func:`precision_recall`): in the
  space of a frame's difference from its game's background (pixels, so layout and sprites count
  and the shared scenery does not), precision is the share of samples inside the k-nearest-
  neighbour ball of some real frame of their game (realism), recall the share of real frames
  inside the ball of some sample. Far-off samples (speckle) have large balls and inflate recall,
  so coverage (Naeem et al. 2020) is given too: the share of real frames whose own ball holds a
  sample.
- **Memorisation** (:func:`memorisation`): each sample's distance to its nearest training frame of
  its game, against the same distance for test frames.

Everything is measured at 32 x 32 (96 x 128 frames are area-averaged down, as the classifier judges
them). ``python -m argen.fidelity`` draws each colour model's samples at its recommended settings
and prints the figures; ``--write`` records them in the model's metrics.json.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FOREGROUND_LEVELS = 24  # a pixel differs from its game's background by more than this in some channel
SIZE = (3, 32, 32)  # the frames the measures read
NEIGHBOURS = 3  # k of the k-nearest-neighbour balls (Kynkäänniemi et al.)


def shrink(images):
    """uint8 frames ``[N, 3, H, W]`` at 32 x 32 (area-averaged by whole factors, rounded to 8 bits)."""
    from .classifier import shrink_to

    return shrink_to(images, SIZE, "games")


def backgrounds(images, labels, num_classes, full_size=False):
    """Each game's background ``uint8 [G, 3, 32, 32]`` (``full_size``: at the frames' own size): the
    most common colour of each pixel over its frames."""
    images = images if full_size else shrink(images)
    packed = (images[:, 0].long() << 16) | (images[:, 1].long() << 8) | images[:, 2].long()  # (n, h, w)
    modes = []
    for game in range(num_classes):
        mode = packed[labels == game].mode(0).values  # (h, w)
        modes.append(torch.stack([(mode >> 16) & 255, (mode >> 8) & 255, mode & 255]).to(torch.uint8))
    return torch.stack(modes)


def foreground(images, labels, background):
    """bool ``[N, 32, 32]`` (or at ``background``'s size): pixels whose colour differs from their
    game's background."""
    images = images if images.shape[2:] == background.shape[2:] else shrink(images)
    difference = (images.int() - background[labels].int()).abs().amax(1)
    return difference > FOREGROUND_LEVELS


def blob_counts(masks):
    """Connected (8-neighbour) foreground blobs of each mask ``[N, h, w]``: long ``[N]``."""
    from scipy import ndimage

    structure = np.ones((3, 3), bool)
    return torch.tensor([ndimage.label(m, structure)[1] for m in masks.numpy()])


def object_statistics(images, labels, background, num_classes):
    """Per game ``{"foreground": mean share of foreground pixels, "blobs": mean blobs per frame}``."""
    masks = foreground(images, labels, background)
    blobs = blob_counts(masks).float()
    share = masks.float().mean((1, 2))
    return [{"foreground": float(share[labels == g].mean()), "blobs": float(blobs[labels == g].mean())}
            for g in range(num_classes)]


def blob_error(statistics, reference):
    """The largest relative difference of blobs per frame from the reference's, over the games."""
    return max(abs(s["blobs"] - r["blobs"]) / max(r["blobs"], 1e-9) for s, r in zip(statistics, reference))


class Critic(nn.Module):
    """A small CNN that tells two sets of 32 x 32 frames apart (one logit). It reads each frame with
    its difference from its game's background (6 channels), and pools its last features both by
    the mean and by the maximum, so that one sprite too many or too few, anywhere, can decide."""

    def __init__(self, width=16):
        super().__init__()
        self.body = nn.Sequential(  # every pixel reaches a feature: 3 x 3 windows at stride 2
            nn.Conv2d(6, width, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 2 * width, 3, 1, 1), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4 * width, 1)

    def forward(self, inputs):
        features = self.body(inputs)  # (b, 2w, 8, 8)
        return self.head(torch.cat([features.mean((2, 3)), features.amax((2, 3))], 1))[:, 0]


def critic_inputs(images, labels, background):
    """A critic's view of uint8 frames: the frame and its difference from its game's background, in [-1, 1]."""
    images = shrink(images).float()
    return torch.cat([images / 127.5 - 1, (images - background[labels].float()) / 255], 1)


def critic_accuracy(a, b, generator, steps=200, batch=64):
    """Held-out accuracy of a critic trained on half of ``a`` against half of ``b`` (critic inputs)."""
    n = min(len(a), len(b))
    a, b = a[torch.randperm(len(a), generator=generator)[:n]], b[torch.randperm(len(b), generator=generator)[:n]]
    half = n // 2
    train_x, train_y = torch.cat([a[:half], b[:half]]), torch.cat([torch.ones(half), torch.zeros(half)])
    test_x, test_y = torch.cat([a[half:], b[half:]]), torch.cat([torch.ones(n - half), torch.zeros(n - half)])
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=generator)))
    critic = Critic()
    optimizer = torch.optim.Adam(critic.parameters(), 2e-3)
    for _ in range(steps):
        pick = torch.randint(0, len(train_x), (batch,), generator=generator)
        loss = F.binary_cross_entropy_with_logits(critic(train_x[pick]), train_y[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(((critic(test_x) > 0).float() == test_y).float().mean())


def c2st(samples, labels, real, real_labels, background, splits=3, seed=0, steps=200):
    """(mean, standard deviation) over ``splits`` random splits of the held-out accuracy of a critic
    telling ``samples`` from ``real`` frames (uint8, shrunk to 32 x 32; each with its game's label)."""
    generator = torch.Generator().manual_seed(seed)
    a, b = critic_inputs(samples, labels, background), critic_inputs(real, real_labels, background)
    accuracies = [critic_accuracy(a, b, generator, steps) for _ in range(splits)]
    return float(np.mean(accuracies)), float(np.std(accuracies))


def residuals(images, labels, background):
    """Each frame's difference from its game's background, as float vectors ``[N, 3 * 32 * 32]``."""
    return (shrink(images).float() - background[labels].float()).flatten(1) / 255


def inside_balls(centres, points, k=NEIGHBOURS):
    """The share of ``points`` inside the k-nearest-neighbour ball of some of the ``centres``."""
    radii = torch.cdist(centres, centres).kthvalue(k + 1, 1).values  # the k-th neighbour, not itself
    return float((torch.cdist(points, centres) <= radii[None]).any(1).float().mean())


def balls_holding(centres, points, k=NEIGHBOURS):
    """The share of ``centres`` whose own k-nearest-neighbour ball holds some of the ``points``."""
    radii = torch.cdist(centres, centres).kthvalue(k + 1, 1).values
    return float((torch.cdist(centres, points).min(1).values <= radii).float().mean())


def precision_recall(samples, sample_labels, real, real_labels, background, num_classes):
    """(precision, recall, coverage) of the samples against real frames, within each game, averaged
    over games. Recall counts real frames inside the samples' balls, which a few far-off samples
    (speckle) make large; coverage (Naeem et al. 2020) counts real frames whose own ball holds a
    sample, which far-off samples cannot inflate."""
    fake_x, real_x = residuals(samples, sample_labels, background), residuals(real, real_labels, background)
    precision, recall, coverage = [], [], []
    for game in range(num_classes):
        f, r = fake_x[sample_labels == game], real_x[real_labels == game]
        if len(f) <= NEIGHBOURS or len(r) <= NEIGHBOURS:
            raise ValueError(f"precision and recall need more than {NEIGHBOURS} frames of each game, got "
                             f"{len(f)} samples and {len(r)} real frames of game {game}")
        precision.append(inside_balls(r, f))
        recall.append(inside_balls(f, r))
        coverage.append(balls_holding(r, f))
    return float(np.mean(precision)), float(np.mean(recall)), float(np.mean(coverage))


def memorisation(samples, sample_labels, test, test_labels, train, train_labels, num_classes):
    """{"ratio": median distance of a sample to its nearest training frame / the same for test frames,
    "copies": share of samples equal to a training frame or nearer one than all but 1% of test frames are}."""
    def nearest(images, labels):
        distances = torch.zeros(len(images))
        x, t = shrink(images).float().flatten(1), shrink(train).float().flatten(1)
        for game in range(num_classes):
            mine = labels == game
            if mine.any():
                distances[mine] = torch.cdist(x[mine], t[train_labels == game]).min(1).values
        return distances

    fake, real = nearest(samples, sample_labels), nearest(test, test_labels)
    return {"ratio": float(fake.median() / real.median()),
            "copies": float(((fake < real.quantile(0.01)) | (fake == 0)).float().mean())}


def balanced(labels, per_class, generator):
    """Indices of ``per_class`` random members of each class."""
    return torch.cat([members[torch.randperm(len(members), generator=generator)[:per_class]]
                      for members in (torch.nonzero(labels == c).flatten() for c in labels.unique())])


class Reference:
    """The real frames the measures compare with: each game's background (from the training
    frames), the test frames and training frames, at 32 x 32."""

    def __init__(self, data_dir=None, num_classes=10):
        from .data import load_dataset

        self.num_classes = num_classes
        self.train, self.train_labels = load_dataset("games", "train", data_dir)
        self.test, self.test_labels = load_dataset("games", "test", data_dir)
        self.background = backgrounds(self.train, self.train_labels, num_classes)

    def real(self, per_class, split="test", seed=0):
        """``per_class`` random frames of each game from a split, and their labels."""
        images, labels = (self.test, self.test_labels) if split == "test" else (self.train, self.train_labels)
        index = balanced(labels, per_class, torch.Generator().manual_seed(seed))
        return images[index], labels[index]

    def measure(self, samples, labels, seed=0):
        """Every measure of ``samples`` (uint8 frames, any whole multiple of 32 x 32) drawn for ``labels``."""
        per_class = int(torch.bincount(labels, minlength=self.num_classes).min())
        real, real_labels = self.real(per_class, seed=seed + 1)
        accuracy, spread = c2st(samples, labels, real, real_labels, self.background, seed=seed)
        precision, recall, coverage_ = precision_recall(samples, labels, real, real_labels, self.background,
                                                        self.num_classes)
        statistics = object_statistics(samples, labels, self.background, self.num_classes)
        reference = object_statistics(self.test, self.test_labels, self.background, self.num_classes)
        return {"samples": len(samples), "c2st": round(accuracy, 4), "c2st_std": round(spread, 4),
                "precision": round(precision, 4), "recall": round(recall, 4), "coverage": round(coverage_, 4),
                "blobs": [round(s["blobs"], 2) for s in statistics],
                "foreground": [round(s["foreground"], 4) for s in statistics],
                "blob_error": round(blob_error(statistics, reference), 4),
                "memorisation": {k: round(v, 4) for k, v in memorisation(
                    samples, labels, self.test, self.test_labels, self.train, self.train_labels,
                    self.num_classes).items()}}

    def control(self, per_class, seed=0):
        """The measures of real training frames (other episodes) in place of samples: what real frames score."""
        frames, labels = self.real(per_class, "train", seed=seed + 2)
        return self.measure(frames, labels, seed)


def power_checks(reference, per_class, seed=0):
    """C2ST of frames that lack what the critic must see, against the test frames: each game's
    background alone, the test frames with their foreground painted over, and training frames
    (which should pass): ``{check: (mean, spread)}``."""
    real, labels = reference.real(per_class, seed=seed + 1)
    background = reference.background[labels]
    painted = torch.where(foreground(real, labels, reference.background)[:, None], background, real)
    other, other_labels = reference.real(per_class, "train", seed=seed + 2)
    checks = {"backgrounds alone": (background, labels), "objects painted over": (painted, labels),
              "training frames": (other, other_labels)}
    return {name: c2st(frames, frame_labels, real, labels, reference.background, seed=seed)
            for name, (frames, frame_labels) in checks.items()}


def colour_models():
    """The shipped generative models of game frames."""
    from .hub import available, load

    return [name for name in available() if load(name).config.dataset.startswith("games")]


def settings(name):
    """The temperature, guidance (None: none) and top-k (None: all values) a shipped model recommends."""
    from .hub import load, recommended_guidance, recommended_temperature, recommended_top_k

    return {"temperature": recommended_temperature(name),
            "guidance": recommended_guidance(name) if load(name).can_guide else None,
            "top_k": recommended_top_k(name)}


def cache_name(folder, name, per_class, chosen):
    """The .npz keeping a model's samples at ``chosen`` settings."""
    letters = {"temperature": "T", "top_k": "k", "guidance": "g"}
    tag = "".join(f"-{letters[k]}{v:g}" for k, v in sorted(chosen.items()) if v is not None and v != 1.0)
    return f"{folder}/{name}-{per_class}{tag}.npz"


def draw(name, per_class, seed, cache=None, chosen=None):
    """(uint8 pictures, labels) of ``per_class`` samples of each game from a shipped model at
    ``chosen`` settings (default: its recommended :func:`settings`), read from ``cache`` (an .npz)
    when it holds them."""
    from pathlib import Path

    from .evaluate import draw_samples
    from .hub import load

    if cache is not None and Path(cache).is_file():
        with np.load(cache) as data:
            return torch.from_numpy(data["pictures"]), torch.from_numpy(data["labels"])
    model = load(name)
    values, labels = draw_samples(model, per_class, seed, **(chosen or settings(name)))
    with torch.no_grad():
        pictures = model.codec.decode(values)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, pictures=pictures.numpy(), labels=labels.numpy())
    return pictures, labels


TEMPERATURES = (1.0, 0.9, 0.8, 0.7)  # the temperatures :func:`tune` tries


def tune(name, reference, per_class, seed, cache):
    """Each setting of a grid (:data:`TEMPERATURES`, all values or the model's top-k, its guidance)
    measured, and the one chosen: the lowest C2ST, the higher recall on a tie to two decimals.
    Returns ``{"grid": [...], "recommended": {...}}``."""
    from .hub import load, read_metrics

    model, metrics = load(name), read_metrics(name)
    guidance = metrics.get("guidance", {}).get("recommended", 1.0) if model.can_guide else None
    top_ks = sorted({None, metrics.get("top_k", {}).get("recommended")}, key=lambda k: k or 0)
    grid = []
    for top_k in top_ks:
        for temperature in TEMPERATURES:
            chosen = {"temperature": temperature, "top_k": top_k, "guidance": guidance}
            pictures, labels = draw(name, per_class, seed, cache_name(cache, name, per_class, chosen), chosen)
            measured = reference.measure(pictures, labels, seed)
            grid.append({**chosen, **{k: measured[k] for k in ("c2st", "c2st_std", "precision", "recall", "coverage",
                                                               "blob_error")}})
            print(f"{name:20s} T {temperature:g} top-k {top_k or 'all'}: C2ST {measured['c2st']:.3f} precision "
                  f"{measured['precision']:.3f} recall {measured['recall']:.3f} coverage {measured['coverage']:.3f} "
                  f"blobs off {measured['blob_error']:.2f}", flush=True)
    best = min(grid, key=lambda r: (round(r["c2st"], 2), -r["recall"]))
    return {"grid": grid, "recommended": {k: best[k] for k in ("temperature", "top_k", "guidance")}}


def reconstructions(per_class, data_dir, name):
    """(``per_class`` test frames of each game at 96 x 128, their labels, the tokenizer ``name``'s
    reconstructions of them as uint8)."""
    from .data import load_dataset
    from .hub import load

    tokenizer = load(name)
    images, labels = load_dataset("games-96x128", "test", data_dir)
    index = balanced(labels, per_class, torch.Generator().manual_seed(3))
    with torch.no_grad():
        back = (tokenizer.decode(tokenizer.encode(images[index])) * 255).round().to(torch.uint8)
    return images[index], labels[index], back


def tokenizer_rows(images, labels, back):
    """The grid's first rows: the first real test frame of each game and its reconstruction."""
    return [first_of_each(shrink(images), labels), first_of_each(shrink(back), labels)]


def tokenizer_ceiling(reference, per_class, data_dir, name="games-tokenizer"):
    """The measures of the tokenizer's reconstructions of 96 x 128 test frames (what a token prior can
    at best draw), and the grid's first rows."""
    images, labels, back = reconstructions(per_class, data_dir, name)
    return reference.measure(back, labels), tokenizer_rows(images, labels, back)


def save_grid(path, rows, names, per_class, seed, cache):
    """A PNG: the given rows, then the first sample of each game of each model (cached samples at
    its recommended settings), at 32 x 32."""
    from .data import GAME_NAMES
    from .render import grid

    for name in names:
        chosen = settings(name)
        pictures, labels = draw(name, per_class, seed, cache_name(cache, name, per_class, chosen), chosen)
        rows = [*rows, first_of_each(shrink(pictures), labels)]
    grid(torch.cat(rows), nrow=len(GAME_NAMES), scale=3).save(path)
    print(f"saved {path}: real test frames, tokenizer reconstructions, then " + ", ".join(names))


def first_of_each(pictures, labels):
    """The first picture of each game, in game order."""
    return torch.stack([pictures[labels == game][0] for game in range(int(labels.max()) + 1)])


def row(name, m):
    blobs = " ".join(f"{b:.1f}" for b in m["blobs"])
    return (f"{name:20s} {m['c2st']:.3f} ± {m['c2st_std']:.3f}  {m['precision']:.3f}  {m['recall']:.3f}  "
            f"{m['coverage']:.3f}  "
            f"{m['blob_error']:7.2f}  {m['memorisation']['ratio']:.2f}/{m['memorisation']['copies']:.2f}  {blobs}")


def real_blobs(reference):
    return [round(s["blobs"], 2) for s in object_statistics(reference.test, reference.test_labels,
                                                             reference.background, reference.num_classes)]


def main(argv=None):
    import argparse
    import sys

    from pathlib import Path

    from .data import GAME_NAMES
    from .hub import model_dir, read_metrics, write_report

    parser = argparse.ArgumentParser(prog="python -m argen.fidelity", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="colour models (default: every shipped one)")
    parser.add_argument("--data-dir", default=None, help="where python -m argen.games wrote the frames")
    parser.add_argument("--per-class", type=int, default=20, help="samples of each game")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default="runs/fidelity", help="folder keeping each model's samples (.npz)")
    parser.add_argument("--write", action="store_true", help="record the figures in each model's metrics.json")
    parser.add_argument("--tune", action="store_true",
                        help="measure each model over a grid of temperatures and top-k and record the best setting "
                             "(lowest C2ST) as its recommended one")
    parser.add_argument("--tokenizer", default="games-tokenizer",
                        help="the tokenizer whose reconstructions of test frames are measured (a shipped name or a "
                             "folder): the ceiling of a token prior")
    parser.add_argument("--ceiling", action="store_true",
                        help="only measure the real frames' control and the tokenizer's reconstructions")
    parser.add_argument("--grid-only", action="store_true",
                        help="with --grid: only draw the picture (from the cached samples), measure nothing")
    parser.add_argument("--check", action="store_true",
                        help="only show that the critic fails frames without objects and passes real ones")
    parser.add_argument("--grid", help="also save a PNG: a row of real test frames (one per game), the tokenizer's "
                                       "reconstructions, then each model's samples, at 32 x 32")
    args = parser.parse_args(argv)
    reference = Reference(args.data_dir)
    if args.check:
        for check, (accuracy, spread) in power_checks(reference, args.per_class, args.seed).items():
            print(f"C2ST of {check} against test frames: {accuracy:.3f} ± {spread:.3f}")
        return
    command = "python -m argen.fidelity " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.tune:
        for name in args.names or colour_models():
            tuning = tune(name, reference, args.per_class, args.seed, args.cache)
            print(f"{name}: recommended {tuning['recommended']}", flush=True)
            if args.write:
                metrics = read_metrics(name)
                metrics["fidelity_tuning"] = {**tuning, "per_class": args.per_class, "seed": args.seed,
                                              "command": command}
                write_report(model_dir(name), metrics)
        return
    if args.grid and args.grid_only:
        first_rows = tokenizer_rows(*reconstructions(args.per_class, args.data_dir, args.tokenizer))
        return save_grid(args.grid, first_rows, args.names or colour_models(), args.per_class, args.seed,
                         args.cache)
    print("real frames per game, blobs:", " ".join(f"{n} {b:.1f}" for n, b in zip(GAME_NAMES, real_blobs(reference))))
    print(f"{'':20s} C2ST (0.5 best)  prec.  recall  cover.  blobs±%  memo.    blobs per frame, by game")
    control = reference.control(args.per_class, args.seed)
    print(row("control: train", control), flush=True)
    ceiling, rows = tokenizer_ceiling(reference, args.per_class, args.data_dir, args.tokenizer)
    print(row(Path(args.tokenizer).name, ceiling), flush=True)
    if args.ceiling:
        return
    summary = ("c2st", "c2st_std", "precision", "recall", "coverage", "blob_error")
    for name in args.names or colour_models():
        chosen = settings(name)
        pictures, labels = draw(name, args.per_class, args.seed, cache_name(args.cache, name, args.per_class, chosen),
                                chosen)
        measured = reference.measure(pictures, labels, args.seed)
        print(row(name, measured), flush=True)
        if args.write:
            metrics = read_metrics(name)
            metrics["fidelity"] = {**measured, **chosen, "per_class": args.per_class, "seed": args.seed,
                                   "control": {k: control[k] for k in summary},
                                   "tokenizer_ceiling": {k: ceiling[k] for k in summary},
                                   "command": command}
            write_report(model_dir(name), metrics)
    if args.grid:
        save_grid(args.grid, rows, args.names or colour_models(), args.per_class, args.seed, args.cache)


if __name__ == "__main__":
    main()
