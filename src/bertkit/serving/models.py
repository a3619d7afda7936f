"""What the service serves: the model folder's kind, a safety check of its weights, and one small adapter
per kind over the public estimators (TextClassifier, QuestionAnswerer, TokenTagger, TextEmbedder).

Adapters run in the batcher's worker thread: ``run(items)`` takes a list of items merged from several
requests and returns one result per item, in order.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bertkit import ModelKind
from bertkit.exceptions import ModelLoadError

CLASSIFIER, QA, TAGGER = ModelKind.CLASSIFIER, ModelKind.QA, ModelKind.TAGGER
KINDS = tuple(ModelKind)
ROUTE_KIND = {"/predict": CLASSIFIER, "/qa": QA, "/tag": TAGGER}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_folder(folder: str | Path) -> Path:
    """The model folder, refused unless it exists and its weights are safetensors only (a pickle file can run
    code when loaded)."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"{folder}: no such model folder; pass a folder written by `bertkit train`")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path}: not a model folder (no config.json); pass a folder written by `bertkit train`")
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ModelLoadError(
            f"{path}: holds pickle weights ({', '.join(pickles)}); bertkit serve loads only safetensors, since "
            "unpickling can run code: re-save the model with save_pretrained (writes model.safetensors) and "
            "remove the pickle files"
        )
    if not any(path.glob("*.safetensors")):
        raise ModelLoadError(
            f"{path}: no model.safetensors; bertkit serve loads only safetensors weights "
            "(re-save the model with `bertkit train` or save_pretrained)"
        )
    return path


def detect_kind(folder: Path) -> str:
    """The folder's kind (:meth:`bertkit.ModelKind.of`: bertkit.json, else config.json's architectures), refused
    unless the service knows it."""
    kind = ModelKind.of(folder)
    if kind is None:
        raise ModelLoadError(f"{folder / 'config.json'}: unreadable ({_why_unreadable(folder / 'config.json')})")
    if kind not in KINDS:
        raise ModelLoadError(
            f"{folder / 'bertkit.json'}: unknown kind {kind!r}; bertkit serve knows {', '.join(KINDS)}"
        )
    return kind


def wrong_kind_message(route: str, kind: str) -> str:
    """The 404 message for an endpoint the folder's kind does not serve."""
    return f"this model folder holds {ModelKind(kind).description}; {route} needs {ROUTE_KIND[route].description}"


def jsonable(value: Any) -> Any:
    """Plain JSON values from numpy scalars/arrays, tuples, dataclasses and dicts (non-finite floats -> None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ClassifierAdapter:
    """Items: ``(text, pair or None)``; results: score rows (probabilities, or [value] for regression)."""

    def __init__(self, folder: Path, device: str, batch_size: int, precision: str = "auto") -> None:
        from bertkit import TextClassifier

        self.model = TextClassifier.load(folder, device=device)
        # A merged batch is one predict_proba call; inside it the estimator sorts by length and runs forward
        # passes of ``batch_size`` texts.
        self.model.set_params(predict_batch_size=batch_size)
        if precision != "auto":
            self.model.config_ = dataclasses.replace(self.model.config_, precision=precision)
        self.task = self.model.task_
        self.labels = self.model.classes_.tolist()

    @property
    def packed(self) -> bool:
        """Whether forward passes skip padding (the packed forward of BERT classifiers): then padding costs almost
        nothing and one pass per merged batch is fastest."""
        return self.model.packed_forward_

    def set_forward_batch_size(self, size: int) -> None:
        self.model.set_params(predict_batch_size=size)

    def run(self, items: list[tuple[str, str | None]]) -> list[np.ndarray]:
        out: list[Any] = [None] * len(items)
        singles = [i for i, (_, pair) in enumerate(items) if pair is None]
        pairs = [i for i, (_, pair) in enumerate(items) if pair is not None]
        for index, inputs in ((singles, [items[i][0] for i in singles]), (pairs, [items[i] for i in pairs])):
            if not index:
                continue
            if self.task == "regression":
                scores = self.model.decision_scores(inputs)[:, None]  # [n, 1]
            else:
                scores = self.model.predict_proba(inputs)  # [n, n_classes]
            for row, i in enumerate(index):
                out[i] = scores[row]
        return out

    def info(self) -> dict[str, Any]:
        config = self.model.config_
        metadata = getattr(self.model, "metadata_", {}) or {}
        thresholds = self.model.score_thresholds_  # on the scale of the probabilities served
        return {
            "task": self.task,
            "labels": jsonable(self.labels),
            "thresholds": None if thresholds is None else jsonable(thresholds),
            # Temperature(s) applied to the probabilities served (None: none saved, or --no-calibration).
            "temperature": jsonable(self.model.temperature_ if self.model.use_calibration else None),
            # torch, onnx or onnx-int8: what `bertkit train` chose on validation (bertkit.json "backend")
            "backend": getattr(self.model, "backend_", "torch"),
            "base_model": _public_name(config.model),
            "max_length": config.max_length,
            "validation_metrics": jsonable(getattr(self.model, "validation_metrics_", None)),
            "best_epoch": metadata.get("best_epoch"),
            "kept_epoch": metadata.get("kept_epoch"),
            "n_train_rows": metadata.get("n_train_rows"),
            "train_seconds": metadata.get("train_seconds"),
            # True: trained on text pairs, False: on single texts (the other shape is refused), None: not recorded
            "text_pair": getattr(self.model, "text_pair_", None),
        }

    def warmup(self) -> None:
        # Only the shape the model takes: a model that records its pair setting refuses the other one.
        text_pair = getattr(self.model, "text_pair_", None)
        self.run([item for item, pair in ((("warm up", None), False), (("warm up", "a pair"), True))
                  if text_pair is None or text_pair == pair])  # fmt: skip


class EmbedderAdapter:
    """Items: texts; results: mean-pooled embeddings of the folder's encoder (float32 rows)."""

    def __init__(self, folder: Path, device: str, batch_size: int, max_length: int) -> None:
        from bertkit import TextEmbedder

        self.model = TextEmbedder(str(folder), pooling="mean", max_length=max_length, batch_size=batch_size,
                                  device=device).fit()  # fmt: skip
        self.dimension = int(self.model.encoder_.config.hidden_size)

    def run(self, items: list[str]) -> list[np.ndarray]:
        return list(self.model.transform(items))

    def warmup(self) -> None:
        self.run(["warm up"])


