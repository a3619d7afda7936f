"""A text classifier's folder: a Hugging Face model folder plus bertkit.json (task, labels, thresholds,
config, metrics, history) and train_config.json (the resolved options, for ``bertkit train --config``)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bertkit.config import TrainConfig
from bertkit.devices import device_type, resolve_device
from bertkit.exceptions import BertkitWarning, ConfigError, ModelLoadError
from bertkit.models import heads
from bertkit.models.card import write_card
from bertkit.models.checkpoints import library_versions, load_tokenizer, plain_max_length, resolve_checkpoint
from bertkit.models.folder_check import check_folder
from bertkit.models.folders import read_metadata, save_folder
from bertkit.models.kinds import ModelKind, folder_kind
from bertkit.models.rust_tokenizer import load_rust_tokenizer
from bertkit.onnx_forward import ONNX_DIR

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
TRAINED_BY = "bertkit train"


class FittedClassifier(Protocol):
    """The fitted attributes :func:`save_classifier` reads (a fitted ``TextClassifier``'s); the optional ones
    (``history_``, ``validation_metrics_``, ``metadata_``, ``text_pair_``, ...) are read when present."""

    model_: Any
    tokenizer_: Any
    task_: str
    classes_: np.ndarray
    thresholds_: np.ndarray | None
    config_: TrainConfig


def save_classifier(classifier: FittedClassifier, folder: str | Path) -> Path:
    """Write ``classifier``'s folder (see :meth:`TextClassifier.save`); returns it."""
    metadata = {
        **getattr(classifier, "metadata_", {}),
        "format": 1,
        "kind": ModelKind.CLASSIFIER,
        "task": classifier.task_,
        "classes": np.asarray(classifier.classes_).tolist(),  # Python values: int64 is no JSON number
        # Trained on (text, text_pair) or single texts: prediction refuses the other shape (None: not known).
        "text_pair": getattr(classifier, "text_pair_", None),
        "thresholds": None if classifier.thresholds_ is None else [float(t) for t in classifier.thresholds_],
        # Temperature(s) applied to the logits before softmax/sigmoid (thresholds above stay on the uncalibrated
        # scale), and the sorted conformity scores behind prediction sets: see classification/calibration.py
        # and conformal.py.
        **calibration_metadata(classifier),
        "config": classifier.config_.to_dict(),
        "validation_metrics": getattr(classifier, "validation_metrics_", None),
        "best_epoch": getattr(classifier, "best_epoch_", None),
        "kept_epoch": getattr(classifier, "kept_epoch_", None),
        "history": getattr(classifier, "history_", None),
        "train_seconds": getattr(classifier, "train_seconds_", None),
        "n_train_rows": getattr(classifier, "n_train_rows_", None),
        "data_fingerprint": getattr(classifier, "data_fingerprint_", None),
        "versions": library_versions(),
    }
    metadata.pop("backend", None)  # the graphs it names are those of an export, not of this save
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ModelLoadError(f"{folder}: is a file, where save writes a model folder; choose another path")
    stale = folder / ONNX_DIR
    if stale.is_dir():  # graphs exported from the weights this save replaces: they would predict for the old model
        shutil.rmtree(stale)
    folder = save_folder(folder, classifier.model_, classifier.tokenizer_, metadata)
    write_card(folder, metadata)  # README.md: the Hugging Face model card (models/card.py)
    # Every option of the run, resolved (batch size and learning rate filled in), plus the data options the
    # CLI recorded in metadata_["run_options"]: `bertkit train --config folder/train_config.json` repeats it.
    options = {**classifier.config_.to_dict(), **getattr(classifier, "metadata_", {}).get("run_options", {})}
    (folder / "train_config.json").write_text(json.dumps(options, indent=2, default=str) + "\n", encoding="utf-8")
    return folder


def calibration_metadata(classifier: FittedClassifier) -> dict[str, Any]:
    """bertkit.json's ``calibration`` (the temperature(s)) and ``conformal`` (sorted scores) entries; empty
    for a model without them (regression, or loaded from a folder that has none)."""
    temperature = getattr(classifier, "temperature_", None)
    if temperature is None:
        return {}
    value = float(temperature) if np.ndim(temperature) == 0 else [float(t) for t in temperature]
    entries: dict[str, Any] = {"calibration": {"method": "temperature", "temperature": value}}
    check = getattr(classifier, "calibration_check_", None)
    if check is not None:  # why the temperature is what it is (1 when cross-fitting showed no gain)
        entries["calibration"].update(check.to_dict())
    scores = getattr(classifier, "conformal_scores_", None)
    if scores is not None:
        entries["conformal"] = {"score": "lac", "n": len(scores), "scores": [float(s) for s in scores]}
    return entries


def saved_calibration(metadata: dict[str, Any]) -> tuple[Any, np.ndarray | None]:
    """(temperature: a float, an array per label, or None; sorted conformity scores or None) of bertkit.json."""
    temperature = (metadata.get("calibration") or {}).get("temperature")
    if isinstance(temperature, list):
        temperature = np.asarray(temperature, dtype=np.float64)
    scores = (metadata.get("conformal") or {}).get("scores")
    return temperature, None if scores is None else np.asarray(scores, dtype=np.float64)


@dataclass
class LoadedClassifier:
    """What a classifier folder holds, ready for prediction: the model on its device, in eval mode."""

    model: Any
    tokenizer: Any
    config: TrainConfig
    """The saved options (or ones made for a plain Hugging Face folder), with the device and precision asked."""
    task: str
    classes: list[Any]
    thresholds: np.ndarray | None
    metadata: dict[str, Any]
    """bertkit.json as saved (empty for a plain Hugging Face folder)."""
    text_pair: bool | None = None
    """Whether the model was trained on text pairs; None when the folder does not record it."""
    onnx_forward: Any = None
    """The ONNX Runtime forward under ``backend="onnx"`` or ``"onnx-int8"``, else None."""
    backend: str = "torch"
    """The backend that predicts (``auto`` resolved: see :func:`resolve_backend`)."""

    def restore(self, estimator: Any) -> None:
        """Set ``estimator``'s fitted attributes (those :func:`save_classifier` reads) from this folder's."""
        estimator.model_, estimator.tokenizer_ = self.model, self.tokenizer
        estimator.task_, estimator.classes_, estimator.config_ = self.task, self.classes, self.config
        estimator.thresholds_ = self.thresholds
        estimator.temperature_, estimator.conformal_scores_ = saved_calibration(self.metadata)
        estimator.text_pair_ = self.text_pair
        metadata = self.metadata
        estimator.history_ = metadata.get("history") or []
        estimator.validation_metrics_ = metadata.get("validation_metrics")
        estimator.best_epoch_, estimator.kept_epoch_ = metadata.get("best_epoch"), metadata.get("kept_epoch")
        estimator.metadata_ = {k: v for k, v in metadata.items() if k not in ("versions",)}
        if self.onnx_forward is not None:
            estimator.onnx_forward_ = self.onnx_forward
        estimator.backend_ = self.backend


def load_classifier(folder: str | Path, *, device: str, backend: str, precision: str | None) -> LoadedClassifier:
    """Read a folder written by :func:`save_classifier` or any Hugging Face sequence-classification model
    (see :meth:`TextClassifier.load`)."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)} (got {backend!r})")
    checkpoint = resolve_checkpoint(folder, trained_by=TRAINED_BY)
    metadata = read_metadata(checkpoint) or {}
    _check_kind(folder, checkpoint, metadata)
    check_folder(folder, checkpoint, ModelKind.CLASSIFIER)
    asked = backend
    if backend == "auto":
        backend = resolve_backend(metadata, checkpoint, device)
    onnx_forward = None
    if backend != "torch":
        try:
            onnx_forward = exported_graph(checkpoint, backend)
        except ModelLoadError as exc:
            if asked != "auto":
                raise
            # The default backend's graph no longer fits the weights: torch predicts right, only slower.
            warnings.warn(f"{exc}; predicting with torch meanwhile", BertkitWarning, stacklevel=3)
            backend = "torch"
    # An ONNX graph predicts: neither the torch model nor transformers' tokenizer classes are needed (torch is then
    # never imported); the model loads if something asks for it (export, save).
    if backend == "torch":
        model, tokenizer = heads.load_classifier(checkpoint), load_tokenizer(checkpoint, trained_by=TRAINED_BY)
    else:
        model, tokenizer = heads.DeferredClassifier(checkpoint), load_rust_tokenizer(checkpoint, trained_by=TRAINED_BY)
    if metadata:
        config = TrainConfig.from_dict(metadata["config"])
        task, classes = metadata["task"], metadata["classes"]
    else:
        task, classes = task_from_hf_config(model.config)
        config = TrainConfig(model=str(folder), task=task, max_length=plain_max_length(model.config, tokenizer, 512))
    config = dataclasses.replace(config, device=device)
    if precision is not None:
        config = dataclasses.replace(config, precision=precision)
    if backend == "torch":
        model = model.to(resolve_device(device)).eval()
    saved_thresholds = metadata.get("thresholds")
    thresholds = np.asarray(saved_thresholds if saved_thresholds else [0.5] * len(classes)) if (
        task == "multi-label"
    ) else None  # fmt: skip
    text_pair = metadata.get("text_pair")
    return LoadedClassifier(
        model, tokenizer, config, task, classes, thresholds, metadata, text_pair=text_pair, onnx_forward=onnx_forward,
        backend=backend,
    )  # fmt: skip


def exported_graph(checkpoint: str, backend: str) -> Any:
    """The ONNX Runtime forward of the folder's ``onnx`` or ``onnx-int8`` graph, checked to be this model's
    (:func:`bertkit.onnx_forward.check_graph`)."""
    from bertkit.onnx_forward import OnnxForward, check_graph, onnx_path

    path = onnx_path(checkpoint, "int8" if backend == "onnx-int8" else None)
    forward = OnnxForward(path)
    check_graph(forward, path, checkpoint, heads.SavedConfig.read(checkpoint).num_labels)
    return forward


def resolve_backend(metadata: dict[str, Any], checkpoint: str, device: str) -> str:
    """What ``backend="auto"`` loads: the default ``bertkit train`` chose and recorded (bertkit.json ``backend``,
    see :mod:`bertkit.fast_backend`) when its graph is in the folder, ONNX Runtime is installed and the model
    predicts on the CPU; else torch (a folder without the record, a GPU, a graph since deleted)."""
    chosen = (metadata.get("backend") or {}).get("default", "torch")
    if chosen not in ("onnx", "onnx-int8") or device_type(device) != "cpu":
        return "torch"
    from bertkit.onnx_forward import FILES, ONNX_DIR

    if not (Path(checkpoint) / ONNX_DIR / FILES["int8" if chosen == "onnx-int8" else None]).is_file():
        return "torch"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return chosen


def _check_kind(folder: str | Path, checkpoint: str, metadata: dict[str, Any]) -> None:
    """Refuse a folder holding another kind of model, naming the command that loads it."""
    kind = folder_kind(checkpoint) or ModelKind.CLASSIFIER  # None: a hub id, loaded as a classifier
    if kind not in tuple(ModelKind):
        raise ModelLoadError(
            f"{folder}: bertkit.json kind is {metadata.get('kind')!r}, not one of {', '.join(ModelKind)}; "
            "restore it (or re-save the model)"
        )
    if kind != ModelKind.CLASSIFIER:
        hint = {
            ModelKind.QA: "`bertkit qa evaluate/predict` (QuestionAnswerer.load)",
            ModelKind.TAGGER: "`bertkit tag evaluate/predict` (TokenTagger.load)",
        }.get(kind, "the matching bertkit class")
        raise ModelLoadError(f"{folder}: holds a {kind} model, not a text classifier; use {hint}")


def task_from_hf_config(config: Any) -> tuple[str, list[Any]]:
    """Task and classes of a plain Hugging Face classifier, from its config (problem_type, id2label)."""
    if config.problem_type == "regression" or (config.num_labels == 1 and config.problem_type is None):
        return "regression", []
    id2label = {int(k): v for k, v in config.id2label.items()}
    classes = [id2label[i] for i in range(config.num_labels)]
    return ("multi-label" if config.problem_type == "multi_label_classification" else "classification"), classes
