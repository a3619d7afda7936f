"""The public token-classification (NER) facade: :class:`TokenTagger`, in the scikit-learn style.

It combines the CoNLL/JSONL readers, sub-word alignment (:mod:`bertkit.tagging.words`), the shared training loop
(:func:`bertkit.engine.loop.fit` with a token objective) and entity-level metrics.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
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
from bertkit.models.heads import build_token_classifier, load_token_classifier
from bertkit.models.kinds import ModelKind, folder_kind
from bertkit.params import ParamsMixin
from bertkit.tagging.conll import (
    TaggedData,
    check_conll_words,
    hold_out,
    load_tagged,
    read_raw_texts,
    refuse_unseen_tags,
    tag_set,
    write_tagged_rows,
)
from bertkit.tagging.inputs import as_tagged_data, check_texts
from bertkit.tagging.metrics import bio_spans, entity_scores, unknown_types, unknown_types_warning
from bertkit.tagging.objective import TokenObjective, predict_token_logits
from bertkit.tagging.words import (
    EncodedWords,
    encode_words,
    entity_dicts,
    split_sentences,
    split_words,
    word_predictions,
)

KIND = ModelKind.TAGGER
TRAINED_BY = "bertkit tag train"
Sentences = Sequence[Sequence[str]] | TaggedData


class TokenTagger(ParamsMixin):
    """Fine-tune a BERT-family encoder to tag words (named entities and other BIO tag sets).

    Training data are sentences as word lists with one tag per word (IOB1 tags are converted to BIO).
    Parameters mirror ``bertkit tag train`` flags; ``None`` for ``batch_size`` or ``learning_rate`` picks a
    value from the number of training sentences. The best epoch is chosen by validation entity F1.

    Fitted attributes: ``labels_`` (tag set, ``O`` first), ``model_``, ``tokenizer_``, ``history_``,
    ``validation_metrics_``.

    Example::

        tagger = TokenTagger(epochs=3).fit([["Alice", "lives", "in", "Paris"]], [["B-PER", "O", "O", "B-LOC"]])
        tagger.predict(["Bob moved to Berlin"])
        # [[{'entity': 'PER', 'text': 'Bob', 'start': 0, 'end': 3, 'score': 0.98}, ...]]
    """

    def __init__(
        self,
        model: str = "minilm",
        *,
        epochs: int = 3,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        max_length: int = 128,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        grad_accumulation: int = 1,
        max_grad_norm: float = 1.0,
        early_stopping_patience: int = 0,
        precision: str = "auto",
        seed: int = 42,
        validation_fraction: float = 0.1,
        max_train_rows: int | None = None,
        device: str = "auto",
        predict_batch_size: int | None = None,
        progress: bool = True,
    ) -> None:
        self.model = model
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.grad_accumulation = grad_accumulation
        self.max_grad_norm = max_grad_norm
        self.early_stopping_patience = early_stopping_patience
        self.precision = precision
        self.seed = seed
        self.validation_fraction = validation_fraction
        self.max_train_rows = max_train_rows
        self.device = device
        self.predict_batch_size = predict_batch_size
        self.progress = progress

    # configuration (get_params/set_params come from ParamsMixin) -------------------------------------
    def _config(self) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {k: v for k, v in self.get_params().items() if k in fields}
        return TrainConfig(**values, selection_metric="f1")

    def check_params(self) -> None:
        """ConfigError for a parameter ``fit`` would refuse, or a model that cannot hold ``max_length`` tokens:
        the CLI calls it before reading the data (seconds), ``fit`` first thing."""
        config = self._config()
        check_max_length(config.model, resolve_checkpoint(config.model), config.max_length)

    # fitting -------------------------------------------------------------------------------------
    def fit(
        self,
        X: Sentences,
        y: Sequence[Sequence[str]] | None = None,
        eval_set: tuple[Sentences, Sequence[Sequence[str]] | None] | TaggedData | None = None,
        *,
        output_dir: str | Path | None = None,
    ) -> TokenTagger:
        """Fine-tune on sentences ``X`` (lists of words) with tags ``y`` (or a :class:`TaggedData`); returns
        ``self``. ``eval_set`` picks the best epoch by entity F1; without it a seeded 10% of the sentences is
        held out. ``output_dir`` receives history.jsonl while training."""
        from bertkit.ddp import env_world_size
        from bertkit.engine import loop as training
        from bertkit.engine.objective import MetricScorer, Validation

        if env_world_size() > 1:
            raise ConfigError("bertkit tag train runs in one process; launch it without torchrun")
        config = self._config()
        # The model must exist and hold max_length tokens before the data is read or anything is written.
        checkpoint = resolve_checkpoint(config.model)
        check_max_length(config.model, checkpoint, config.max_length)
        train = as_tagged_data(X, y, "X", need_tags=True)
        if config.max_train_rows and config.max_train_rows < len(train):
            keep = np.random.default_rng(config.seed).permutation(len(train))[: config.max_train_rows]
            train = train.subset(np.sort(keep))
        if eval_set is not None:
            pair = eval_set if isinstance(eval_set, tuple) else (eval_set, None)
            validation = as_tagged_data(*pair, "eval_set", need_tags=True)
        else:
            train, validation = hold_out(train, config.validation_fraction, config.seed)
        labels = tag_set(train.tags)
        refuse_unseen_tags(validation, labels)
        config = config.resolved(len(train))

        started = time.perf_counter()
        self.tokenizer_ = _tokenizer(checkpoint)
        training.seed_everything(config.seed)  # the new head's initial weights are part of the run
        self.model_ = build_token_classifier(checkpoint, labels)
        self.labels_, self.config_ = labels, config
        label_id = {label: i for i, label in enumerate(labels)}
        train_words = encode_words(self.tokenizer_, train.tokens, config.max_length)
        word_labels = np.fromiter((label_id[t] for tags in train.tags for t in tags), dtype=np.int64)
        validation_words = encode_words(self.tokenizer_, validation.tokens, config.max_length)

        def evaluate(logits: np.ndarray) -> dict[str, float]:
            predicted = self._tags_from_logits(validation_words, logits)[0]
            scores = entity_scores(validation.tags, predicted)
            return {k: scores[k] for k in ("precision", "recall", "f1", "accuracy")}

        result = training.fit(
            self.model_, train_words.encoded, config, TokenObjective(train_words, word_labels),
            device=resolve_device(config.device),
            validation=Validation(validation_words.encoded, MetricScorer(evaluate, main_metric="f1")),
            run=training.RunOptions(
                progress=self.progress, history_path=Path(output_dir) / "history.jsonl" if output_dir else None
            ),
        )  # fmt: skip
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        predicted = self._tags_from_logits(validation_words, result.validation_logits)[0]
        self.validation_metrics_ = entity_scores(validation.tags, predicted)
        self.train_seconds_ = round(time.perf_counter() - started, 2)
        self.n_train_rows_ = len(train)
        self.data_source_ = train.source
        return self

    # prediction ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this TokenTagger is not fitted yet; call fit(...) or TokenTagger.load(folder) first")

    def _tags_from_logits(self, words: EncodedWords, logits: np.ndarray) -> tuple[list[list[str]], list[np.ndarray]]:
        ids, scores = word_predictions(words, logits, outside=self.labels_.index("O"))
        names = np.asarray(self.labels_, dtype=object)[ids]
        tags = [list(part) for part in split_sentences(names, words.n_words)]
        return tags, split_sentences(scores, words.n_words)

    def _predict_words(self, sentences: list[list[str]]) -> tuple[list[list[str]], list[np.ndarray]]:
        """BIO tags and their probabilities for every word of every sentence."""
        self._check_fitted()
        if not sentences:
            return [], []
        words = encode_words(self.tokenizer_, sentences, self.config_.max_length)
        device = next(self.model_.parameters()).device
        logits = predict_token_logits(
            self.model_, words.encoded, batch_size=self.predict_batch_size, device=device,
            dtype=inference_dtype(self.config_.precision, device),
        )  # fmt: skip
        return self._tags_from_logits(words, logits)

    def predict_tags(self, X: Sentences) -> list[list[str]]:
        """One BIO tag per word of each pre-split sentence."""
        data = as_tagged_data(X, None, "X", need_tags=False)
        return self._predict_words(data.tokens)[0]

    def predict(self, texts: Sequence[str]) -> list[list[dict[str, Any]]]:
        """Entities of each raw text: a list of ``{entity, text, start, end, score}`` per text, where
        ``text[start:end]`` is the entity's surface string and ``score`` the mean probability of its tags."""
        texts = check_texts(texts)
        self._check_fitted()
        split = [split_words(t) for t in texts]
        keep = [i for i, (words, _) in enumerate(split) if words]  # a text of no words has no entities
        tags, scores = self._predict_words([split[i][0] for i in keep])
        out: list[list[dict[str, Any]]] = [[] for _ in texts]
        for k, i in enumerate(keep):
            out[i] = entity_dicts(texts[i], split[i][1], bio_spans(tags[k]), scores[k])
        return out

    def predict_sentences(self, X: Sentences) -> list[dict[str, Any]]:
        """For pre-split sentences: ``{tokens, tags, entities}`` each, entity offsets into the words joined by
        single spaces (``" ".join(tokens)``), plus ``first_token``/``last_token`` (inclusive)."""
        data = as_tagged_data(X, None, "X", need_tags=False)
        tags, scores = self._predict_words(data.tokens)
        out = []
        for words, sentence_tags, sentence_scores in zip(data.tokens, tags, scores, strict=True):
            offsets, position = [], 0
            for word in words:
                offsets.append((position, position + len(word)))
                position += len(word) + 1
            spans = bio_spans(sentence_tags)
            entities = entity_dicts(" ".join(words), offsets, spans, sentence_scores)
            for entity, (_, first, last) in zip(entities, spans, strict=True):
                entity["first_token"], entity["last_token"] = first, last - 1
            out.append({"tokens": list(words), "tags": sentence_tags, "entities": entities})
        return out

    def evaluate(self, X: Sentences, y: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
        """Entity-level ``precision``, ``recall``, ``f1`` (conlleval: exact span and type), word ``accuracy``,
        entity counts, ``per_type`` scores and ``n_sentences``; ``unknown_types``: gold entities per type the
        model has no tag for (never predicted, so missed), said in ``warnings`` (lines the CLI prints)."""
        data = as_tagged_data(X, y, "X", need_tags=True)
        predicted = self._predict_words(data.tokens)[0]
        scores = entity_scores(data.tags, predicted)
        unknown = unknown_types(scores["per_type"], self.labels_)
        warnings = [unknown_types_warning(data.source, unknown)] if unknown else []
        return {**scores, "n_sentences": len(data), "data": data.source, "unknown_types": unknown, "warnings": warnings}

    def score(self, X: Sentences, y: Sequence[Sequence[str]] | None = None) -> float:
        """Entity-level F1."""
        return self.evaluate(X, y)["f1"]

    def predict_file(
        self,
        path: str | Path,
        output: str | Path,
        *,
        tag_column: int = -1,
        encoding: str = "utf-8",
        chunk_rows: int = 4096,
    ) -> int:
        """Tag every sentence of ``path`` and write ``output``; returns the number of sentences written.

        Input: JSONL with ``tokens`` (pre-split sentences) or with ``text`` (raw text), ``.txt`` (one raw text
        per line), or any other file as CoNLL columns. Output ``.jsonl``: one object per input line/sentence with ``entities``
        (plus ``tokens``/``tags`` for pre-split input); ``.conll``/``.txt`` for pre-split input: the input
        columns plus the predicted tag, blank lines between sentences (conlleval's input format).
        Sentences are tagged and written ``chunk_rows`` at a time, so sub-word encodings, logits and output
        rows are held for one chunk, not the whole file; ``output`` appears only once every sentence is written
        (an error part-way leaves no partial file, and an older ``output`` untouched; an OSError is a DataError).
        """
        from bertkit.data.writers import check_output_file, written_file

        path, output = Path(path), Path(output)
        suffix = output.suffix.lower()
        if suffix not in (".jsonl", ".conll", ".txt"):
            raise DataError(f"{output}: --output must end in .jsonl, .conll or .txt")
        if chunk_rows < 1:
            raise ConfigError(f"chunk_rows must be a positive integer (got {chunk_rows})")
        self._check_fitted()
        check_output_file(output, path)  # not the input, not a folder: refused before any work
        texts = read_raw_texts(path, encoding)
        if texts is not None and suffix != ".jsonl":
            raise DataError(f"{output}: raw-text input ({path.name}) gives entity spans; write them to .jsonl")
        data = (
            None if texts is not None else load_tagged(path, tag_column=tag_column, need_tags=False, encoding=encoding)
        )
        n_rows = len(texts) if texts is not None else len(data)
        if data is not None and suffix != ".jsonl":
            check_conll_words(data, output)
        with written_file(output) as partial, partial.open("w", encoding="utf-8") as handle:
            for start in range(0, n_rows, chunk_rows):
                stop = min(start + chunk_rows, n_rows)
                if texts is not None:
                    chunk = texts[start:stop]
                    rows = [{"text": t, "entities": e} for t, e in zip(chunk, self.predict(chunk), strict=True)]
                else:
                    rows = self.predict_sentences(data.subset(range(start, stop)))
                    if data.tags is not None:
                        for row, gold in zip(rows, data.tags[start:stop], strict=True):
                            row["gold_tags"] = gold
                write_tagged_rows(handle, rows, suffix)
        return n_rows

    # persistence ---------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write a Hugging Face token-classification folder (loads in ``pipeline("token-classification")``)
        plus bertkit.json with ``"kind": "token-classification"``, the tag set, config and metrics."""
        self._check_fitted()
        metadata = {
            "format": 1,
            "kind": KIND,
            "labels": list(self.labels_),
            "config": self.config_.to_dict(),
            "validation_metrics": getattr(self, "validation_metrics_", None),
            "best_epoch": getattr(self, "best_epoch_", None),
            "history": getattr(self, "history_", None),
            "train_seconds": getattr(self, "train_seconds_", None),
            "n_train_rows": getattr(self, "n_train_rows_", None),
            "data": getattr(self, "data_source_", None),
            "versions": library_versions(),
        }
        folder = save_folder(folder, self.model_, self.tokenizer_, metadata)
        write_card(folder, metadata)  # README.md: the Hugging Face model card (models/card.py)
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "auto", progress: bool = False) -> TokenTagger:
        """Load a folder written by :meth:`save`, or any Hugging Face token-classification model whose
        id2label holds BIO tags (``O``, ``B-X``, ``I-X``)."""
        checkpoint = resolve_checkpoint(folder, trained_by=TRAINED_BY)
        metadata = read_metadata(checkpoint) or {}
        kind = folder_kind(checkpoint)
        # Only bertkit.json is trusted to refuse a folder: a plain one loads, and its id2label is checked below.
        if metadata and kind != KIND:
            other = "`bertkit qa evaluate/predict`" if kind == ModelKind.QA else "`bertkit evaluate/predict`"
            raise ModelLoadError(
                f"{folder}: holds a {kind} model, not a token tagger; use {other} for it, "
                "or train a tagger with `bertkit tag train`"
            )
        check_folder(folder, checkpoint, ModelKind.TAGGER)
        model = load_token_classifier(checkpoint)
        tokenizer = _tokenizer(checkpoint, trained_by=TRAINED_BY)
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        if metadata:
            config = TrainConfig.from_dict(metadata["config"])
        else:
            config = TrainConfig(model=str(folder), max_length=plain_max_length(model.config, tokenizer, 512))
        for label in labels:
            if not (label == "O" or label[:2] in ("B-", "I-")):
                raise ModelLoadError(f"{folder}: label {label!r} in config.json is not a BIO tag (O, B-X, I-X)")
        if "O" not in labels:
            raise ModelLoadError(f"{folder}: config.json id2label has no 'O' tag; a BIO tagger needs one")
        config = dataclasses.replace(config, device=device)
        values = {k: v for k, v in config.to_dict().items() if k in cls._param_names()}
        tagger = cls(**values, progress=progress)
        tagger.model_ = model.to(resolve_device(device)).eval()
        tagger.tokenizer_, tagger.labels_, tagger.config_ = tokenizer, labels, config
        tagger.history_ = metadata.get("history") or []
        tagger.validation_metrics_ = metadata.get("validation_metrics")
        tagger.best_epoch_ = metadata.get("best_epoch")
        return tagger


def _tokenizer(checkpoint: str, trained_by: str | None = None):
    tokenizer = load_tokenizer(checkpoint, trained_by=trained_by)
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{checkpoint}: tagging needs a fast (Rust) tokenizer to map sub-tokens to words")
    if hasattr(tokenizer, "add_prefix_space") and not tokenizer.add_prefix_space:
        # Byte-level BPE (RoBERTa, GPT-2) needs a space before each pre-split word to tokenize it as in text.
        tokenizer = load_tokenizer(checkpoint, trained_by=trained_by, add_prefix_space=True)
    return tokenizer
