"""Finding and loading shipped models: ``<weights>/<name>/config.json`` + ``model.safetensors``.

The weights folder is the repo's ``weights/``, or what ``$ARGEN_WEIGHTS`` names: a local folder,
or a Hugging Face Hub model repo id (``user/repo``, laid out like ``weights/``) that is fetched
once through huggingface_hub and then read from its local cache.
"""
import functools
import json
import os
from pathlib import Path

from .models import MODEL_TYPES

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
CONFIG, WEIGHTS, METRICS = "config.json", "model.safetensors", "metrics.json"


@functools.cache
def _hub_snapshot(repo_id):
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type="model"))


def weights_dir():
    """The folder the shipped models are read from (see the module docstring)."""
    source = os.environ.get("ARGEN_WEIGHTS")
    if not source:
        return WEIGHTS_DIR
    if Path(source).is_dir():
        return Path(source)
    if source.count("/") == 1 and not source.startswith((".", "/")):
        return _hub_snapshot(source)
    raise ValueError(f"ARGEN_WEIGHTS={source!r} is neither a folder nor a Hub repo id 'user/repo'")


def available():
    """Names of the shipped generative models (folders holding weights and a config whose
    ``model_type`` is a registered model family; the evaluation classifier is not one)."""
    root = weights_dir()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if (d / WEIGHTS).is_file() and (d / CONFIG).is_file()
                  and json.loads((d / CONFIG).read_text()).get("model_type") in MODEL_TYPES)


def model_dir(name_or_dir):
    """The folder of a shipped model name, or an existing folder given as a path."""
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    if (weights_dir() / str(name_or_dir)).is_dir():
        return weights_dir() / str(name_or_dir)
    raise ValueError(f"unknown model {name_or_dir!r}: expected one of {available()} or a folder holding "
                     f"{CONFIG} and {WEIGHTS}")


def load(name_or_dir):
    """Load a model in eval mode on the CPU, from local files only (no network)."""
    directory = model_dir(name_or_dir)
    for file in (CONFIG, WEIGHTS):
        if not (directory / file).is_file():
            raise FileNotFoundError(f"model folder {directory} has no {file}")
    config = json.loads((directory / CONFIG).read_text())
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise ValueError(f"{directory / CONFIG}: unknown model_type {model_type!r}, expected one of "
                         f"{sorted(MODEL_TYPES)}")
    model = MODEL_TYPES[model_type].from_pretrained(directory, map_location="cpu", local_files_only=True)
    return model.eval()


def read_metrics(name_or_dir):
    """The model's ``metrics.json`` as a dict ({} when it has none)."""
    path = model_dir(name_or_dir) / METRICS
    return json.loads(path.read_text()) if path.is_file() else {}


def write_metrics(directory, metrics):
    """Atomically write ``metrics.json`` (temp file + rename)."""
    path = Path(directory) / METRICS
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
