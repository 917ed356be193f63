"""What a finished run leaves in ``weights/<name>/``: weights, metrics, loss curve, sample grid."""
import platform
import shutil
from pathlib import Path

import torch

from argen.evaluate import draw_samples, final_metrics, samples_picture
from argen.hub import write_report
from argen.models import GenerativeModel

GRID_PER_CLASS = 10


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def hardware(device):
    if str(device).startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    threads = torch.get_num_threads()
    return f"CPU {cpu_name()}, {threads} thread{'s' if threads != 1 else ''}"


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
    if state.train_curve or state.val_curve:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def chain(train):
    """The runs that made a model continued with ``--init-from``: each one's command, minutes and
    steps (earliest first), and their total minutes."""
    if "init_from" not in train:
        return {}
    earlier = train.pop("init_from")["train"]
    runs = earlier.get("chain") or [{k: earlier.get(k) for k in ("command", "wall_minutes", "steps", "hardware")}]
    runs = runs + [{k: train.get(k) for k in ("command", "wall_minutes", "steps", "hardware")}]
    return {"chain": runs, "total_wall_minutes": round(sum(run["wall_minutes"] or 0 for run in runs), 2)}


def publish(model, name, out_root, objective, state, train_info, test_data):
    """Write ``out_root/name`` atomically: build it beside, then swap it in. The test figures are
    measured on the device the model trained on (a GPU's are re-measured on the CPU by
    ``python -m argen.evaluate``); the sample grid is drawn on the CPU."""
    model.eval()
    measured = final_metrics(model, *test_data)
    model = model.cpu()
    final = Path(out_root) / name
    staging = Path(out_root) / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    train = {**train_info, "steps": state.step, "wall_minutes": round(state.elapsed / 60, 2),
             "stopped_early": state.stopped_early, "held_out_unit": objective.unit,
             "held_out_curve": [[round(e, 3), round(v, 5)] for e, v in state.val_curve]}
    metrics = {"name": name, **measured, "train": {**train, **chain(train)}}
    samples = None
    if isinstance(model, GenerativeModel):
        samples = samples_picture(model, draw_samples(model, GRID_PER_CLASS, train_info["seed"])[0], GRID_PER_CLASS)
    write_report(staging, metrics, samples)
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
