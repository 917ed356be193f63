"""Run by tests/test_distributed.py under torchrun: trains a tiny model with an objective that
records which training images each process is given, into <out>/rank<r>.json."""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import make_tiny  # noqa: E402
from train.loop import TrainConfig, init_processes, train  # noqa: E402
from train.objectives import Likelihood  # noqa: E402


class Recording(Likelihood):
    def __init__(self):
        self.seen = []

    def batch(self, model, images, labels, generator):
        self.seen.append(labels.tolist())  # the labels here are the images' indices
        return super().batch(model, images, labels % model.num_classes, generator)


def main(out):
    processes = init_processes("cpu")
    model = make_tiny("mlp-v3")
    images = torch.randint(0, 256, (40, *model.value_shape), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    objective = Recording()
    config = TrainConfig(epochs=2, batch_size=8, warmup_steps=1, log_every=1)
    train(model, objective, (images, torch.arange(40)), (images[:8], torch.arange(8)), config,
          Path(out) / "probe.pt", processes=processes)
    (Path(out) / f"rank{processes.rank}.json").write_text(json.dumps(objective.seen))
    processes.close()


if __name__ == "__main__":
    main(sys.argv[1])
