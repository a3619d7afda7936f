"""Knowledge distillation of a text classifier, below the facade: the student (a copy of the teacher with fewer
encoder layers, or a fresh classifier on another encoder), the teacher's soft targets (its logits, computed once
by the batched forward), and the training run under :class:`~bertkit.classification.objective.DistillationObjective`.

:mod:`bertkit.distillation` puts these together (``bertkit distill``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bertkit.classification.fitting import TrainOutcome, outcome_of
from bertkit.classification.inputs import FitData
from bertkit.classification.metrics import classification_metrics, multilabel_metrics, regression_metrics
from bertkit.classification.objective import DistillationObjective, HiddenCapture, balanced_class_weights
from bertkit.classification.scoring import ClassificationScorer
from bertkit.config import TrainConfig
from bertkit.data.dataset import TextData
from bertkit.data.encoding import Encoded, encode
from bertkit.data.labels import encode_labels
from bertkit.devices import inference_dtype
from bertkit.engine import loop
from bertkit.engine.batches import aggregate_windows
from bertkit.engine.forward import forward_batches, predict_logits
from bertkit.engine.objective import Validation
from bertkit.exceptions import ConfigError, DataError
from bertkit.selection import resolve_selection_metric

LAYERS_PREFIX = "layers:"
MAIN_METRIC = {"classification": "accuracy", "multi-label": "micro_f1", "regression": "pearson"}
"""The metric the accuracy guard compares teacher and student on, by task."""


@dataclass(frozen=True)
class StudentSpec:
    """What ``--student`` asks: encoder layers of the teacher to keep (a count, or 0-based indices), or a model."""

    layers: int | tuple[int, ...] | None = None
    model: str | None = None


def parse_student(spec: str) -> StudentSpec:
    """``layers:N`` (the teacher's N lowest layers), ``layers:I,J,...`` (those layers, 0-based) or any
    other text: a model (hub id, folder, ``minilm``) to train as a fresh classifier."""
    spec = str(spec).strip()
    if not spec.startswith(LAYERS_PREFIX):
        if not spec:
            raise ConfigError("--student is empty; give layers:N (e.g. layers:3) or a model (hub id or folder)")
        return StudentSpec(model=spec)
    value = spec[len(LAYERS_PREFIX) :]
    try:
        numbers = [int(part) for part in value.split(",")]
    except ValueError:
        raise ConfigError(
            f"--student {spec}: expected layers:N (a count, e.g. layers:3) or layers:I,J,... (0-based layer indices)"
        ) from None
    if len(numbers) == 1 and "," not in value:
        if numbers[0] < 1:
            raise ConfigError(f"--student {spec}: keep at least one layer (layers:1 or more)")
        return StudentSpec(layers=numbers[0])
    if len(set(numbers)) != len(numbers) or min(numbers) < 0:
        raise ConfigError(f"--student {spec}: layer indices must be distinct and 0 or more")
    return StudentSpec(layers=tuple(sorted(numbers)))


def encoder_layers(model: nn.Module) -> tuple[nn.Module, nn.ModuleList]:
    """The module holding the encoder's layer list and the list: ``encoder.layer`` (BERT, RoBERTa, ELECTRA,
    DeBERTa, ...) or ``transformer.layer`` (DistilBERT) of the model's base model."""
    base = getattr(model, "base_model", model)
    for name in ("encoder", "transformer"):
        holder = getattr(base, name, None)
        layers = getattr(holder, "layer", None)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return holder, layers
    kind = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    raise ConfigError(
        f"--student layers:N copies encoder layers of BERT-style (encoder.layer) and DistilBERT (transformer.layer) "
        f"models; this teacher is a {kind} model: give --student MODEL (a smaller encoder) instead"
    )


