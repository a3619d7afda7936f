"""bertkit: fine-tune, evaluate, predict and serve BERT-family text models.

Public names are imported lazily so that ``import bertkit`` (and ``bertkit --help``) stays fast and
has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bertkit.exceptions import (
    BertkitError,
    BertkitWarning,
    ConfigError,
    DataError,
    ModelLoadError,
    NotFittedError,
)

__version__ = "0.1.0"
__all__ = [
    "BertkitError",
    "BertkitWarning",
    "ConfigError",
    "DataError",
    "Distiller",
    "ModelLoadError",
    "NotFittedError",
    "ModelKind",
    "QuestionAnswerer",
    "TextClassifier",
    "TextEmbedder",
    "TokenTagger",
    "TrainConfig",
    "load_data",
    "load_tagged_data",
    "read_squad",
    "is_main_process",
    "predict_ray",
    "cross_validate",
    "train_seeds",
    "tune",
    "__version__",
]

_LAZY = {
    "Distiller": ("bertkit.distillation", "Distiller"),
    "ModelKind": ("bertkit.models.kinds", "ModelKind"),
    "QuestionAnswerer": ("bertkit.qa.estimator", "QuestionAnswerer"),
    "read_squad": ("bertkit.qa.squad", "read_squad"),
    "TextClassifier": ("bertkit.classification.estimator", "TextClassifier"),
    "TextEmbedder": ("bertkit.embeddings", "TextEmbedder"),
    "TokenTagger": ("bertkit.tagging.estimator", "TokenTagger"),
    "TrainConfig": ("bertkit.config", "TrainConfig"),
    "load_data": ("bertkit.data.dataset", "load_file"),
    "load_tagged_data": ("bertkit.tagging.conll", "load_tagged"),
    "is_main_process": ("bertkit.ddp", "is_main_process"),
    "predict_ray": ("bertkit.ray_predict", "predict_ray"),
    "train_seeds": ("bertkit.seeds", "train_seeds"),
    "cross_validate": ("bertkit.cross_validation", "cross_validate"),
    "tune": ("bertkit.tuning", "tune"),
}

if TYPE_CHECKING:
    from bertkit.classification.estimator import TextClassifier
    from bertkit.config import TrainConfig
    from bertkit.cross_validation import cross_validate
    from bertkit.data.dataset import load_file as load_data
    from bertkit.ddp import is_main_process
    from bertkit.distillation import Distiller
    from bertkit.embeddings import TextEmbedder
    from bertkit.models.kinds import ModelKind
    from bertkit.qa.estimator import QuestionAnswerer
    from bertkit.qa.squad import read_squad
    from bertkit.ray_predict import predict_ray
    from bertkit.seeds import train_seeds
    from bertkit.tagging.conll import load_tagged as load_tagged_data
    from bertkit.tagging.estimator import TokenTagger
    from bertkit.tuning import tune


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'bertkit' has no attribute {name!r}")
