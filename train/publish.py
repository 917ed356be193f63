"""What a finished run leaves in ``weights/<name>/``: weights, metrics, loss curve, sample grid."""
import platform
import shutil
from pathlib import Path

import torch

from argen.hub import write_metrics
from argen.models import PixelModel
from argen.render import grid
from argen.sampling import sample


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def hardware(device):
    if str(device).startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"CPU {cpu_name()}, {torch.get_num_threads()} threads"


def sample_grid(model, seed=0, per_class=10):
    """One row per digit (or ten rows of unconditional samples), at temperature 1."""
    model.eval()
    if model.num_classes:
        labels = torch.arange(model.num_classes).repeat_interleave(per_class)
        images = sample(model, labels, seed=seed)
    else:
        images = sample(model, seed=seed, num_images=10 * per_class)
    return grid(model.to_pixels(images.cpu()), 256, nrow=per_class, scale=2)


def loss_curve(state, path, title, unit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if state.train_curve:
        ax.plot(*zip(*state.train_curve), label="train (running mean)", alpha=0.7)
    if state.val_curve:
        ax.plot(*zip(*state.val_curve), "o-", label="held-out")
    ax.set(xlabel="epoch", ylabel=unit, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def publish(model, name, out_root, objective, state, train_info, test_data):
    """Write ``out_root/name`` atomically: build it beside, then swap it in."""
    model = model.cpu().eval()
    final = Path(out_root) / name
    staging = Path(out_root) / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    metrics = {
        "name": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        **objective.final_metrics(model, *test_data),
        "train": {**train_info, "steps": state.step, "wall_minutes": round(state.elapsed / 60, 2),
                  "stopped_early": state.stopped_early, "held_out_unit": objective.unit,
                  "held_out_curve": [[round(e, 3), round(v, 5)] for e, v in state.val_curve]},
    }
    write_metrics(staging, metrics)
    if isinstance(model, PixelModel):
        sample_grid(model, seed=train_info["seed"]).save(staging / "samples.png")
    loss_curve(state, staging / "loss.png", name, objective.unit)
    if final.exists():
        old = Path(out_root) / f".{name}.old"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old)
    else:
        staging.rename(final)
    return metrics
