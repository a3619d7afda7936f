"""The public facade for extractive question answering: :class:`QuestionAnswerer`, in the scikit-learn style."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.config import TrainConfig
from bertkit.devices import inference_dtype, resolve_device
from bertkit.exceptions import ConfigError, DataError, ModelLoadError, NotFittedError
from bertkit.models.card import write_card
from bertkit.models.checkpoints import (
    check_max_length,
    library_versions,
    load_tokenizer,
    plain_max_length,
    resolve_checkpoint,
)
from bertkit.models.folder_check import check_folder
from bertkit.models.folders import read_metadata, save_folder
from bertkit.models.heads import build_qa_model, load_qa_model
from bertkit.models.kinds import ModelKind, folder_kind
from bertkit.params import ParamsMixin
from bertkit.qa.decoding import Decoded, choose_answers, decode_spans
from bertkit.qa.metrics import best_null_threshold, per_question_scores, squad_metrics
from bertkit.qa.squad import QARecord, SquadData, as_squad, questions_contexts
from bertkit.qa.windows import QAWindows, check_window_sizes, encode_windows, span_targets, special_tokens

KIND = ModelKind.QA
TRAINED_BY = "bertkit qa train"
QAData = SquadData | str | Path | Sequence[dict] | dict
# TrainConfig fields a QuestionAnswerer passes through to the shared training loop.
_LOOP_FIELDS = (
    "model", "epochs", "batch_size", "learning_rate", "max_length", "weight_decay", "warmup_ratio",
    "grad_accumulation", "max_grad_norm", "early_stopping_patience", "precision", "seed",
    "validation_fraction", "device",
)  # fmt: skip
# QA settings stored in bertkit.json next to the loop's config.
_QA_FIELDS = ("doc_stride", "max_question_length", "max_answer_length", "n_best", "null_threshold")


class QuestionAnswerer(ParamsMixin):
    """Fine-tune a BERT-family encoder to extract answer spans from a context (SQuAD v1.1 and v2.0).

    Contexts longer than ``max_length`` tokens are cut into windows sharing ``doc_stride`` tokens; the best of
    the ``n_best`` candidate spans (at most ``max_answer_length`` tokens) over all windows is mapped back to
    exact character offsets of the context. With unanswerable questions (v2.0) the answer is "" when the
    no-answer score beats the best span by more than ``null_threshold`` (``None``: tuned on the validation
    data for v2.0 data; never "no answer" for v1.1).

    Fitted attributes: ``model_``, ``tokenizer_``, ``config_``, ``null_threshold_``, ``history_``,
    ``validation_metrics_`` (``exact_match``, ``f1`` in percent), ``squad_version_``.

    Example::

        qa = QuestionAnswerer(epochs=2).fit("train-v1.1.json")
        qa.predict(["Who wrote it?"], ["It was written by Ada."])
        # [{'answer': 'Ada', 'start': 18, 'end': 21, 'score': 0.93}]
    """

    def __init__(
        self,
        model: str = "minilm",
        *,
        epochs: int = 3,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        max_length: int = 384,
        doc_stride: int = 128,
        max_question_length: int = 64,
        max_answer_length: int = 30,
        n_best: int = 20,
        null_threshold: float | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        grad_accumulation: int = 1,
        max_grad_norm: float = 1.0,
        early_stopping_patience: int = 0,
        precision: str = "auto",
        seed: int = 42,
        validation_fraction: float = 0.1,
        max_train_questions: int | None = None,
        device: str = "auto",
        predict_batch_size: int | None = None,
        progress: bool = True,
    ) -> None:
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.doc_stride = doc_stride
        self.max_question_length = max_question_length
        self.max_answer_length = max_answer_length
        self.n_best = n_best
        self.null_threshold = null_threshold
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.grad_accumulation = grad_accumulation
        self.max_grad_norm = max_grad_norm
        self.early_stopping_patience = early_stopping_patience
        self.precision = precision
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.max_train_questions = max_train_questions
        self.device = device
        self.predict_batch_size = predict_batch_size
        self.progress = progress

    # configuration (get_params/set_params come from ParamsMixin) -------------------------------------
    def _check_params(self) -> None:
        check_window_sizes(self.max_length, self.doc_stride, self.max_question_length)
        for flag, value in (("--max-answer-length", self.max_answer_length), ("--n-best", self.n_best)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{flag} must be a positive integer (got {value!r})")
        if self.max_train_questions is not None and self.max_train_questions < 1:
            raise ConfigError(f"--max-train-questions must be a positive integer (got {self.max_train_questions})")

    def check_params(self) -> None:
        """ConfigError for a parameter ``fit`` would refuse, or a model that cannot hold ``max_length`` tokens:
        the CLI calls it before reading the data (seconds), ``fit`` first thing."""
        self._checked_tokenizer()

    def _checked_tokenizer(self):
        """:meth:`check_params`; returns the model's tokenizer, whose special tokens (3 for BERT, 4 for
        RoBERTa) take room in every window."""
        self._check_params()
        TrainConfig(**{name: getattr(self, name) for name in _LOOP_FIELDS}, task="auto")
        checkpoint = resolve_checkpoint(self.model)
        check_max_length(self.model, checkpoint, self.max_length)
        tokenizer = load_tokenizer(checkpoint)
        check_window_sizes(self.max_length, self.doc_stride, self.max_question_length, special_tokens(tokenizer))
        return tokenizer

    # fitting -------------------------------------------------------------------------------------
    def fit(self, X: QAData, eval_set: QAData | None = None, *, output_dir: str | Path | None = None):
        """Fine-tune on SQuAD data ``X`` (a JSON path, :class:`SquadData`, a decoded SQuAD object or a list of
        dicts with question, context, answers); returns ``self``.

        ``eval_set`` is the validation data (per-epoch EM/F1, best epoch, v2.0 null threshold); without it a
        seeded ``validation_fraction`` of whole articles is held out, so no context is seen on both sides.
        """
        from bertkit.ddp import env_world_size

        if env_world_size() > 1:
            raise ConfigError("bertkit qa train runs in one process; launch it without torchrun")
        # The options, and the model holding max_length tokens, before the data is read or anything is written.
        tokenizer = self._checked_tokenizer()
        checkpoint = resolve_checkpoint(self.model)
        train = as_squad(X, "X")
        validation = as_squad(eval_set, "eval_set") if eval_set is not None else None
        if validation is None:
            train, validation = hold_out_articles(train, self.validation_fraction, self.seed)
        if self.max_train_questions and self.max_train_questions < len(train):
            keep = np.sort(np.random.default_rng(self.seed).permutation(len(train))[: self.max_train_questions])
            train = SquadData([train.records[i] for i in keep], train.source, train.version)
        version = "2.0" if (train.has_impossible or validation.has_impossible) else "1.1"

        started = time.perf_counter()
        self.tokenizer_ = tokenizer
        from bertkit.engine import loop as training
        from bertkit.engine.objective import MetricScorer, Validation
        from bertkit.qa.objective import SpanObjective

        self.squad_version_ = version
        self.null_threshold_ = self.null_threshold
        train_windows = self._windows(train.records)
        validation_windows = self._windows(validation.records)
        base = TrainConfig(**{name: getattr(self, name) for name in _LOOP_FIELDS}, task="auto")
        self.config_ = base.resolved(len(train_windows))
        training.seed_everything(self.config_.seed)  # the new head's initial weights are part of the run
        self.model_ = build_qa_model(checkpoint)
        tune = version == "2.0" and self.null_threshold is None

        def evaluate(logits: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
            metrics, _ = self._score(validation.records, validation_windows, logits, tune=tune)
            return metrics

        result = training.fit(
            self.model_, train_windows.encoded, self.config_, SpanObjective(span_targets(train_windows, train.records)),
            device=resolve_device(self.config_.device),
            validation=Validation(validation_windows.encoded, MetricScorer(evaluate, main_metric="f1")),
            run=training.RunOptions(
                progress=self.progress, history_path=Path(output_dir) / "history.jsonl" if output_dir else None
            ),
        )  # fmt: skip
        # The loop already ran the kept epoch on the validation data: its logits give the final metrics.
        self.validation_metrics_, threshold = self._score(
            validation.records, validation_windows, result.validation_logits, tune=tune
        )
        if tune:
            self.null_threshold_ = threshold
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.train_seconds_ = round(time.perf_counter() - started, 2)
        self.n_train_questions_ = len(train)
        self.n_train_windows_ = len(train_windows)
        self.validation_articles_ = validation.titles
        return self

    def _windows(self, records: Sequence[QARecord]) -> QAWindows:
        return encode_windows(self.tokenizer_, records, self.max_length, self.doc_stride, self.max_question_length)

    def _decode(self, records, windows, logits) -> list[Decoded]:
        return decode_spans(
            windows, logits[0], logits[1], records, n_best=self.n_best, max_answer_length=self.max_answer_length
        )

    def _score(self, records, windows, logits, *, tune: bool) -> tuple[dict[str, float], float | None]:
        """SQuAD metrics of decoded answers; with ``tune`` the null threshold that maximises F1 is chosen
        first (and returned)."""
        decoded = self._decode(records, windows, logits)
        threshold = self.null_threshold_
        if tune:
            best = [d.candidates[0].text if d.candidates else "" for d in decoded]
            _, best_f1 = per_question_scores(best, _golds(records))
            margins = np.array([d.null_margin for d in decoded])
            margins = np.where(np.isfinite(margins), margins, 1e9)
            threshold, _ = best_null_threshold(margins, best_f1, np.array([not r.is_impossible for r in records]))
        answers = [c.text if c else "" for c in choose_answers(decoded, threshold)]
        answerable = [not r.is_impossible for r in records]
        return squad_metrics(answers, _golds(records), answerable), threshold

    # prediction ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "this QuestionAnswerer is not fitted yet; call fit(...) or QuestionAnswerer.load(folder) first"
            )

    def _logits(self, windows: QAWindows) -> tuple[np.ndarray, np.ndarray]:
        from bertkit.qa.objective import predict_span_logits

        device = next(self.model_.parameters()).device
        return predict_span_logits(
            self.model_, windows.encoded, batch_size=self.predict_batch_size, device=device,
            dtype=inference_dtype(self.config_.precision, device), progress=self.progress and len(windows) > 2000,
        )  # fmt: skip

    def _decoded(self, data: SquadData) -> list[Decoded]:
        windows = self._windows(data.records)
        return self._decode(data.records, windows, self._logits(windows))

    def predict(self, questions: Iterable[str], contexts: Iterable[str]) -> list[dict[str, Any]]:
        """One answer per (question, context) (lists or any iterables, e.g. generators): ``{"id", "question",
        "answer", "start", "end", "score"}`` (``id``: the position in these lists) with character offsets into
        the context (``context[start:end] == answer``); no answer (v2.0 models) is ``""`` with start and end
        None and the no-answer probability as score."""
        return self.predict_records(questions_contexts(questions, contexts))

    def predict_records(self, data: QAData) -> list[dict[str, Any]]:
        """Answers for SQuAD data (path, :class:`SquadData` or list of dicts): one dict per question with
        ``id``, ``question``, ``answer``, ``start``, ``end``, ``score``, in input order."""
        self._check_fitted()
        data = as_squad(data, "data", need_answers=False)
        decoded = self._decoded(data)
        out = []
        for record, d, best in zip(data.records, decoded, choose_answers(decoded, self.null_threshold_), strict=True):
            answer = {"answer": best.text, "start": best.start, "end": best.end, "score": best.score} if best else {
                "answer": "", "start": None, "end": None, "score": d.null_score
            }  # fmt: skip
            out.append({"id": record.id, "question": record.question, **answer})
        return out

    def predict_nbest(self, questions: Iterable[str], contexts: Iterable[str], k: int = 5) -> list[list[dict]]:
        """The ``k`` best candidate spans of each question, best first (each a dict like :meth:`predict`'s)."""
        self._check_fitted()
        decoded = self._decoded(questions_contexts(questions, contexts))
        return [
            [{"answer": c.text, "start": c.start, "end": c.end, "score": c.score} for c in d.candidates[:k]]
            for d in decoded
        ]

    def evaluate(self, data: QAData) -> dict[str, Any]:
        """Official SQuAD ``exact_match`` and ``f1`` (percent) on labelled data, plus ``total`` and, for
        v2.0 data, the ``HasAns_*``/``NoAns_*`` breakdown."""
        self._check_fitted()
        data = as_squad(data, "data")
        windows = self._windows(data.records)
        metrics, _ = self._score(data.records, windows, self._logits(windows), tune=False)
        return metrics

    def score(self, data: QAData) -> float:
        """SQuAD F1 (percent)."""
        return self.evaluate(data)["f1"]

    # persistence ---------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write a Hugging Face QA model folder (loads with ``AutoModelForQuestionAnswering``) plus bertkit.json
        with ``"kind": "question-answering"``, the window and decoding settings and the validation metrics."""
        self._check_fitted()
        qa = {name: getattr(self, name) for name in _QA_FIELDS}
        qa["null_threshold"] = self.null_threshold_
        metadata = {
            "format": 1,
            "kind": KIND,
            "task": KIND,
            "squad_version": self.squad_version_,
            "config": self.config_.to_dict(),
            "qa": qa,
            "validation_metrics": getattr(self, "validation_metrics_", None),
            "validation_articles": getattr(self, "validation_articles_", None),
            "best_epoch": getattr(self, "best_epoch_", None),
            "history": getattr(self, "history_", None),
            "train_seconds": getattr(self, "train_seconds_", None),
            "n_train_questions": getattr(self, "n_train_questions_", None),
            "n_train_windows": getattr(self, "n_train_windows_", None),
            "versions": library_versions(),
        }
        folder = save_folder(folder, self.model_, self.tokenizer_, metadata)
        write_card(folder, metadata)  # README.md: the Hugging Face model card (models/card.py)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto", progress: bool = False) -> QuestionAnswerer:
        """Load a folder written by :meth:`save`, or any Hugging Face question-answering model folder."""
        checkpoint = resolve_checkpoint(folder, trained_by=TRAINED_BY)
        metadata = read_metadata(checkpoint) or {}
        kind = folder_kind(checkpoint)
        # A hub id has no local config.json to tell its kind: transformers decides when it loads the model.
        if kind != KIND and (metadata or (Path(checkpoint) / "config.json").is_file()):
            raise ModelLoadError(
                f"{folder}: not a question-answering model (bertkit.json kind: {kind if metadata else 'none'}); "
                "train one with `bertkit qa train` or pass a Hugging Face ...ForQuestionAnswering folder"
            )
        check_folder(folder, checkpoint, KIND)
        model = load_qa_model(checkpoint)
        tokenizer = load_tokenizer(checkpoint, trained_by=TRAINED_BY)
        if metadata:
            config = TrainConfig.from_dict(metadata["config"])
            qa = metadata.get("qa", {})
        else:
            config = TrainConfig(model=str(folder), max_length=plain_max_length(model.config, tokenizer, 384))
            qa = {"doc_stride": min(128, config.max_length // 4)}  # short-window models keep a valid stride
        config = dataclasses.replace(config, device=device)
        params = {k: v for k, v in config.to_dict().items() if k in _LOOP_FIELDS}
        params.update({k: v for k, v in qa.items() if k in _QA_FIELDS})
        estimator = cls(**params, progress=progress)
        estimator.model_ = model.to(resolve_device(device)).eval()
        estimator.tokenizer_ = tokenizer
        estimator.config_ = config
        estimator.null_threshold_ = qa.get("null_threshold")
        estimator.squad_version_ = metadata.get("squad_version", "1.1")
        estimator.history_ = metadata.get("history") or []
        estimator.validation_metrics_ = metadata.get("validation_metrics")
        return estimator


def _golds(records: Sequence[QARecord]) -> list[list[str]]:
    return [[a.text for a in r.answers] for r in records]


def hold_out_articles(data: SquadData, fraction: float, seed: int) -> tuple[SquadData, SquadData]:
    """A seeded split that keeps whole articles (titles) on one side; with a single article, questions are
    split instead (their contexts may then appear on both sides)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"--validation-fraction must be in (0, 1) (got {fraction})")
    if len(data) < 2:
        raise DataError(f"{data.source}: {len(data)} question is too few to hold out validation data")
    titles = data.titles
    rng = np.random.default_rng(seed)
    if len(titles) >= 2:
        n_val = min(len(titles) - 1, max(1, round(fraction * len(titles))))
        held = {titles[i] for i in rng.permutation(len(titles))[:n_val]}
        return data.subset(t for t in titles if t not in held), data.subset(held)
    order = rng.permutation(len(data))
    n_val = min(len(data) - 1, max(1, round(fraction * len(data))))
    val, fit = set(order[:n_val].tolist()), order[n_val:]
    return (
        SquadData([data.records[i] for i in sorted(fit)], data.source, data.version),
        SquadData([data.records[i] for i in sorted(val)], data.source, data.version),
    )
