"""The one training loop: model-agnostic, it only needs ``argen.nll(model, x, y)``.

AdamW with linear warm-up and cosine decay, gradient clipping, a seeded data order, tqdm
progress, held-out bits/dim after every epoch, a wall-clock budget, and atomic checkpoints that
``--resume`` continues from (same data order, same optimizer state).
"""
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from argen.likelihood import bits_per_dim, dataset_nll, nll


@dataclass
class TrainConfig:
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    max_minutes: float = 60.0
    checkpoint_minutes: float = 5.0
    log_every: int = 50


@dataclass
class TrainState:
    step: int = 0
    elapsed: float = 0.0  # seconds of training over all sessions
    train_curve: list = field(default_factory=list)  # (epoch, train bits/dim)
    val_curve: list = field(default_factory=list)  # (epoch, held-out bits/dim)
    stopped_early: bool = False


def learning_rate(config, step, total_steps):
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def epoch_order(num_images, seed, epoch):
    """The shuffled image order of an epoch: a function of (seed, epoch) alone, so resuming
    mid-epoch continues exactly where the run stopped."""
    return torch.randperm(num_images, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))


def save_checkpoint(path, model, optimizer, state):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "state": vars(state)}, tmp)
    tmp.replace(path)


def load_checkpoint(path, model, optimizer):
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    state = TrainState(**checkpoint["state"])
    state.train_curve = [tuple(p) for p in state.train_curve]
    state.val_curve = [tuple(p) for p in state.val_curve]
    return state


def train(model, data, config, checkpoint_path, levels_of, resume=False, device="cpu"):
    """Train ``model`` on ``data`` = (train_images uint8, train_labels, val_x levels, val_y).

    ``levels_of(images, generator)`` turns a uint8 batch into model input (quantization or
    dynamic binarization). Returns the :class:`TrainState` with its learning curves.
    """
    train_images, train_labels, val_x, val_y = data
    conditional = model.num_classes > 0
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    state = TrainState()
    if resume and Path(checkpoint_path).is_file():
        state = load_checkpoint(checkpoint_path, model, optimizer)
        print(f"resumed from {checkpoint_path} at step {state.step}")
    steps_per_epoch = math.ceil(train_images.shape[0] / config.batch_size)
    total_steps = math.ceil(config.epochs * steps_per_epoch)
    torch.manual_seed(config.seed + state.step)  # dropout masks
    binarize_gen = torch.Generator().manual_seed(config.seed + 7 * state.step)

    def evaluate():
        model.eval()
        val_nats = dataset_nll(model, val_x, val_y if conditional else None, desc="held-out")
        model.train()
        state.val_curve.append((state.step / steps_per_epoch, bits_per_dim(val_nats, model.num_pixels)))
        print(f"epoch {state.step / steps_per_epoch:.2f}: held-out {state.val_curve[-1][1]:.4f} bits/dim")

    start = time.time() - state.elapsed
    last_checkpoint = time.time()
    model.train()
    progress = tqdm(total=total_steps, initial=state.step, desc="train", dynamic_ncols=True)
    running = []
    while state.step < total_steps:
        epoch, offset = divmod(state.step, steps_per_epoch)
        index = epoch_order(train_images.shape[0], config.seed, epoch)
        index = index[offset * config.batch_size:(offset + 1) * config.batch_size]
        x = levels_of(train_images[index], binarize_gen).to(device)
        y = train_labels[index].to(device) if conditional else None
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, state.step, total_steps)
        loss = nll(model, x, y).mean() / model.num_pixels  # nats per value
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        state.step += 1
        running.append(loss.item() / math.log(2))
        progress.update(1)
        if state.step % config.log_every == 0:
            state.train_curve.append((state.step / steps_per_epoch, sum(running) / len(running)))
            progress.set_postfix(bpd=f"{state.train_curve[-1][1]:.4f}")
            running = []
        if state.step % steps_per_epoch == 0 or state.step == total_steps:
            evaluate()
        state.elapsed = time.time() - start
        if state.elapsed > config.max_minutes * 60:
            print(f"stopping: the {config.max_minutes}-minute budget is spent at step {state.step}")
            state.stopped_early = state.step < total_steps
            if not state.val_curve or state.val_curve[-1][0] != state.step / steps_per_epoch:
                evaluate()
            break
        if time.time() - last_checkpoint > config.checkpoint_minutes * 60:
            save_checkpoint(checkpoint_path, model, optimizer, state)
            last_checkpoint = time.time()
    progress.close()
    save_checkpoint(checkpoint_path, model, optimizer, state)
    model.eval()
    return state
