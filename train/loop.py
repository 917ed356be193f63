"""The one training loop. It knows nothing about the model: an objective (:mod:`train.objectives`)
says how to make a batch, what loss to minimise and what held-out figure to watch (minGPT's
trainer, in spirit).

AdamW with linear warm-up and cosine decay, gradient clipping, optional bfloat16 autocast, a
seeded data order, tqdm progress, the held-out figure after every epoch, a wall-clock budget, and
atomic checkpoints that ``--resume`` continues exactly (same data order, optimizer state and
random streams).

Under ``torchrun --nproc_per_node=N`` the same loop is data parallel (PyTorch's
DistributedDataParallel): each process takes a disjoint shard (``rank::N``) of every global batch
of the seeded order, gradients are averaged across processes, the wall-clock budget is agreed by
all of them, and only rank 0 evaluates, checkpoints and prints. A step reads the same global batch
whatever N is, so a checkpoint written by N processes resumes on M.
"""
import gc
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm


@dataclass
class TrainConfig:
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    beta1: float = 0.9  # Adam's first-moment decay (the diagnosis note's LSTM: 0)
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    max_minutes: float = 60.0
    checkpoint_minutes: float = 5.0
    log_every: int = 50
    bf16: bool = False  # matmuls in bfloat16 under autocast; weights, optimizer and evaluation stay float32
    max_steps: int = 0  # stop (checkpointed, resumable) when this many steps are done; 0: no limit


@dataclass
class Processes:
    """Where this process stands in a data-parallel run (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    backend: str | None = None

    @property
    def main(self):
        return self.rank == 0

    def close(self):
        """Leave the process group (a process that exits inside one may be aborted by gloo), all
        processes together: rank 0 finishes its evaluation and checkpoint before any leaves. The
        finished run's unreachable reference cycles (the DDP wrapper and its reducer among them)
        are collected first, while the group is alive: left to the interpreter's exit, their
        teardown aborted a process now and then ("terminate called without an active
        exception": 2 of 76 runs of tests/ddp_probe.py on a loaded machine, none of 100 with
        this collection)."""
        if self.world > 1:
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()


def init_processes(device):
    """The process group that torchrun's environment describes (gloo on the CPU, NCCL on CUDA), or
    a single process when there is none."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Processes()
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    return Processes(dist.get_rank(), dist.get_world_size(), backend)


class DistributedModel(DistributedDataParallel):
    """DDP whose other attributes are the wrapped model's (its codec, num_values ...), so that an
    objective uses it as it would the model."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)


@dataclass
class TrainState:
    step: int = 0
    elapsed: float = 0.0  # seconds of training over all sessions
    train_curve: list = field(default_factory=list)  # (epoch, running training figure)
    val_curve: list = field(default_factory=list)  # (epoch, held-out figure)
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


def random_states(generator):
    """Every random stream the loop draws from (dropout masks, binarization, shifts)."""
    states = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states, generator):
    torch.set_rng_state(states["torch"])
    generator.set_state(states["generator"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path, model, optimizer, state, generator):
    """Everything a resumed run needs, written to a temp file and renamed (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": vars(state),
                "random": random_states(generator)}, tmp)
    tmp.replace(path)


def load_checkpoint(path, model, optimizer, generator):
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    ours, theirs = ({name: value.shape for name, value in state.items()}
                    for state in (model.state_dict(), checkpoint["model"]))
    differ = sorted(name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name))
    if differ:
        raise SystemExit(f"the checkpoint {path} holds a model of another shape than this run's ({len(differ)} tensors "
                         f"differ, first {differ[0]}): was --init-from's folder replaced since the run started, or "
                         f"did the model flags change? Start a new --checkpoint, or drop --resume")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    restore_random_states(checkpoint["random"], generator)
    state = TrainState(**checkpoint["state"])
    state.train_curve = [tuple(p) for p in state.train_curve]
    state.val_curve = [tuple(p) for p in state.val_curve]
    return state