def _public_name(model: str) -> str:
    """A hub id or alias as it is; a local path by its last part only (the service does not show paths)."""
    return Path(model).name if model.startswith(("/", ".", "~")) or "\\" in model else model


def _import_estimator(name: str, kind: str):
    import bertkit

    try:
        return getattr(bertkit, name)
    except AttributeError:
        raise ModelLoadError(
            f"this model folder holds {ModelKind(kind).description}, but this bertkit has no {name}; upgrade bertkit"
        ) from None


def _override_precision(model: Any, precision: str) -> None:
    """``--precision fp32|bf16`` replaces the precision saved with the model (``auto`` keeps it)."""
    if precision != "auto":
        model.config_ = dataclasses.replace(model.config_, precision=precision)


class QuestionAnswererAdapter:
    """Items: ``(question, context)``; results: the answer of ``QuestionAnswerer.predict`` for each."""

    def __init__(self, folder: Path, device: str, batch_size: int, precision: str = "auto") -> None:
        self.model = _import_estimator("QuestionAnswerer", QA).load(folder, device=device)
        _override_precision(self.model, precision)

    def run(self, items: list[tuple[str, str]]) -> list[Any]:
        answers = self.model.predict([q for q, _ in items], [c for _, c in items])
        # ids number the merged batch's questions; they mean nothing to one caller, so they are dropped.
        return [jsonable({k: v for k, v in a.items() if k != "id"}) for a in answers]

    def info(self) -> dict[str, Any]:
        return {"task": QA, "labels": []}

    def warmup(self) -> None:
        self.run([("what is warmed up?", "the model is warmed up.")])


class TaggerAdapter:
    """Items: texts; results: the tagged spans of ``TokenTagger.predict`` for each."""

    def __init__(self, folder: Path, device: str, batch_size: int, precision: str = "auto") -> None:
        self.model = _import_estimator("TokenTagger", TAGGER).load(folder, device=device)
        _override_precision(self.model, precision)

    def run(self, items: list[str]) -> list[Any]:
        return [jsonable(tags) for tags in self.model.predict(list(items))]

    def info(self) -> dict[str, Any]:
        labels = getattr(self.model, "classes_", None)  # not `or`: an array's truth value is ambiguous
        labels = getattr(self.model, "labels_", None) if labels is None else labels
        return {"task": TAGGER, "labels": jsonable(list(labels if labels is not None else []))}

    def warmup(self) -> None:
        self.run(["warm up the tagger"])


ADAPTERS = {CLASSIFIER: ClassifierAdapter, QA: QuestionAnswererAdapter, TAGGER: TaggerAdapter}


def _why_unreadable(path: Path) -> str:
    """What is wrong with a config.json that :func:`bertkit.ModelKind.of` could not read: the reader's own words."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return str(exc)
    return f"{type(config).__name__!r} object is not a JSON object of settings"
