"""Finding and loading shipped models: ``weights/<name>/config.json`` + ``model.safetensors``."""
import json
from pathlib import Path

from .models import MODEL_TYPES

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
CONFIG, WEIGHTS, METRICS = "config.json", "model.safetensors", "metrics.json"


def available():
    """Names of the shipped models (folders of ``weights/`` holding a config and weights)."""
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(d.name for d in WEIGHTS_DIR.iterdir() if (d / CONFIG).is_file() and (d / WEIGHTS).is_file())


def model_dir(name_or_dir):
    """The folder of a shipped model name, or an existing folder given as a path."""
    path = Path(name_or_dir)
    if path.is_dir():
        return path
    if (WEIGHTS_DIR / str(name_or_dir)).is_dir():
        return WEIGHTS_DIR / str(name_or_dir)
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
