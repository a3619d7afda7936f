"""Model kinds: what a model folder holds (a text classifier, a token tagger, a question-answering model).

The one place that names the kinds and tells a folder's kind. The value of each kind is the word saved as
``kind`` in ``bertkit.json``, and also the ``transformers.pipeline`` task that loads the folder without bertkit.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

from bertkit.models.folders import read_metadata


class ModelKind(StrEnum):
    """A model folder's kind; members compare equal to their saved strings (``"text-classification"``...)."""

    CLASSIFIER = "text-classification"
    QA = "question-answering"
    TAGGER = "token-classification"

    @property
    def description(self) -> str:
        """The kind in words, for messages: ``a text classifier``..."""
        return _DESCRIPTIONS[self]

    @classmethod
    def of(cls, folder: str | Path) -> str | None:
        """The kind of ``folder``: see :func:`folder_kind`."""
        return folder_kind(folder)


_DESCRIPTIONS = {
    ModelKind.CLASSIFIER: "a text classifier",
    ModelKind.QA: "a question-answering model",
    ModelKind.TAGGER: "a token-classification model",
}
# Head class name endings in config.json "architectures" (e.g. BertForTokenClassification) and their kinds.
_ARCHITECTURE_SUFFIXES = (("ForQuestionAnswering", ModelKind.QA), ("ForTokenClassification", ModelKind.TAGGER))
HEAD_SUFFIXES = {
    ModelKind.CLASSIFIER: "ForSequenceClassification",
    ModelKind.TAGGER: "ForTokenClassification",
    ModelKind.QA: "ForQuestionAnswering",
}
"""The class name ending of each kind's head in config.json ``architectures``."""


def head_kind(architectures: list[str]) -> ModelKind | None:
    """The kind whose head ``architectures`` (config.json) name; None for none (a bare encoder such as
    ``BertModel``, a masked-LM head, or no architectures recorded)."""
    for kind, suffix in HEAD_SUFFIXES.items():
        if any(a.endswith(suffix) for a in architectures):
            return kind
    return None


def folder_kind(folder: str | Path) -> str | None:
    """The kind of a model folder: ``kind`` in its bertkit.json (folders saved before ``kind`` existed are
    classifiers), else the head its config.json ``architectures`` name (question answering, token
    classification, a classifier for any other). None when the folder has no readable config.json (a hub id:
    only transformers knows it). A bertkit.json may name a kind this bertkit does not know; it is returned as
    is, for the caller to refuse in its own words."""
    metadata = read_metadata(folder)
    if metadata:
        return str(metadata.get("kind", ModelKind.CLASSIFIER))
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
        architectures = [str(a) for a in config.get("architectures") or []]
    except (OSError, json.JSONDecodeError, AttributeError, TypeError):
        return None
    for suffix, kind in _ARCHITECTURE_SUFFIXES:
        if any(a.endswith(suffix) for a in architectures):
            return kind.value
    return ModelKind.CLASSIFIER.value
