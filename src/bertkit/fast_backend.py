"""The backend a trained classifier predicts with by default: the fastest one that scores as torch does.

After ``bertkit train`` saves a model, :func:`choose_backend` exports its ONNX graphs (fp32 and int8, each
checked against torch by :func:`bertkit.export.export_onnx`), runs every backend over the run's validation rows,
and records in ``bertkit.json`` (``backend``) each one's validation score and speed, and the default: the fastest
whose score is within :data:`TOLERANCE` of torch's. ``predict``, ``evaluate`` and ``serve`` load that default
(``backend="auto"``); ``--backend`` overrides. Quantization can cost accuracy on some models and not on others,
so it is measured on each model, never assumed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertkit.data.dataset import TextData
from bertkit.exceptions import ModelLoadError
from bertkit.models.folders import read_metadata, write_metadata

TOLERANCE = 0.005
"""Largest drop of the validation score (the task's main metric: 0.5 point of accuracy) a faster backend may
cost and still be the default."""
SCORED_BY = {"classification": "accuracy", "multi-label": "micro_f1", "regression": "pearson"}
"""The validation score backends are compared on (that of ``TextClassifier.score``)."""


@dataclass
class Candidate:
    """One backend's validation score and speed."""

    backend: str
    score: float
    texts_per_second: float


def pick(candidates: list[Candidate], tolerance: float = TOLERANCE) -> str:
    """The fastest backend whose score is at most ``tolerance`` below torch's (the first candidate's)."""
    reference = candidates[0].score
    eligible = [c for c in candidates if c.score >= reference - tolerance - 1e-12]
    return max(eligible, key=lambda c: c.texts_per_second).backend


def choose_backend(classifier: Any, folder: str | Path, validation: TextData) -> dict[str, Any]:
    """Export ``classifier`` (saved in ``folder``) to ONNX, score and time torch, ONNX and int8 ONNX on the
    ``validation`` rows, write the choice into ``folder``'s ``bertkit.json`` and return that record. A model on a
    GPU, or an environment without ONNX Runtime, keeps torch (the record says why)."""
    record = _measured(classifier, Path(folder), validation)
    write_metadata(folder, {**(read_metadata(folder) or {}), "backend": record})
    classifier.metadata_["backend"] = record
    return record


def _measured(classifier: Any, folder: Path, validation: TextData) -> dict[str, Any]:
    device = next(classifier.model_.parameters()).device
    if device.type != "cpu":
        return {"default": "torch", "reason": f"trained on {device.type}: ONNX Runtime here runs on the CPU"}
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {"default": "torch", "reason": "ONNX Runtime is not installed (pip install 'bertkit[onnx]')"}
    from bertkit.onnx_forward import OnnxForward, onnx_path

    metric = SCORED_BY[classifier.task_]
    try:
        classifier.export_onnx(folder, quantize="int8")  # writes onnx/model.onnx and onnx/model-int8.onnx
    except ModelLoadError as exc:  # a graph that disagrees with torch: the saved model stands, torch predicts
        return {"default": "torch", "reason": f"the ONNX export was refused: {exc}"}
    forwards = {
        "torch": None,
        "onnx": OnnxForward(onnx_path(folder, None)),
        "onnx-int8": OnnxForward(onnx_path(folder, "int8")),
    }
    fitted = _fitted_score(classifier, metric) if validation is getattr(classifier, "validation_data_", None) else None
    try:
        candidates = [_candidate(classifier, name, forward, validation, metric, fitted if forward is None else None)
                      for name, forward in forwards.items()]  # fmt: skip
    finally:
        classifier.__dict__.pop("onnx_forward_", None)
    return {
        "default": pick(candidates),
        "metric": metric,
        "tolerance": TOLERANCE,
        "rows": len(validation),
        "timed_rows": min(len(validation), TIMED_ROWS),
        "candidates": {c.backend: {"score": round(c.score, 6), "texts_per_second": round(c.texts_per_second, 1)}
                       for c in candidates},
    }  # fmt: skip


TIMED_ROWS = 512
"""Validation rows every backend is timed on: the same rows for each, so that their speeds compare."""


def _fitted_score(classifier: Any, metric: str) -> float | None:
    """Torch's validation score as fitting computed it (the kept weights on the same rows), for single-label
    classification, where a temperature cannot change a predicted label: a second torch pass over the validation
    rows would cost the user time for a number already known. None for multi-label and regression, whose
    probability calibration can move the thresholded labels and scores."""
    if classifier.task_ != "classification":
        return None
    score = (getattr(classifier, "validation_metrics_", None) or {}).get(metric)
    return None if score is None else float(score)


def _candidate(
    classifier: Any, name: str, forward: Any, validation: TextData, metric: str, known: float | None = None
) -> Candidate:
    """Time ``classifier`` with ``forward`` (None: torch) on the first :data:`TIMED_ROWS` validation rows (after a
    warm-up batch), the same rows for every backend, and score it on all of them: the timed rows' logits and,
    untimed, the other rows'; each row runs once. ``known`` (torch's score from fitting) is used instead of
    scoring. Validation data no larger than the timed rows is scored and timed in one pass, for every backend
    alike."""
    import numpy as np

    if forward is None:
        classifier.__dict__.pop("onnx_forward_", None)
    else:
        classifier.onnx_forward_ = forward
    classifier._example_logits(validation.subset(np.arange(min(len(validation), 16))))  # warm-up
    if len(validation) <= TIMED_ROWS:  # the timed rows are all of them: the scoring pass is the timed pass
        started = time.perf_counter()
        score = float(classifier.evaluate(validation).metrics[metric])
        return Candidate(name, score, len(validation) / max(time.perf_counter() - started, 1e-9))
    started = time.perf_counter()
    timed, timed_truncated = classifier._logits_and_truncated(validation.subset(np.arange(TIMED_ROWS)))
    speed = TIMED_ROWS / max(time.perf_counter() - started, 1e-9)
    if known is None:
        rest, rest_truncated = classifier._logits_and_truncated(
            validation.subset(np.arange(TIMED_ROWS, len(validation)))
        )
        report = classifier._evaluate(
            validation, logits=np.concatenate([timed, rest]), truncated=timed_truncated + rest_truncated
        )
        known = float(report.metrics[metric])
    return Candidate(name, known, speed)


def describe(record: dict[str, Any]) -> str:
    """The one line a run prints about the choice."""
    if "candidates" not in record:
        return f"predict and serve use torch ({record['reason']})"
    scores = ", ".join(
        f"{name} {c['score']:.4f} ({c['texts_per_second']:,.0f} texts/s)" for name, c in record["candidates"].items()
    )
    return (
        f"validation {record['metric']}: {scores}; predict and serve use {record['default']} by default (the "
        "fastest within 0.5 point of torch; --backend overrides)"
    )
