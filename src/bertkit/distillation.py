"""Knowledge distillation: a smaller, faster student classifier trained on a fine-tuned teacher's outputs
(``bertkit distill``), with an accuracy guard.

:class:`Distiller` loads the teacher, builds the student (by default the teacher with its 3 lowest encoder
layers, plus the mean-pooling layer when the teacher has one; or a fresh classifier
on any encoder), computes the teacher's logits on the training and unlabeled texts once, trains the student with
bertkit's loop under a mix of the labels' loss and a soft loss against those logits
(:class:`~bertkit.classification.objective.DistillationObjective`), then scores teacher and student on the
validation data and times their prediction. :meth:`Distiller.save` writes the student, a normal bertkit folder,
to the folder asked when it is within ``max_drop`` points of the teacher, else to ``FOLDER-below-teacher``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.classification import distillation as steps
from bertkit.classification import fitting, inputs
from bertkit.classification.estimator import TextClassifier
from bertkit.config import TrainConfig
from bertkit.data.dataset import TextData
from bertkit.data.overlap import POLICIES, shared_rows
from bertkit.devices import resolve_device
from bertkit.engine.loop import RunOptions, seed_everything
from bertkit.exceptions import ConfigError, DataError
from bertkit.models.checkpoints import check_max_length, load_tokenizer, resolve_checkpoint
from bertkit.models.heads import torch_network
from bertkit.params import ParamsMixin
from bertkit.runs import check_output_folder, clear_output_folder

BELOW_TEACHER = "-below-teacher"
"""Suffix of the folder a student goes to when it scores more than ``max_drop`` points below its teacher."""


class Distiller(ParamsMixin):
    """Distil a fitted text classifier (the teacher) into a smaller student.

    ``student``: ``layers:N`` (the teacher with its N lowest encoder layers kept),
    ``layers:I,J,...`` (those layers, 0-based) or a model (hub id, folder, ``minilm``) trained as a fresh
    classifier with the teacher's labels. The loss is ``alpha`` x the task's loss on the labels + (1 - ``alpha``)
    x the soft loss against the teacher's logits at ``temperature`` (unlabeled rows: the soft loss alone), plus
    ``hidden_weight`` x the mean squared difference of student's and teacher's last-layer [CLS] states
    (``layers:N`` students only; 0 turns it off). ``augment``: that many altered copies of each training text
    (words masked or left out; :func:`~bertkit.classification.distillation.augmented_copies`) join the
    unlabeled rows.
    ``batch_size``, ``learning_rate``: None picks them from the number of training rows, as ``bertkit train``
    does; ``seed``: None takes the teacher's. Everything else (max_length, windows, pooling, precision, the
    choice of the epoch kept) follows the teacher's training. ``validation_overlap``: training rows that are
    validation rows are dropped (``drop``), kept, or refused (``error``), as in ``TextClassifier``; unlabeled rows
    that are validation rows are always left out.

    Fitted attributes: ``student_`` (a fitted :class:`TextClassifier`), ``metric_``, ``teacher_score_``,
    ``student_score_``, ``drop_points_`` (teacher minus student, x 100), ``kept_`` (the drop is at most
    ``max_drop``), ``teacher_seconds_`` and ``student_seconds_`` (their prediction time on the validation texts),
    ``speedup_`` (the first over the second) and ``record_`` (what the student's bertkit.json records under ``distillation``).

    Example::

        distiller = Distiller(student="layers:3").fit("teacher-folder", texts, labels, unlabeled=more_texts)
        print(distiller.summary())       # teacher accuracy 0.8523, student 0.8461 (-0.62 points; ...): kept
        distiller.save("student-folder")  # or student-folder-below-teacher
    """

    def __init__(
        self,
        student: str = "layers:3",
        *,
        epochs: int = 3,
        temperature: float = 2.0,
        alpha: float = 0.5,
        hidden_weight: float = 0.0,
        augment: int = 0,
        max_drop: float = 1.0,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        seed: int | None = None,
        device: str = "auto",
        validation_overlap: str = "drop",
        progress: bool = True,
    ) -> None:
        self.student = student
        self.epochs = epochs
        self.temperature = temperature
        self.alpha = alpha
        self.hidden_weight = hidden_weight
        self.augment = augment
        self.max_drop = max_drop
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.device = device
        self.validation_overlap = validation_overlap
        self.progress = progress

    def check(self) -> steps.StudentSpec:
        """ConfigError for options no run can take (before anything loads); returns the parsed ``student``."""
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"--alpha must be between 0 (soft targets only) and 1 (labels only) (got {self.alpha})")
        if not (self.temperature > 0 and np.isfinite(self.temperature)):
            raise ConfigError(
                f"--temperature must be a positive number (got {self.temperature}); 1 keeps the teacher's logits"
            )
        if self.validation_overlap not in POLICIES:
            raise ConfigError(f"--validation-overlap must be {', '.join(POLICIES)} (got {self.validation_overlap!r})")
        if not np.isfinite(self.max_drop):
            raise ConfigError(f"--max-drop must be a number of points (got {self.max_drop})")
        if isinstance(self.augment, bool) or not isinstance(self.augment, int) or self.augment < 0:
            raise ConfigError(f"--augment must be a number of copies per training text, 0 or more (got {self.augment})")
        if not (np.isfinite(self.hidden_weight) and self.hidden_weight >= 0):
            raise ConfigError(f"--hidden-weight must be 0 (off) or more (got {self.hidden_weight})")
        spec = steps.parse_student(self.student)
        if self.hidden_weight > 0 and spec.model is not None:
            raise ConfigError(
                f"--hidden-weight matches the student's last-layer [CLS] state to the teacher's, which needs a "
                f"student cut from the teacher (--student layers:N), not --student {spec.model}; leave it at 0"
            )
        return spec

    def fit(
        self,
        teacher: str | Path | TextClassifier,
        X: inputs.Texts,
        y: Sequence[Any] | None = None,
        *,
        unlabeled: inputs.Texts | Sequence[TextData] | None = None,
        eval_set: tuple[inputs.Texts, Sequence[Any] | None] | TextData | None = None,
        teacher_name: str | None = None,
        on_epoch: Callable[[dict], None] | None = None,
    ) -> Distiller:
        """Train the student on ``X``, ``y`` (and ``unlabeled`` texts, or data read without labels), validated on
        ``eval_set`` (default: a held-out share of ``X``, as the teacher's training would); then score teacher
        and student on the validation data. ``teacher``: a bertkit classifier folder or a fitted TextClassifier
        (``teacher_name`` then names it in the student's record, e.g. the folder it was loaded from). ``on_epoch``:
        called with each epoch's record (train loss, validation metrics...), as in ``TextClassifier.fit``."""
        spec = self.check()
        if isinstance(teacher, TextClassifier):
            model = _on_torch(teacher)
        else:  # the torch model: the student is cut from it and learns its logits
            model = TextClassifier.load(teacher, device=self.device, backend="torch")
        model._check_fitted()
        name = teacher_name or (None if isinstance(teacher, TextClassifier) else str(teacher))
        config = self._student_config(model, spec, name)
        data = inputs.prepare_data(X, y, eval_set, config)
        _check_teacher_fits(model, data)
        data.classes = model.classes_.tolist()  # the teacher's order: soft targets are its logits' columns
        extra, left_out = _without_validation_rows(_as_unlabeled(unlabeled), data.validation)
        inputs.tell([*data.all_notes, *left_out], progress=self.progress)
        if self.augment:  # altered copies of the training texts, labelled by the teacher like unlabeled text
            mask = getattr(model.tokenizer_, "mask_token", None)
            extra.append(steps.augmented_copies(data.train, self.augment, mask, config.seed))
        n_unlabeled = sum(len(part) for part in extra)
        config = config.resolved(len(data.train) + n_unlabeled, data.task)
        started = time.perf_counter()
        seed_everything(config.seed)  # a fresh head's initial weights are part of the run
        network, tokenizer, config, kept = self._build_student(model, spec, data, config)
        run = RunOptions(progress=self.progress, on_epoch=on_epoch)
        outcome = steps.train_student(
            network, tokenizer, data, extra, steps.Teacher(model.model_, model.tokenizer_, model.config_), config,
            resolve_device(config.device), run, alpha=self.alpha, temperature=self.temperature,
            hidden_weight=self.hidden_weight,
        )  # fmt: skip
        self.student_ = _fitted_student(network, tokenizer, data, config, outcome, time.perf_counter() - started)
        self._guard(model, data.validation)
        self.record_ = {
            "teacher": name,
            "student": self.student, "layers_kept": kept, "teacher_layers": model.model_.config.num_hidden_layers,
            "temperature": self.temperature, "alpha": self.alpha, "hidden_weight": self.hidden_weight,
            "augment": self.augment,
            "epochs": self.epochs,
            "unlabeled_rows": n_unlabeled, "validation_rows": len(data.validation), "metric": self.metric_,
            "teacher_score": self.teacher_score_, "student_score": self.student_score_,
            "drop_points": self.drop_points_, "max_drop": self.max_drop, "kept": self.kept_,
            "teacher_seconds": self.teacher_seconds_, "student_seconds": self.student_seconds_,
            "speedup": self.speedup_,
        }  # fmt: skip
        self.student_.metadata_["distillation"] = self.record_
        return self

    def _student_config(self, teacher: TextClassifier, spec: steps.StudentSpec, folder: str | None) -> TrainConfig:
        """The teacher's training options with the distillation's: R-Drop off (the soft targets regularise, and it
        would double every step), the data cap and CUDA graphs off (distillation steps vary in labelled rows).
        ``model`` names where the student's weights came from: the --student model, else the teacher's folder."""
        base = teacher.config_
        return dataclasses.replace(
            base, model=spec.model or folder or str(base.model), task=teacher.task_, epochs=self.epochs,
            batch_size=self.batch_size, learning_rate=self.learning_rate, rdrop=0.0,
            seed=base.seed if self.seed is None else self.seed, device=self.device, max_train_rows=None,
            cuda_graphs=False, freeze_encoder=False, validation_overlap=self.validation_overlap,
            classifier_pooling="auto" if spec.model else base.classifier_pooling, extra={},
        )  # fmt: skip

    def _build_student(
        self, teacher: TextClassifier, spec: steps.StudentSpec, data: inputs.FitData, config: TrainConfig
    ) -> tuple[Any, Any, TrainConfig, list[int] | None]:
        """(network, tokenizer, config, teacher layers kept): the teacher cut down, or a fresh classifier."""
        if spec.model is not None:
            checkpoint = resolve_checkpoint(spec.model)
            check_max_length(spec.model, checkpoint, config.max_length)
            network, config = fitting.build_model(checkpoint, data.task, data.classes, config)
            return network, load_tokenizer(checkpoint), config, None
        _, layers = steps.encoder_layers(teacher.model_)
        pooling_layer = teacher.config_.classifier_pooling == "mean"
        kept = steps.student_layers(spec.layers, len(layers), pooling_layer)
        return steps.make_student(teacher.model_, kept), teacher.tokenizer_, config, kept

    def _guard(self, teacher: TextClassifier, validation: TextData) -> None:
        """Score teacher and student on the validation rows (the guard's metric) and time their prediction: the
        faster of two passes each, taken in turns, so that a first call's warm-up or a busy moment of a shared
        machine weighs on neither."""
        task = self.student_.task_
        self.metric_ = steps.MAIN_METRIC[task]
        models = {"teacher": teacher, "student": self.student_}
        seconds: dict[str, list[float]] = {name: [] for name in models}
        scores = {}
        for _ in range(2):
            for name, model in models.items():
                started = time.perf_counter()
                predicted = model.decision_scores(validation)
                seconds[name].append(time.perf_counter() - started)
                thresholds = model.score_thresholds_  # on the scale of the (calibrated) scores
                scores[name] = steps.main_score(predicted, validation.labels, task, model.classes_.tolist(), thresholds)
        self.teacher_seconds_, self.student_seconds_ = (round(min(seconds[name]), 4) for name in models)
        self.teacher_score_, self.student_score_ = round(scores["teacher"], 6), round(scores["student"], 6)
        self.drop_points_ = round((scores["teacher"] - scores["student"]) * 100, 4) + 0.0  # + 0.0: never -0.0
        self.kept_ = bool(self.drop_points_ <= self.max_drop)
        self.speedup_ = round(self.teacher_seconds_ / max(self.student_seconds_, 1e-9), 3)

    def summary(self) -> str:
        """One line: ``teacher accuracy 0.8523, student 0.8461 (-0.62 points; max drop 1.0): kept``."""
        if not hasattr(self, "kept_"):
            raise ConfigError("this Distiller is not fitted yet; call fit(...) first")
        verdict = "kept" if self.kept_ else f"more than {float(self.max_drop)} points below the teacher"
        return (f"teacher {self.metric_} {self.teacher_score_:.4f}, student {self.student_score_:.4f} "
                f"({0.0 - self.drop_points_:+.2f} points; max drop {float(self.max_drop)}; {self.speedup_:.1f}x faster): "
                f"{verdict}")  # fmt: skip

    def folder_for(self, folder: str | Path) -> Path:
        """Where :meth:`save` writes: ``folder`` when the student was kept, else ``folder`` + ``-below-teacher``."""
        folder = Path(folder)
        return folder if self.kept_ else rejected_folder(folder)

    @staticmethod
    def rejected_folder(folder: str | Path) -> Path:
        """The folder a rejected student goes to: ``FOLDER-below-teacher`` beside ``FOLDER``."""
        return rejected_folder(folder)

    def save(
        self, folder: str | Path, *, overwrite: bool = False, run_options: Mapping[str, Any] | None = None
    ) -> Path:
        """Write the student (a bertkit folder that TextClassifier.load and plain transformers load, with its
        validation report in ``report/``) to :meth:`folder_for`; returns that folder. ``overwrite`` replaces a
        model bertkit wrote there (see :func:`bertkit.runs.check_output_folder`). ``run_options`` (the CLI's
        :class:`~bertkit.read_options.ReadOptions` as a dict) are saved as ``bertkit train`` saves them, so that
        ``evaluate`` and ``predict`` read files as the student's training data was read."""
        if not hasattr(self, "student_"):
            raise ConfigError("this Distiller is not fitted yet; call fit(...) first")
        target = self.folder_for(folder)
        check_output_folder(target, overwrite)
        if overwrite:
            clear_output_folder(target)
        if run_options:
            self.student_.metadata_["run_options"] = dict(run_options)
        self.student_.save(target)
        self.student_.validation_report_.save(target / "report", history=self.student_.history_)
        return target


def rejected_folder(folder: str | Path) -> Path:
    """The folder a student goes to when the guard rejects it: ``FOLDER-below-teacher`` beside ``FOLDER``."""
    folder = Path(folder)
    return folder.with_name(folder.name + BELOW_TEACHER)


def _on_torch(teacher: TextClassifier) -> TextClassifier:
    """``teacher`` predicting with torch. One loaded with an ONNX default backend holds stand-ins for its network
    and tokenizer (:class:`~bertkit.models.heads.DeferredClassifier`,
    :class:`~bertkit.models.rust_tokenizer.RustTokenizer`), which a student can be neither cut from nor trained
    against: a copy of it gets the torch network and the transformers tokenizer they stand for."""
    if getattr(teacher, "backend_", "torch") == "torch":
        return teacher
    on_torch = copy.copy(teacher)
    on_torch.__dict__.pop("onnx_forward_", None)
    model, tokenizer = teacher.model_, teacher.tokenizer_
    on_torch.model_ = torch_network(model)
    on_torch.tokenizer_ = (
        tokenizer.transformers_tokenizer() if hasattr(type(tokenizer), "transformers_tokenizer") else tokenizer
    )
    on_torch.backend_ = "torch"
    return on_torch


def _check_teacher_fits(teacher: TextClassifier, data: inputs.FitData) -> None:
    """DataError when the data's shape (pairs or not) or labels do not fit the teacher's; labels then take the
    form of the teacher's classes (text classes: labels as text)."""
    text_pair = getattr(teacher, "text_pair_", None)
    if text_pair is not None and text_pair != (data.train.pairs is not None):
        wants = "text pairs (--text-pair-column)" if text_pair else "single texts (no --text-pair-column)"
        raise DataError(f"{data.train.source.name}: the teacher was trained on {wants}; give the data that shape")
    classes = teacher.classes_.tolist()
    for part in (data.train, data.validation):
        if data.task == "classification" and classes and isinstance(classes[0], str):
            part.labels = [str(v) for v in part.labels]
        inputs.refuse_unseen_labels(
            part, part.labels, classes, data.task,
            "{where}: label {value!r} is not one of the teacher's labels ({known}); a student learns the "
            "teacher's labels: drop such rows or distil another teacher",
        )  # fmt: skip


def _as_unlabeled(unlabeled: inputs.Texts | Sequence[TextData] | None) -> list[TextData]:
    """The unlabeled sets as TextData: a TextData, a list of them (several files), or texts / (text, pair)s."""
    if unlabeled is None:
        return []
    if isinstance(unlabeled, TextData):
        return [unlabeled]
    items = list(unlabeled)
    if not items:
        return []
    if all(isinstance(item, TextData) for item in items):
        return items
    return [inputs.as_data(items, None, "unlabeled")]


def _without_validation_rows(parts: list[TextData], validation: TextData) -> tuple[list[TextData], list[str]]:
    """The unlabeled sets less their rows that are validation rows (text and pair, as
    :func:`bertkit.data.overlap.shared_rows` matches them), and a line for each set that lost some: the student
    would learn the teacher's outputs on the rows the guard then scores it on."""
    kept, notes = [], []
    for part in parts:
        shared = shared_rows(part, validation)
        if len(shared):
            notes.append(
                f"{part.source.name}: {len(shared)} of {len(part)} unlabeled rows are validation rows; left out, so "
                "that validation stays unseen"
            )
        if len(shared) < len(part):
            kept.append(part.subset(np.setdiff1d(np.arange(len(part)), shared)) if len(shared) else part)
    return kept, notes


def _fitted_student(
    network: Any, tokenizer: Any, data: inputs.FitData, config: TrainConfig, outcome: fitting.TrainOutcome,
    seconds: float,
) -> TextClassifier:  # fmt: skip
    """The student as a fitted TextClassifier, with the attributes ``TextClassifier.fit`` leaves."""
    student = TextClassifier.from_config(config, progress=False)
    student.model_, student.tokenizer_, student.config_ = network.eval(), tokenizer, config
    student.task_, student.classes_ = data.task, list(data.classes)
    student.text_pair_ = data.train.pairs is not None
    student.is_main_process_ = True
    fitting.set_fitted(student, outcome, data, seconds, {})  # the validation rows too: the default backend's
    return student
