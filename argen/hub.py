"""Finding and loading shipped models: ``<weights>/<name>/config.json`` + ``model.safetensors``.

The weights folder is the repo's ``weights/`` (``argen/weights`` in an installed package), or what ``$ARGEN_WEIGHTS`` names: a local folder,
or a Hugging Face Hub model repo id (``user/repo``, laid out like ``weights/``) that is fetched
once through huggingface_hub and then read from its local cache.
"""
import functools
import json
import os
from pathlib import Path

from safetensors.torch import load_file

from .classifier import Classifier
from .configs import CONFIG, WEIGHTS, build, read_config, write_atomic
from .models import FAMILIES, BSQTokenizer

PACKAGE = Path(__file__).resolve().parent
# a checkout's weights/, or the copy an installed package carries
WEIGHTS_DIR = PACKAGE.parent / "weights" if (PACKAGE.parent / "weights").is_dir() else PACKAGE / "weights"
METRICS, SAMPLES = "metrics.json", "samples.png"
OTHER_MODULES = {BSQTokenizer.model_type: BSQTokenizer, Classifier.model_type: Classifier}


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


def model_type(directory):
    """The registered type of the module in a folder (None when it holds none)."""
    try:
        config = read_config(directory)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return config.get("model_type")


def available():
    """Names of the shipped generative models: folders holding weights and a config whose
    ``model_type`` is a registered family (the tokenizer and the classifier are not generators)."""
    root = weights_dir()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if (d / WEIGHTS).is_file() and model_type(d) in FAMILIES)


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
    """Load a shipped module (a generative model, the tokenizer or the classifier) in eval mode on
    the CPU, from local files only (no network)."""
    directory = model_dir(name_or_dir)
    if not (directory / WEIGHTS).is_file():
        raise FileNotFoundError(f"model folder {directory} has no {WEIGHTS}")
    config = read_config(directory)
    modules = {**FAMILIES, **OTHER_MODULES}
    if config["model_type"] not in modules:
        raise ValueError(f"{directory / CONFIG}: unknown model_type {config['model_type']!r}, expected one of "
                         f"{sorted(modules)}")
    module = build(modules[config["model_type"]], config)
    module.load_state_dict(load_file(directory / WEIGHTS))
    module.name = directory.name  # what a compressed file names to be decompressed with
    return module.eval()


def read_metrics(name_or_dir):
    """The model's ``metrics.json`` as a dict ({} when it has none)."""
    path = model_dir(name_or_dir) / METRICS
    return json.loads(path.read_text()) if path.is_file() else {}


def tuned(name_or_dir):
    """The sampling settings chosen for a colour model on what its samples contain
    (``fidelity_tuning.recommended`` in its metrics.json, from ``python -m argen.fidelity NAME --tune``),
    else {}."""
    return read_metrics(name_or_dir).get("fidelity_tuning", {}).get("recommended", {})


def recommended_guidance(name_or_dir):
    """The guidance scale measured best for a model (tuned on fidelity for a colour model, else
    ``guidance.recommended`` in its metrics.json, from ``python -m argen.evaluate NAME --guidance ...``,
    which measures only models that can guide), else 1 (none): the model's default."""
    chosen = tuned(name_or_dir)
    if "guidance" in chosen:
        return chosen["guidance"] or 1.0
    return read_metrics(name_or_dir).get("guidance", {}).get("recommended", 1.0)


def recommended_top_k(name_or_dir):
    """The top-k measured best for a model (tuned on fidelity for a colour model, else
    ``top_k.recommended`` in its metrics.json, from ``python -m argen.evaluate NAME --top-k ...``), else
    None (all values): the model's default."""
    chosen = tuned(name_or_dir)
    if "top_k" in chosen:
        return chosen["top_k"]
    return read_metrics(name_or_dir).get("top_k", {}).get("recommended")


def recommended_temperature(name_or_dir):
    """The temperature measured best for a model (tuned on fidelity for a colour model), else 1."""
    return tuned(name_or_dir).get("temperature", 1.0)


def write_report(directory, metrics, samples=None):
    """The one writer of a model folder's measurements: ``metrics.json`` (atomically) and, given a
    PIL picture, its sample grid ``samples.png``."""
    directory = Path(directory)
    write_atomic(directory / METRICS, json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if samples is not None:
        tmp = directory / (SAMPLES + ".tmp")
        samples.save(tmp, format="png")
        tmp.replace(directory / SAMPLES)
