"""The tagger's in-memory input checked as a file is: sentences as lists of word strings, tags as lists of BIO
strings, raw texts as strings. Anything else (None, a number, a sentence or tag list given as one string, which
would be read character by character) is a :class:`~bertkit.exceptions.DataError` naming the sentence and word,
never tagged as its ``str()``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bertkit.exceptions import DataError
from bertkit.tagging.conll import TaggedData, check_tag, iob1_to_bio

SENTENCE_TYPES = (list, tuple, np.ndarray)
"""What one sentence's words (or tags) may be given as."""


def from_lists(tokens: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None, name: str = "X") -> TaggedData:
    """In-memory sentences (lists of words, optionally lists of tags) checked like a file."""
    if not _is_collection(tokens):
        raise DataError(f"{name}: expected a list of sentences, each a list of words (e.g. [['Paris', 'is', 'big']])")
    if tags is not None and not _is_collection(tags):
        raise DataError(f"{name}: the tags must be a list of tag lists, one per sentence (got {_kind(tags)})")
    if tags is not None and len(tags) != len(tokens):
        raise DataError(f"{name}: {len(tokens)} sentences but {len(tags)} tag lists; give one tag list per sentence")
    for i, words in enumerate(tokens):
        where = f"{name} sentence {i + 1}"
        _check_list(words, where, "words", "['Paris', 'is', 'big']")
        if not len(words):
            raise DataError(f"{where}: no words; every sentence needs at least one word")
        for j, word in enumerate(words):
            if not isinstance(word, str):
                raise DataError(f"{where} word {j + 1}: expected a string, got {_kind(word)}; every word is a string")
    out_tags = None
    if tags is not None:
        out_tags = []
        for i, (words, labels) in enumerate(zip(tokens, tags, strict=True)):
            where = f"{name} sentence {i + 1}"
            _check_list(labels, where, "tags", "['B-LOC', 'O', 'O']")
            if len(words) != len(labels):
                raise DataError(f"{where}: {len(words)} words but {len(labels)} tags; give one tag per word")
            for j, tag in enumerate(labels):
                check_tag(tag, f"{where} word {j + 1}")
            out_tags.append(iob1_to_bio([str(tag) for tag in labels]))
    return TaggedData([[str(w) for w in s] for s in tokens], out_tags, name)


def as_tagged_data(X: Sequence[Sequence[str]] | TaggedData, y, name: str, *, need_tags: bool) -> TaggedData:
    """The estimator's input as :class:`TaggedData`: a TaggedData as is (its tags are its own, so ``y`` is
    refused), else lists of words (and of tags) checked by :func:`from_lists`; ``need_tags``: tags required."""
    if isinstance(X, TaggedData):
        if y is not None:
            raise DataError(f"{name}: tags come from the data file; do not pass y as well")
        data = X
    else:
        data = from_lists(X, y, name=name)
    if need_tags and data.tags is None:
        raise DataError(f"{data.source}: needs tags (one per word) for training or evaluation; none were given")
    return data


def check_texts(texts: Sequence[str]) -> list[str]:
    """Raw texts to tag as a list of strings; DataError for one string in place of the list, or an item that is
    not a string (``texts[i]``, as the caller indexes it)."""
    if isinstance(texts, str | bytes):
        raise DataError("texts: expected a list of strings; wrap a single text in a list")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise DataError(f"texts[{i}]: expected a string, got {_kind(text)}; every text to tag is a string")
    return out


def _check_list(value: Any, where: str, what: str, example: str) -> None:
    """DataError unless ``value`` (one sentence's words or tags) is a list, tuple or 1-D array."""
    if isinstance(value, str):
        raise DataError(
            f"{where}: the {what} are one string ({value[:40]!r}), not a list; give a list, one item per word "
            f"(e.g. {example})"
        )
    if not isinstance(value, SENTENCE_TYPES) or (isinstance(value, np.ndarray) and value.ndim != 1):
        raise DataError(f"{where}: expected a list of {what} (e.g. {example}), got {_kind(value)}")


def _is_collection(value: Any) -> bool:
    """A list, tuple, array or Series of sentences (anything sized and iterable but a string)."""
    return not isinstance(value, str | bytes | dict) and hasattr(value, "__len__") and hasattr(value, "__iter__")


def _kind(value: Any) -> str:
    """``value`` for a message: its (shortened) repr and its type."""
    return f"{repr(value)[:40]} ({type(value).__name__})"
