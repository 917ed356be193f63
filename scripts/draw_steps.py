"""The picture after each step of a model's schedule, one row per class: how a next-scale model
(VAR) draws, coarse to fine.

    python scripts/draw_steps.py var -o docs/var_steps.png
    python scripts/draw_steps.py games-var -o docs/games_var_steps.png

Each row is one image of one class at the model's recommended settings (seed 0), its columns the
pictures shown after each step (the last is the finished image). Meant for schedules of a few
steps: a raster model's rows would be hundreds of pictures long.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argen  # noqa: E402
from argen import pipelines, render  # noqa: E402
from argen.hub import recommended_guidance, recommended_temperature, recommended_top_k  # noqa: E402

MAX_STEPS = 16


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model")
    parser.add_argument("-o", "--out", required=True, help="the PNG to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = argen.load(args.model)
    steps = model.schedule().num_steps(model.num_values)
    if steps > MAX_STEPS:
        raise SystemExit(f"{args.model} draws in {steps} steps; this picture is for schedules of at most {MAX_STEPS}")
    classes = list(range(max(model.num_classes, 1)))
    guidance = recommended_guidance(args.model) if model.can_guide else None
    frames = list(pipelines.generate(model, classes, seed=args.seed, every=1, guidance=guidance,
                                     temperature=recommended_temperature(args.model),
                                     top_k=recommended_top_k(args.model)))
    columns = torch.stack([pipelines.pictures(model, frame) for frame in frames], 1)  # (classes, steps, C, H, W)
    picture = render.grid(columns.flatten(0, 1), nrow=len(frames), scale=2 if model.codec.picture_shape[1] > 32 else 4)
    picture.save(args.out)
    print(f"{args.out}: {len(classes)} rows of {len(frames)} steps ({model.schedule()})")


if __name__ == "__main__":
    main()
