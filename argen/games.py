"""Game scenes: ten Atari games, one class each, rendered offline into a deterministic dataset.

    python -m argen.games [--data-dir DIR] [--sizes 32x32 96x128]

The frames come from the Arcade Learning Environment (``ale-py``, which bundles the game ROMs, so
nothing is downloaded; the ROMs are licensed for research use, see docs/datasets.md). Each game is
played by a seeded random player that holds each random action for 1-8 frames; a frame is kept
every ``STRIDE`` emulator steps, never within ``SKIP_AFTER_RESET`` steps of a (re)start (title and
reset screens), and only when it differs from the last kept frame of its game (mean absolute
difference > ``MIN_CHANGE`` grey levels at 32 x 32). Episodes are cut at ``EPISODE_STEPS`` steps.
The train and test splits are played from different seeds, so no episode is in both.

Each frame (210 x 160 RGB) is shrunk to every requested size by area averaging. A size is one
file, ``<data>/games/games-<H>x<W>.npz``: ``train_images`` / ``test_images`` (uint8
``[N, 3, H, W]``, the games taking turns), ``train_labels`` / ``test_labels`` (int64, the game's
index in ``GAMES``) and ``class_names``. The same seed gives the same bytes on any machine, and the first n frames of a
game do not depend on how many are rendered (a prefix), which the tests check against a fixture.
"""
import argparse
import numpy as np

from .data import DATASETS, data_root, games_path

# ten games that look nothing alike: the ale-py ROM ids, in the order of the dataset's class names
ROMS = ("pong", "breakout", "space_invaders", "enduro", "freeway", "ms_pacman", "seaquest", "boxing", "riverraid",
        "road_runner")
CLASS_NAMES = DATASETS["games"].class_names
GAMES = tuple(zip(ROMS, CLASS_NAMES))
SPLITS = {"train": 6000, "test": 1000}  # frames per game
SEEDS = {"train": 1, "test": 2}
STRIDE, SKIP_AFTER_RESET, EPISODE_STEPS, MIN_CHANGE = 4, 100, 4000, 0.3
PIXEL_SIZE = DATASETS["games"].image_shape[1:]


def parse_size(text):
    """``"32x32"`` -> (32, 32)."""
    try:
        height, width = (int(s) for s in str(text).lower().split("x"))
    except ValueError:
        raise ValueError(f"a size is HEIGHTxWIDTH such as 32x32, got {text!r}") from None
    if not (4 <= height <= 210 and 4 <= width <= 160):
        raise ValueError(f"a size must lie within 4x4 and 210x160 (the Atari screen), got {text!r}")
    return height, width


def shrink(frame, size):
    """An RGB frame ``[210, 160, 3]`` -> uint8 ``[3, H, W]`` by area averaging."""
    from PIL import Image

    small = Image.fromarray(frame).resize((size[1], size[0]), Image.BOX)
    return np.asarray(small).transpose(2, 0, 1).copy()


def play(game, split, count, sizes=(PIXEL_SIZE,)):
    """The first ``count`` kept frames of one game's split, at each size: ``{size: uint8 [count, 3, H, W]}``."""
    from ale_py import ALEInterface, LoggerMode, roms

    if game not in dict(GAMES):
        raise ValueError(f"game must be one of {[g for g, _ in GAMES]}, got {game!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    seed = 1000 * [g for g, _ in GAMES].index(game) + SEEDS[split]
    ALEInterface.setLoggerMode(LoggerMode.Error)
    ale = ALEInterface()
    ale.setInt("random_seed", seed)
    ale.setFloat("repeat_action_probability", 0.0)
    ale.loadROM(roms.get_rom_path(game))
    actions, rng = ale.getMinimalActionSet(), np.random.default_rng(seed)
    kept = {size: [] for size in sizes}
    last, step, action, hold = None, 0, actions[0], 0
    while len(kept[sizes[0]]) < count:
        if ale.game_over() or step >= EPISODE_STEPS:
            ale.reset_game()
            step = 0
        if hold == 0:
            action, hold = actions[rng.integers(len(actions))], int(rng.integers(1, 9))
        ale.act(action)
        step, hold = step + 1, hold - 1
        if step < SKIP_AFTER_RESET or step % STRIDE:
            continue
        frame = ale.getScreenRGB()
        probe = shrink(frame, PIXEL_SIZE).astype(np.int16)
        if last is not None and np.abs(probe - last).mean() <= MIN_CHANGE:
            continue
        last = probe
        for size in sizes:
            kept[size].append(probe.astype(np.uint8) if size == PIXEL_SIZE else shrink(frame, size))
    return {size: np.stack(frames) for size, frames in kept.items()}


def render(sizes=(PIXEL_SIZE,), counts=None, progress=print):
    """Every game's train and test frames: ``{size: {"train_images": ..., "train_labels": ..., ...}}``.
    The games take turns (frame i of every game, then frame i + 1 ...), so that any first N frames
    of a split, such as the held-out images and the fixture, hold every game alike."""
    counts = counts or SPLITS
    out = {size: {"class_names": np.array(CLASS_NAMES)} for size in sizes}
    for split, count in counts.items():
        frames = {size: [] for size in sizes}
        for game, name in GAMES:
            for size, images in play(game, split, count, sizes).items():
                frames[size].append(images)
            if progress:
                progress(f"{split}: {name}, {count} frames")
        for size in sizes:
            out[size][f"{split}_images"] = np.stack(frames[size], 1).reshape(-1, *frames[size][0].shape[1:])
            out[size][f"{split}_labels"] = np.tile(np.arange(len(GAMES)), count)
    return out


def write(root, sizes=(PIXEL_SIZE,), progress=print):
    """Render the dataset into ``<root>/games/`` (each file written to a temp name, then renamed)."""
    for size, arrays in render(sizes, progress=progress).items():
        path = games_path(root, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        if progress:
            progress(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m argen.games", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="the data folder (default: $ARGEN_DATA or ./data)")
    parser.add_argument("--sizes", nargs="+", default=["32x32"], help="HEIGHTxWIDTH of each file (default 32x32)")
    args = parser.parse_args(argv)
    sizes = tuple(dict.fromkeys(parse_size(s) for s in args.sizes))
    write(data_root(args.data_dir), sizes)


if __name__ == "__main__":
    main()