def bottom_layers(keep: int) -> list[int]:
    """The ``keep`` lowest encoder layers (0-based): what ``layers:N`` keeps. A 3-layer student of a MiniLM
    rotten_tomatoes teacher kept as 0, 1, 2 scored 0.8537 test accuracy over three seeds against 0.8280 for the
    evenly spaced 1, 3, 5 (benchmarks/RESULTS.md, "Distillation: which of the teacher's layers a student keeps"),
    as dropping the top layers was the best way to shrink a model to fine-tune in Sajjad et al., "On the effect
    of dropping layers of pre-trained transformer models" (Computer Speech & Language, 2023)."""
    return list(range(keep))


def student_layers(spec: int | tuple[int, ...], n_layers: int, pooling_layer: bool) -> list[int]:
    """The teacher's layers a student keeps (0-based, ascending). With ``pooling_layer`` (the teacher was
    trained with ``--classifier-pooling mean``, whose extra last layer starts as mean pooling) that last layer is
    kept as well, beside the N chosen among the others."""
    n_choosable = n_layers - 1 if pooling_layer else n_layers
    pooling = " besides its mean-pooling layer" if pooling_layer else ""
    if n_choosable < 2 and (isinstance(spec, int) or len(spec) >= n_choosable):
        raise ConfigError(
            f"--student layers:{spec if isinstance(spec, int) else ','.join(map(str, spec))}: the teacher has "
            f"{n_choosable} encoder layer{'' if n_choosable == 1 else 's'}{pooling}, none to leave out; give "
            "another model as the student (--student MODEL)"
        )
    if isinstance(spec, int):
        if spec >= n_choosable:
            raise ConfigError(
                f"--student layers:{spec}: the teacher has {n_choosable} encoder layers{pooling}; a student keeps "
                f"fewer (layers:1 to layers:{n_choosable - 1})"
            )
        chosen = bottom_layers(spec)
    else:
        if max(spec) >= n_choosable:
            raise ConfigError(
                f"--student layers:{','.join(map(str, spec))}: the teacher has {n_choosable} encoder "
                f"layers{pooling}, 0 to {n_choosable - 1}"
            )
        chosen = list(spec)
    return chosen + ([n_layers - 1] if pooling_layer else [])


def make_student(teacher: nn.Module, keep: list[int]) -> nn.Module:
    """A copy of ``teacher`` (embeddings, head, everything) holding only the encoder layers ``keep``, in that
    order; ``config.num_hidden_layers`` follows."""
    student = copy.deepcopy(teacher)
    holder, layers = encoder_layers(student)
    kept = nn.ModuleList([layers[i] for i in keep])
    for position, layer in enumerate(kept):
        for module in layer.modules():  # attention modules number their layer (caches); keep them in order
            if hasattr(module, "layer_idx"):
                module.layer_idx = position
    holder.layer = kept
    if hasattr(holder, "n_layers"):  # DistilBERT's Transformer keeps its own count
        holder.n_layers = len(keep)
    student.config.num_hidden_layers = len(keep)
    return student


@dataclass
class Teacher:
    """What the teacher contributes: its network, tokenizer and the settings it encodes and predicts with."""

    model: Any
    tokenizer: Any
    config: TrainConfig


def teacher_logits(
    teacher: Teacher, data: TextData, student_encoded: Encoded, device: torch.device, *, shared: bool
) -> np.ndarray:
    """The teacher's logits [rows of ``student_encoded``, labels] on ``data``, by the batched forward, once. A
    student that encodes texts as the teacher does (``shared``: its tokenizer and settings, ``layers:N``) gets
    them per window; another student gets each example's (windows aggregated as the teacher predicts), repeated over its
    own windows."""
    config = teacher.config
    teacher.model.to(device)
    dtype = inference_dtype(config.precision, device)
    if shared:
        return predict_logits(teacher.model, student_encoded, device=device, dtype=dtype)
    teacher_encoded = encode(teacher.tokenizer, data.texts, data.pairs, config.max_length, config.window_stride)
    logits = predict_logits(teacher.model, teacher_encoded, device=device, dtype=dtype)
    per_example = aggregate_windows(logits, teacher_encoded, config.window_aggregation)
    return per_example if student_encoded.doc_index is None else per_example[student_encoded.doc_index]


