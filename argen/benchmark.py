"""Sampling speed of the shipped models on this machine (figures, not assertions).

    python -m argen.benchmark [names...] [--threads 2] [--naive]
    python -m argen.benchmark row-lstm --all-threads      # one image on 2 threads too (the sampler's rule off)
    python -m argen.benchmark row-lstm --thread-rule --repeats 9   # one image: 1 thread against 2, interleaved
    python -m argen.benchmark games-maskgit --profile     # where one image's time goes, by operator
    python -m argen.benchmark gated-pixelcnn --sampler    # the sampler's own time, with fixed logits
    python -m argen.benchmark --linear                    # a fast path's products: MKL against packed oneDNN

For each model: seconds to the first streamed frame (one row of pixels, the app's default speed)
and to a whole image, for one image and for a batch of ten (one per digit). One image's fast path
runs on one thread whatever ``--threads`` says (``argen.sampling.step_threads``, applied here) unless
``--all-threads``; a batch of ten on ``--threads``. With ``--naive``
also the naive path (the whole network once per pixel) and the fast path's speed-up, for one
image and for ten.
"""
import argparse
import math
import time

import torch

from . import sampling
from .hub import available, load, recommended_guidance, recommended_top_k
from .pipelines import generate, steps_for_pixels


def time_stream(model, batch, fast, every, schedule=None, guidance=None, repeats=1, top_k=None):
    """(seconds to the first frame, seconds to the whole image), one image per class up to ``batch``:
    the best of ``repeats`` runs (the same work each time, so the best is the least disturbed by
    whatever else the machine runs)."""
    best_first = best_whole = math.inf
    count = sampling.run_threads(model, batch, guidance) if fast else torch.get_num_threads()
    for _ in range(repeats):
        with sampling.threads(count):  # the sampler's thread rule (step_threads), applied here
            started = time.perf_counter()
            first = None
            for _ in generate(model, [i % 10 for i in range(batch)], seed=0, every=every, fast=fast,
                              schedule=schedule, guidance=guidance, top_k=top_k):
                first = first or time.perf_counter() - started
            best_first, best_whole = min(best_first, first), min(best_whole, time.perf_counter() - started)
    return best_first, best_whole


def sampler_seconds(model, repeats=9, guidance=None, top_k=None):
    """The sampler's own seconds per image (best of ``repeats``) at ``guidance`` and ``top_k``: one image of a
    model whose fast path is replaced by fixed logits, so that only the sampler's work per step is
    timed."""
    logits = torch.randn(1, model.levels, generator=torch.Generator().manual_seed(0))
    model.fast_sampler = lambda y, batch: (lambda x, t: logits.expand(batch, -1))  # this instance only
    seconds = time_stream(model, 1, True, model.num_values, guidance=guidance, repeats=repeats, top_k=top_k)[1]
    del model.fast_sampler
    return seconds


