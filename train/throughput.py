"""Training throughput of one recipe with 1 or more data-parallel processes (figures, not assertions).

    python -m train.throughput pixel-gpt --processes 1 2 --steps 40 --data-dir ../shared/data [recipe flags]

For each process count P it runs ``torchrun --standalone --nproc_per_node=P`` over this module,
which trains the recipe for ``--steps`` steps of the same global batch (``--batch-size``) with
``--threads`` torch threads per process (default: the machine's cores divided by P), and prints
steps/s and images/s of the whole run (start-up excluded, the first steps included).
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def seconds_per_step(args, steps, warmup=0, processes=None):
    """Seconds per step of a recipe's training loop (parsed train flags ``args``) over ``steps``
    steps, after ``warmup`` untimed ones on the same process (CUDA's start-up, cuDNN's algorithm
    search), and the recipe's steps per epoch. The start-up before the loop is not timed."""
    from argen.data import get_dataset

    from .__main__ import OBJECTIVES, RECIPES, starting_model
    from .loop import Processes, TrainConfig, train
    from .objectives import Likelihood

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    recipe = RECIPES[args.model]
    model = starting_model(recipe, args)
    objective = OBJECTIVES.get(recipe.family, Likelihood)()
    data = get_dataset(args.dataset).load("train", args.data_dir)
    if args.train_images:
        data = tuple(t[:args.train_images] for t in data)
    seconds = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for count in (warmup, steps) if warmup else (steps,):
            config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, bf16=args.bf16,
                                 max_steps=count, seed=args.seed)
            started = time.perf_counter()
            train(model, objective, data, data, config, Path(folder) / f"{count}.pt", device=args.device,
                  processes=processes or Processes())
            seconds = time.perf_counter() - started
    return seconds / steps, math.ceil(data[0].shape[0] / args.batch_size)


def worker(argv):
    from .__main__ import parse_args
    from .loop import init_processes

    steps, argv = int(argv[0]), argv[1:]
    args = parse_args(argv)
    processes = init_processes(args.device)
    seconds = seconds_per_step(args, steps, processes=processes)[0]
    processes.close()
    if processes.main:
        print(f"RESULT {processes.world} {args.threads} {args.batch_size} {1 / seconds:.3f} "
              f"{args.batch_size / seconds:.1f}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        return worker(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m train.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=40)
    args, recipe_flags = parser.parse_known_args(argv)
    print(f"{'model':<16} {'processes':>9} {'threads each':>12} {'global batch':>12} {'steps/s':>8} {'images/s':>9}")
    for count in args.processes:
        threads = max(1, (os.cpu_count() or 1) // count)
        flags = ["--threads", str(threads), *recipe_flags] if "--threads" not in recipe_flags else recipe_flags
        result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                 f"--nproc_per_node={count}", "-m", "train.throughput", "--worker",
                                 str(args.steps), args.model, *flags],
                                cwd=ROOT, capture_output=True, text=True)
        lines = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("RESULT")]
        if result.returncode or not lines:
            raise SystemExit(result.stderr[-6000:])
        world, threads, batch, steps_per_s, images_per_s = lines[0]
        print(f"{args.model:<16} {world:>9} {threads:>12} {batch:>12} {steps_per_s:>8} {images_per_s:>9}")


if __name__ == "__main__":
    main()
