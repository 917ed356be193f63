"""Training throughput of one recipe with 1 or more data-parallel processes (figures, not assertions).

    python -m train.throughput pixel-gpt --processes 1 2 --steps 40 --data-dir ../shared/data [recipe flags]

For each process count P it runs ``torchrun --standalone --nproc_per_node=P`` over this module,
which trains the recipe for ``--steps`` steps of the same global batch (``--batch-size``) with
``--threads`` torch threads per process (default: the machine's cores divided by P), and prints
steps/s and images/s of the whole run (start-up excluded, the first steps included).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def worker(argv):
    from argen.data import load_mnist

    from .__main__ import OBJECTIVES, RECIPES, build, parse_args
    from .loop import TrainConfig, init_processes, train
    from .objectives import Likelihood

    steps, folder, argv = int(argv[0]), argv[1], argv[2:]
    args = parse_args(argv)
    processes = init_processes(args.device)
    torch.set_num_threads(args.threads)
    recipe = RECIPES[args.model]
    model = build(recipe, args)
    data = load_mnist("train", args.data_dir)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, bf16=args.bf16, max_steps=steps,
                         seed=args.seed)
    started = time.perf_counter()
    train(model, OBJECTIVES.get(recipe.family, Likelihood)(), data, data, config, Path(folder) / "run.pt",
          device=args.device, processes=processes)
    seconds = time.perf_counter() - started
    processes.close()
    if processes.main:
        print(f"RESULT {processes.world} {args.threads} {args.batch_size} {steps / seconds:.3f} "
              f"{steps * args.batch_size / seconds:.1f}")


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
        with tempfile.TemporaryDirectory() as folder:
            result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                     f"--nproc_per_node={count}", "-m", "train.throughput", "--worker",
                                     str(args.steps), folder, args.model, *flags],
                                    cwd=ROOT, capture_output=True, text=True)
        lines = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("RESULT")]
        if result.returncode or not lines:
            raise SystemExit(result.stderr[-6000:])
        world, threads, batch, steps_per_s, images_per_s = lines[0]
        print(f"{args.model:<16} {world:>9} {threads:>12} {batch:>12} {steps_per_s:>8} {images_per_s:>9}")


if __name__ == "__main__":
    main()