def profile(model, rows=8, guidance=None):
    """The operators that take most of one image's sampling time (torch.profiler, after a warm-up),
    at guidance ``guidance``, as printed lines: seconds, share of the total, calls."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as run_profiler

    from .sampling import requests, sample

    sample(model, seed=0, guidance=guidance, **requests(model, [0]))
    with run_profiler(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        sample(model, seed=0, guidance=guidance, **requests(model, [0]))
        total = time.perf_counter() - started
    ops = sorted(prof.key_averages(), key=lambda op: op.self_cpu_time_total, reverse=True)[:rows]
    lines = [f"  one image: {total:.3f} s (under the profiler)"]
    for op in ops:
        seconds = op.self_cpu_time_total / 1e6
        lines.append(f"  {op.key:<40} {seconds:>7.3f} s {seconds / total:>6.1%} {op.count:>7} calls")
    return lines


def thread_lines(names, repeats):
    """One image at each model's defaults (guided where it guides), on one thread and on all
    ``torch.get_num_threads()``, the two runs interleaved ``repeats`` times so that both see the
    same machine: best and median seconds of each, as printed lines."""
    rule, threads = sampling.ONE_THREAD_ROWS, torch.get_num_threads()
    lines = [f"{'model':<22} {'1 thread: best':>14} {'median':>7} {f'{threads} threads: best':>16} {'median':>7}"]
    try:
        for name in names:
            model = load(name)
            guidance, top_k = recommended_guidance(name), recommended_top_k(name)
            times = {rule: [], 0: []}  # the rule's rows: one thread for one image (the rule), all threads (0)
            for _ in range(repeats + 1):  # the first pair warms up
                for rows in times:
                    sampling.ONE_THREAD_ROWS = rows
                    times[rows].append(time_stream(model, 1, True, model.num_values, guidance=guidance, top_k=top_k)[1])
            one, every = (sorted(t[1:]) for t in times.values())
            lines.append(f"{name:<22} {one[0]:>14.3f} {one[repeats // 2]:>7.3f} "
                         f"{every[0]:>16.3f} {every[repeats // 2]:>7.3f}")
    finally:
        sampling.ONE_THREAD_ROWS = rule
    return lines


LINEAR_SHAPES = [(1024, 256), (1024, 288), (256, 256), (384, 128)]  # (out, in): the LSTMs' and smaller weights


def linear_lines(rows=(1, 2, 4, 10), repeats=2000):
    """Microseconds per product of a few rows with each of ``LINEAR_SHAPES`` (median of ``repeats``),
    by F.linear and by oneDNN with the weight packed once (``argen.models.layers.packed_linear``),
    as printed lines."""
    import torch.nn.functional as F

    from .models.layers import packed_linear

    def median_us(fn, x):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2] * 1e6

    generator = torch.Generator().manual_seed(0)
    lines = [f"{'weight':<11} {'rows':>4} {'F.linear us':>12} {'packed us':>10}"]
    for out_features, in_features in LINEAR_SHAPES:
        weight = torch.randn(out_features, in_features, generator=generator)
        bias = torch.randn(out_features, generator=generator)
        for r in rows:
            x = torch.randn(r, in_features, generator=generator)
            packed = packed_linear(weight, bias, r)
            plain_us = median_us(lambda v: F.linear(v, weight, bias), x)
            packed_us = "—" if packed is None else f"{median_us(packed, x):.1f}"
            lines.append(f"{f'{out_features}x{in_features}':<11} {r:>4} {plain_us:>12.1f} {packed_us:>10}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m argen.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="models (default: all shipped)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (a CPU-basic Space has 2)")
    parser.add_argument("--naive", action="store_true", help="also time the naive path (one run each)")
    parser.add_argument("--repeats", type=int, default=3, help="the fast path's figures: the best of this many runs")
    parser.add_argument("--profile", action="store_true", help="only show where one image's time goes")
    parser.add_argument("--sampler", action="store_true",
                        help="only time the sampler's own work per image (the model's fast path replaced by fixed logits)")
    parser.add_argument("--all-threads", action="store_true",
                        help="run one image's fast path on all --threads too (the sampler's one-thread rule off), to compare")
    parser.add_argument("--thread-rule", action="store_true",
                        help="only time one image at the model's defaults on one thread against all --threads, "
                             "interleaved --repeats times (best and median of each)")
    parser.add_argument("--linear", action="store_true",
                        help="only time a fast path's products of a few rows: F.linear against oneDNN with a packed weight")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.all_threads:
        sampling.ONE_THREAD_ROWS = 0
    if args.linear:
        with torch.no_grad():
            print("\n".join(linear_lines()))
        return
    names = args.names or available()
    if args.thread_rule:
        print("\n".join(thread_lines(names, args.repeats)))
        return
    if args.profile:
        for name in names:
            guidance = recommended_guidance(name)
            print(name if guidance == 1 else f"{name} at guidance {guidance:g} (its default)")
            print("\n".join(profile(load(name), guidance=guidance)))
        return
    if args.sampler:
        for name in names:
            model = load(name)
            if not model.has_fast_path or model.schedule().num_steps(model.num_values) != model.num_values:
                print(f"{name}: no fast path one value at a time")
                continue
            seconds = sampler_seconds(model)
            print(f"{name}: the sampler alone {seconds:.3f} s per image, {seconds / model.num_values * 1e6:.0f} us per step")
            guidance, top_k = recommended_guidance(name), recommended_top_k(name)
            if guidance != 1.0 or top_k:
                seconds = sampler_seconds(model, guidance=guidance, top_k=top_k)
                print(f"{name}: the sampler alone at guidance {guidance:g}" + (f", top-k {top_k}" if top_k else "")
                      + f" {seconds:.3f} s per image, {seconds / model.num_values * 1e6:.0f} us per step")
        return
    w = max([16, *map(len, names)])
    print(f"{'model':<{w}} {'path':<6} {'first frame s':>13} {'1 image s':>10} {'10 images s':>12} "
          f"{'speed-up 1':>11} {'speed-up 10':>12}")
    for name in names:
        model = load(name)
        width = steps_for_pixels(model, model.codec.picture_shape[2])  # a row of pixels per frame (the app's default)
        time_stream(model, 1, True, width)  # warm-up
        fast_first, fast_one = time_stream(model, 1, True, width, repeats=args.repeats)
        fast_ten = time_stream(model, 10, True, model.num_values, repeats=args.repeats)[1]
        label = "fast" if model.has_fast_path else "naive"
        print(f"{name:<{w}} {label:<6} {fast_first:>13.3f} {fast_one:>10.2f} {fast_ten:>12.2f}")
        guidance, top_k = recommended_guidance(name), recommended_top_k(name)
        if guidance != 1.0:  # the model's defaults: what the app and the report card sample with
            guided_first, guided_one = time_stream(model, 1, True, width, guidance=guidance, repeats=args.repeats,
                                                   top_k=top_k)
            guided_ten = time_stream(model, 10, True, model.num_values, guidance=guidance, repeats=args.repeats,
                                     top_k=top_k)[1]
            print(f"{name:<{w}} {f'g={guidance:g}':<6} {guided_first:>13.3f} {guided_one:>10.2f} {guided_ten:>12.2f}"
                  + (f"  (top-k {top_k})" if top_k else ""))
        if args.naive and model.has_fast_path:
            naive_first, naive_one = time_stream(model, 1, False, width)
            naive_ten = time_stream(model, 10, False, model.num_values)[1]
            print(f"{name:<{w}} {'naive':<6} {naive_first:>13.3f} {naive_one:>10.2f} {naive_ten:>12.2f} "
                  f"{naive_one / fast_one:>10.1f}x {naive_ten / fast_ten:>11.1f}x")


if __name__ == "__main__":
    main()