def teacher_outputs_with_hidden(
    teacher: Teacher, encoded: Encoded, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's logits [rows, labels] and last-layer [CLS] states [rows, hidden] on texts it encodes as
    ``encoded`` (a ``layers:N`` student's rows), by the Hugging Face forward (the packed one does not run the
    layer modules the state is read from)."""
    model = teacher.model.to(device)
    dtype = inference_dtype(teacher.config.precision, device)
    _, layers = encoder_layers(model)
    logits = np.empty((len(encoded), model.config.num_labels), dtype=np.float32)
    hidden = np.empty((len(encoded), model.config.hidden_size), dtype=np.float32)
    capture = HiddenCapture(layers[-1])

    def store(index: np.ndarray, inputs: dict[str, torch.Tensor], outputs: Any) -> None:
        logits[index] = outputs.logits.float().cpu().numpy()  # [batch, labels]
        hidden[index] = capture.state.float().cpu().numpy()  # [batch, hidden]

    try:
        forward_batches(model, encoded, store, device=device, dtype=dtype)
    finally:
        capture.remove()
    return logits, hidden


AUGMENT_MASK_SHARE = 0.1
"""Share of a copy's words replaced by the mask token (:func:`augmented_copies`)."""
AUGMENT_DROP_SHARE = 0.1
"""Share of a copy's words left out (:func:`augmented_copies`)."""


def augmented_copies(train: TextData, copies: int, mask_token: str | None, seed: int) -> TextData:
    """``copies`` altered copies of every training text, without labels, for the teacher to label: each word
    (whitespace-separated) is replaced by ``mask_token`` with probability 0.1 and left out with probability 0.1
    (never all of them: a copy keeps at least one word; without a mask token, left out only). Pairs: both texts
    are altered, independently. Texts near the training texts, but not those texts, are where a student learns
    most of the teacher's function beyond the labels (TinyBERT's data augmentation, simplified; EDA's random
    deletion). Seeded: the same copies for the same data and seed."""
    rng = np.random.default_rng(seed)

    def alter(text: str) -> str:
        words = text.split()
        if len(words) < 2:
            return text
        draw = rng.random(len(words))
        kept = [mask_token if mask_token and d < AUGMENT_MASK_SHARE else w
                for w, d in zip(words, draw, strict=True)
                if not AUGMENT_MASK_SHARE <= d < AUGMENT_MASK_SHARE + AUGMENT_DROP_SHARE]  # fmt: skip
        return " ".join(kept) if kept else words[int(rng.integers(len(words)))]

    order = [i for _ in range(copies) for i in range(len(train))]
    texts = [alter(train.texts[i]) for i in order]
    pairs = None if train.pairs is None else [alter(train.pairs[i]) for i in order]
    return TextData(texts=texts, pairs=pairs, labels=None, source=train.source, frame=train.frame,
                    rows=train.rows[np.asarray(order, dtype=np.int64)], columns=train.columns)  # fmt: skip


def with_unlabeled(train: TextData, unlabeled: Sequence[TextData]) -> TextData:
    """The training rows followed by the rows of each unlabeled set (labels None for those): the texts the
    student learns from."""
    unlabeled = [part for part in unlabeled if len(part)]
    for part in unlabeled:
        if (train.pairs is None) != (part.pairs is None):
            has, other = ("text pairs", "single texts") if part.pairs is not None else ("single texts", "text pairs")
            raise DataError(
                f"{part.source.name}: unlabeled data holds {has} but the training data {other}; give both the "
                "same shape (--text-pair-column for both, or for neither)"
            )
    if not unlabeled:
        return train
    pairs = None if train.pairs is None else [p for part in (train, *unlabeled) for p in part.pairs]
    n_unlabeled = sum(len(part) for part in unlabeled)
    return TextData(
        texts=[t for part in (train, *unlabeled) for t in part.texts], pairs=pairs,
        labels=[*train.labels, *([None] * n_unlabeled)], source=train.source, frame=train.frame,
        rows=np.concatenate([train.rows, *(part.rows for part in unlabeled)]), columns=train.columns,
    )  # fmt: skip


def train_student(
    student: nn.Module, tokenizer: Any, data: FitData, unlabeled: Sequence[TextData], teacher: Teacher,
    config: TrainConfig, device: torch.device, run: loop.RunOptions, *, alpha: float, temperature: float,
    hidden_weight: float = 0.0,
) -> TrainOutcome:  # fmt: skip
    """Encode the training and unlabeled texts, get the teacher's logits on them once, and run the loop under
    the distillation objective; then tune multi-label thresholds on the kept epoch and report on validation
    (as plain fine-tuning does: :func:`bertkit.classification.fitting.train`). ``hidden_weight`` > 0 adds the
    [CLS]-state loss (:class:`~bertkit.classification.objective.DistillationObjective`), for a student that
    encodes as the teacher and keeps its last layer (``layers:N``)."""
    task, classes = data.task, data.classes
    everything = with_unlabeled(data.train, unlabeled)
    train_encoded = encode(tokenizer, everything.texts, everything.pairs, config.max_length, config.window_stride)
    validation_encoded = encode(tokenizer, data.validation.texts, data.validation.pairs, config.max_length,
                                config.window_stride)  # fmt: skip
    shared = tokenizer is teacher.tokenizer and (config.max_length, config.window_stride) == (
        teacher.config.max_length, teacher.config.window_stride)  # fmt: skip
    hidden, teacher_hidden = None, None
    if hidden_weight > 0:
        if not shared or student.config.hidden_size != teacher.model.config.hidden_size:
            raise ConfigError("--hidden-weight matches the teacher's last-layer state: it needs a layers:N student")
        soft, teacher_hidden = teacher_outputs_with_hidden(teacher, train_encoded, device)
        hidden = HiddenCapture(encoder_layers(student)[1][-1])
    else:
        soft = teacher_logits(teacher, everything, train_encoded, device, shared=shared)
    n_labeled = len(data.train)
    targets = encode_labels(data.train.labels, classes, task)
    padding = np.zeros((len(everything) - n_labeled, *targets.shape[1:]), dtype=targets.dtype)
    all_targets = np.concatenate([targets, padding])
    labeled = np.arange(len(everything)) < n_labeled
    if train_encoded.doc_index is not None:
        all_targets, labeled = all_targets[train_encoded.doc_index], labeled[train_encoded.doc_index]
    weights = None
    if config.class_weights == "balanced":
        balanced = balanced_class_weights(targets, task, len(classes))
        weights = torch.as_tensor(balanced, dtype=torch.float32, device=device)
    objective = DistillationObjective(
        task, all_targets, labeled, soft, alpha=alpha, temperature=temperature, class_weights=weights,
        label_smoothing=config.label_smoothing, hidden=hidden, teacher_hidden=teacher_hidden,
        hidden_weight=hidden_weight,
    )  # fmt: skip
    validation_targets = encode_labels(data.validation.labels, classes, task)
    scorer = ClassificationScorer(
        task=task, targets=validation_targets, validation=validation_encoded,
        window_aggregation=config.window_aggregation,
        main_metric=resolve_selection_metric(config.selection_metric, task), seed=config.seed,
    )  # fmt: skip
    try:
        result = loop.fit(student, train_encoded, config, objective, device=device,
                          validation=Validation(validation_encoded, scorer), run=run)  # fmt: skip
    finally:
        if hidden is not None:
            hidden.remove()
    return outcome_of(result, scorer, data, validation_encoded, validation_targets, config.seed)


def main_score(
    scores: np.ndarray, labels: list[Any], task: str, classes: list[Any], thresholds: np.ndarray | None
) -> float:
    """The guard's metric (:data:`MAIN_METRIC`) of a classifier's scores (``decision_scores``) against labels."""
    targets = encode_labels(labels, classes, task)
    if task == "regression":
        return regression_metrics(targets, scores)["pearson"]
    if task == "multi-label":
        return multilabel_metrics(targets, scores, thresholds)["micro_f1"]
    return classification_metrics(targets, scores)["accuracy"]