def reseed(config, rank, step, generator):
    """Distinct random streams for rank ``rank`` > 0 (rank 0's are the checkpointed ones)."""
    seed = (config.seed * 1_000_003 + rank) * 1_000_003 + step
    torch.manual_seed(seed)
    generator.manual_seed(seed)


def train(model, objective, train_data, val_data, config, checkpoint_path, resume=False, device="cpu",
          processes=Processes()):
    """Train ``model`` on ``train_data`` = (uint8 images, labels), watching ``objective.held_out``
    on ``val_data`` after every epoch. Returns the :class:`TrainState` with its learning curves."""
    images, labels = train_data
    model.to(device)
    replica = model if processes.world == 1 else DistributedModel(model, find_unused_parameters=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=(config.beta1, 0.999))
    torch.manual_seed(config.seed)  # dropout masks
    generator = torch.Generator().manual_seed(config.seed)  # binarization, shifts
    state = TrainState()
    if resume and Path(checkpoint_path).is_file():
        state = load_checkpoint(checkpoint_path, model, optimizer, generator)
        if processes.main:
            print(f"resumed from {checkpoint_path} at step {state.step}")
    if processes.rank:
        reseed(config, processes.rank, state.step, generator)
    steps_per_epoch = math.ceil(images.shape[0] / config.batch_size)
    total_steps = math.ceil(config.epochs * steps_per_epoch)
    last_step = min(total_steps, config.max_steps or total_steps)

    def evaluate():
        model.eval()
        with torch.no_grad():
            figure = objective.held_out(model, *(v.to(device) for v in val_data))
        model.train()
        state.val_curve.append((state.step / steps_per_epoch, figure))
        print(f"epoch {state.step / steps_per_epoch:.2f}: held-out {figure:.4f} {objective.unit}")

    def out_of_time():
        over = torch.tensor(float(state.elapsed > config.max_minutes * 60))
        if processes.world > 1:  # every process stops at the same step
            dist.all_reduce(over, dist.ReduceOp.MAX)
        return bool(over)

    start = time.time() - state.elapsed
    last_checkpoint = time.time()
    model.train()
    progress = tqdm(total=total_steps, initial=state.step, desc="train", dynamic_ncols=True, disable=not processes.main)
    running = []
    while state.step < last_step:
        epoch, offset = divmod(state.step, steps_per_epoch)
        index = epoch_order(images.shape[0], config.seed, epoch)
        index = index[offset * config.batch_size:(offset + 1) * config.batch_size][processes.rank::processes.world]
        x, y = objective.batch(replica, images[index], labels[index], generator)
        x, y = x.to(device), None if y is None else y.to(device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, state.step, total_steps)
        with torch.autocast(torch.device(device).type, torch.bfloat16, enabled=config.bf16):
            loss = objective.loss(replica, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP: gradients averaged across the processes
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        state.step += 1
        running.append(objective.to_unit(loss.item()))
        progress.update(1)
        if state.step % config.log_every == 0:
            state.train_curve.append((state.step / steps_per_epoch, sum(running) / len(running)))
            progress.set_postfix(train=f"{state.train_curve[-1][1]:.4f}")
            running = []
        if processes.main and (state.step % steps_per_epoch == 0 or state.step == total_steps):
            evaluate()
        state.elapsed = time.time() - start
        if out_of_time():
            state.stopped_early = state.step < total_steps
            if processes.main:
                print(f"stopping: the {config.max_minutes}-minute budget is spent at step {state.step}")
                if not state.val_curve or state.val_curve[-1][0] != state.step / steps_per_epoch:
                    evaluate()
            break
        if processes.main and time.time() - last_checkpoint > config.checkpoint_minutes * 60:
            save_checkpoint(checkpoint_path, model, optimizer, state, generator)
            last_checkpoint = time.time()
    progress.close()
    state.stopped_early = state.stopped_early or state.step < total_steps
    if processes.main:
        save_checkpoint(checkpoint_path, model, optimizer, state, generator)
    model.eval()
    return state
