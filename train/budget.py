"""Train several recipes at once, each for as many epochs as fit in a wall-clock budget.

    python -m train.budget --minutes 6 --steps 40 "pixel-gpt --bf16 --batch-size 128" "gated-pixelcnn --bf16"

A lent GPU comes for a fixed number of minutes, and a cosine schedule must know its length in
advance: a run cut off by ``--max-minutes`` ends with its learning rate still high. So this first
times every recipe, all of them at once as they will then run (they share the device and the
cores): a warm-up, then ``--steps`` timed steps of the training loop. It then runs
``python -m train <flags> --epochs E`` for each recipe, all at once, E being the epochs that its
measured speed fits into ``--minutes`` (less ``--margin`` for the held-out checks). Each model's
``metrics.json`` records that command, its E included, so one command reproduces the model on any
machine; ``--max-minutes`` is the budget itself, a guard against a run slower than it was timed
(it then stops early, checkpointed, and says so in its metrics). A recipe whose timing fails is
left out and the others run.
"""
import argparse
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 10  # CUDA start-up, cuDNN's algorithm search, the allocator's first blocks


def timing_worker(steps, argv):
    """Steps per second of one recipe's training loop (after a warm-up), printed as ``RESULT``."""
    from .__main__ import parse_args
    from .throughput import seconds_per_step

    seconds, per_epoch = seconds_per_step(parse_args(argv), steps, warmup=WARMUP_STEPS)
    print(f"RESULT {1 / seconds:.4f} {per_epoch}")


def run_all(commands, log_dir):
    """Start ``commands`` (argument lists) together; wait for all; their output goes to log files."""
    running = []
    for name, argv in commands:
        log = open(Path(log_dir) / f"{name}.log", "w")
        running.append((name, subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log))
    codes = {}
    for name, process, log in running:
        codes[name] = process.wait()
        log.close()
    return codes


def read_result(path):
    lines = [line.split()[1:] for line in Path(path).read_text().splitlines() if line.startswith("RESULT")]
    if not lines:
        raise SystemExit(f"timing failed, see {path}:\n" + Path(path).read_text()[-3000:])
    return float(lines[0][0]), int(lines[0][1])


def fit_epochs(steps_per_second, steps_per_epoch, seconds):
    """The epochs (to 0.01) that ``seconds`` of training at that speed covers."""
    return math.floor(steps_per_second * seconds / steps_per_epoch * 100) / 100


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--time":
        return timing_worker(int(argv[1]), argv[2:])
    parser = argparse.ArgumentParser(prog="python -m train.budget", description=__doc__.split("\n")[0])
    parser.add_argument("recipes", nargs="+", help="each a quoted recipe command: 'pixel-gpt --bf16 ...'")
    parser.add_argument("--minutes", type=float, required=True, help="the wall-clock budget of every run")
    parser.add_argument("--margin", type=float, default=0.1, help="the fraction kept for held-out checks")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per recipe")
    parser.add_argument("--logs", default="runs/budget", help="the folder of the runs' logs")
    parser.add_argument("--dry-run", action="store_true", help="time the recipes, print the commands, run none")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or not 0 <= args.margin < 1 or args.steps < 1:
        raise SystemExit(f"--minutes must be > 0 (got {args.minutes}), --margin in [0, 1) (got {args.margin}) "
                         f"and --steps >= 1 (got {args.steps})")
    recipes = [shlex.split(r) for r in args.recipes]
    for flags in recipes:
        if "--epochs" in flags or "--max-minutes" in flags:
            raise SystemExit(f"{shlex.join(flags)}: leave --epochs and --max-minutes to the budget")
    names = [flags[flags.index("--name") + 1] if "--name" in flags[:-1] else flags[0] for flags in recipes]
    if len(set(names)) < len(names):
        raise SystemExit(f"two recipes share a name: {names} (give one --name)")
    logs = Path(args.logs)
    logs.mkdir(parents=True, exist_ok=True)
    python = [sys.executable, "-m"]
    codes = run_all([(f"{n}.timing", [*python, "train.budget", "--time", str(args.steps), *flags])
                     for n, flags in zip(names, recipes)], logs)
    commands = []
    for name, flags in zip(names, recipes):
        if codes[f"{name}.timing"]:  # the others still run
            print(f"{name}: timing failed, not run:\n" + (logs / f"{name}.timing.log").read_text()[-2000:], flush=True)
            continue
        rate, per_epoch = read_result(logs / f"{name}.timing.log")
        epochs = fit_epochs(rate, per_epoch, args.minutes * 60 * (1 - args.margin))
        if epochs <= 0:
            raise SystemExit(f"{name}: at {rate:.2f} steps/s, {args.minutes} minutes is less than 0.01 of an epoch "
                             f"({per_epoch} steps)")
        print(f"{name}: {rate:.2f} steps/s, {per_epoch} steps per epoch -> --epochs {epochs}", flush=True)
        commands.append((name, [*python, "train", *flags, "--epochs", str(epochs),
                                "--max-minutes", str(args.minutes)]))
    for name, command in commands:
        print(shlex.join(command[1:]), flush=True)
    if args.dry_run:
        return
    started = time.time()
    codes = run_all(commands, logs)
    print(f"all runs ended after {(time.time() - started) / 60:.2f} min: exit codes {codes}")
    if any(codes.values()) or len(commands) < len(recipes):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
