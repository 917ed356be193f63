"""Config dataclasses and the files they travel in: ``config.json`` + ``model.safetensors``.

Every argen module (the generative families, the tokenizer, the classifier) has one dataclass of
hyperparameters above its class, the single source of its defaults (nanoGPT's style). The module
keeps it as ``module.config``; saving writes ``{"model_type": ..., **fields}`` as config.json
beside the weights, loading rebuilds the dataclass from it, and the training CLI turns the same
fields into flags of the same names. Weights are safetensors, written to a temp file and renamed.
"""
import dataclasses
import json
from pathlib import Path

from safetensors.torch import save_model

CONFIG, WEIGHTS = "config.json", "model.safetensors"


class Configured:
    """Mixin for an ``nn.Module`` built from a config dataclass: ``Module(config)`` or
    ``Module(**fields)`` or ``Module(config, **overrides)``."""

    model_type = None  # the registry key, written into config.json
    config_class = None

    def resolve_config(self, config, overrides):
        """The config dataclass from a config (or a dict of fields) and keyword overrides."""
        if isinstance(config, dict):
            config = self.config_class(**config)
        if config is None:
            return self.config_class(**overrides)
        if not isinstance(config, self.config_class):
            raise ValueError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}")
        return dataclasses.replace(config, **overrides)

    def config_dict(self):
        """The JSON form of the config, with ``model_type``."""
        return {"model_type": self.model_type, **dataclasses.asdict(self.config)}

    def save(self, directory):
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (each atomically)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / CONFIG, json.dumps(self.config_dict(), indent=2, sort_keys=True) + "\n")
        tmp = directory / (WEIGHTS + ".tmp")
        save_model(self, str(tmp))
        tmp.replace(directory / WEIGHTS)

    @property
    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())


def write_atomic(path, text):
    """Write ``text`` to a temp file beside ``path`` and rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_config(directory):
    """The parsed config.json of a model folder."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"model folder {directory} has no {CONFIG}")
    return json.loads(path.read_text())


def build(module_class, fields):
    """A module of ``module_class`` from the fields of its config.json (``model_type`` dropped)."""
    names = {f.name for f in dataclasses.fields(module_class.config_class)}
    unknown = set(fields) - names - {"model_type"}
    if unknown:
        raise ValueError(f"unknown config fields {sorted(unknown)} for {module_class.__name__}; "
                         f"expected some of {sorted(names)}")
    return module_class(module_class.config_class(**{k: v for k, v in fields.items() if k in names}))
