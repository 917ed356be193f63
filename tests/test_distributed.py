"""Data-parallel training under torchrun: two CPU processes (gloo) give the single-process result
on the same global batches, and a checkpoint written by two processes resumes on one."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import fake_mnist
from train.__main__ import main as train_main

ROOT = Path(__file__).resolve().parent.parent


def command(data, out, checkpoint, *extra):
    return ["mlp-v3", "--hidden-dim", "16", "--dropout", "0", "--batch-size", "32", "--warmup-steps", "2",
            "--threads", "1", "--data-dir", str(data), "--out", str(out), "--checkpoint", str(checkpoint), *extra]


def torchrun(args, processes=2):
    """``torchrun --nproc_per_node=processes`` with ``args`` (``-m train ...`` or a script)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc_per_node={processes}", *args],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def weights(out):
    return load_file(Path(out) / "mlp-v3" / "model.safetensors")


def assert_close(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=2e-5), name


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fake_mnist(tmp_path_factory.mktemp("mnist"))


def test_two_processes_match_one(data, tmp_path):
    """Two processes stopped after 4 of 6 steps hold the single process's weights after 4 steps, and
    one process resuming their checkpoint ends with the uninterrupted single-process weights."""
    train_main(command(data, tmp_path / "one", tmp_path / "one.pt", "--epochs", "2"))
    train_main(command(data, tmp_path / "one4", tmp_path / "one4.pt", "--epochs", "2", "--max-steps", "4"))
    torchrun(["-m", "train", *command(data, tmp_path / "two", tmp_path / "two.pt", "--epochs", "2", "--max-steps", "4")])
    assert_close(weights(tmp_path / "one4"), weights(tmp_path / "two"))
    train = json.loads((tmp_path / "two" / "mlp-v3" / "metrics.json").read_text())["train"]
    assert train["processes"] == 2 and train["backend"] == "gloo" and train["effective_batch_size"] == 32
    assert train["command"].startswith("torchrun --nproc_per_node=2 -m train mlp-v3") and train["steps"] == 4

    # finished by one process from the two processes' checkpoint: the uninterrupted result
    train_main(command(data, tmp_path / "rest", tmp_path / "two.pt", "--epochs", "2", "--resume"))
    assert json.loads((tmp_path / "rest" / "mlp-v3" / "metrics.json").read_text())["train"]["steps"] == 6
    assert_close(weights(tmp_path / "one"), weights(tmp_path / "rest"))


def test_each_process_reads_a_disjoint_shard_of_every_batch(tmp_path):
    from train.loop import epoch_order

    torchrun([str(ROOT / "tests" / "ddp_probe.py"), str(tmp_path)])
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert len(seen[0]) == len(seen[1]) == 10  # 2 epochs of 5 global batches of 8
    for step, (a, b) in enumerate(zip(*seen)):
        epoch, offset = divmod(step, 5)
        batch = epoch_order(40, 0, epoch)[offset * 8:(offset + 1) * 8].tolist()
        assert len(a) == len(b) == 4 and not set(a) & set(b) and sorted(a + b) == sorted(batch)


def test_throughput_script_prints_both_counts(data, capsys):
    from train.throughput import main as throughput

    throughput(["mlp-v3", "--processes", "1", "2", "--steps", "3", "--hidden-dim", "16", "--batch-size", "32",
                "--data-dir", str(data)])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[1] for row in rows] == ["1", "2"] and all(float(row[4]) > 0 for row in rows)
