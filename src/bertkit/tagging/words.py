"""Words and sub-words: pre-split sentences to sub-token ids and predictions back to words, and words with
character offsets for raw text.

Alignment: each word's label sits on its first sub-token; the other sub-tokens and the special tokens get -100,
so the loss and the predictions see one position per word. Sentences longer than ``max_length`` sub-tokens are
cut at word boundaries into pieces that fit, so no word is ever truncated away.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bertkit.data.encoding import Encoded

IGNORE = -100
# Words for raw text: dotted abbreviations (U.S.), words with inner hyphens/apostrophes/ampersands
# (1996-08-22, O'Neill, AT&T), or any single other non-space character (punctuation), as CoNLL splits them.
WORD = re.compile(r"(?:\w\.){2,}|\w+(?:[-'’&]\w+)*|[^\w\s]")


@dataclass
class EncodedWords:
    """Sub-token ids of word lists plus the map back to words."""

    encoded: Encoded
    """Pieces (sentences, or parts of long ones) as flat token arrays; ``doc_index`` maps pieces to sentences."""
    first: np.ndarray
    """Flat positions (into ``encoded.ids``) of each word's first sub-token, int64 [first tokens]."""
    word: np.ndarray
    """Global word number (over all sentences, back to back) of each entry of ``first``, int64 [first tokens]."""
    n_words: np.ndarray
    """Words per sentence, int64 [sentences]."""

    @property
    def total_words(self) -> int:
        return int(self.n_words.sum())

    def token_labels(self, word_labels: np.ndarray) -> np.ndarray:
        """Per-token training labels aligned with ``encoded.ids``: the word's label id on its first sub-token,
        -100 elsewhere. ``word_labels``: int64 [total words]."""
        labels = np.full(len(self.encoded.ids), IGNORE, dtype=np.int64)
        labels[self.first] = word_labels[self.word]
        return labels


def encode_words(tokenizer, sentences: Sequence[Sequence[str]], max_length: int) -> EncodedWords:
    """Tokenize pre-split sentences (``is_split_into_words``), cutting long ones into pieces at word boundaries."""
    budget = max(1, max_length - tokenizer.num_special_tokens_to_add())
    n_words = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    # Pass 1 (no special tokens): sub-tokens per word decide where long sentences are cut.
    counts = tokenizer(list(map(list, sentences)), is_split_into_words=True, add_special_tokens=False)
    pieces: list[list[str]] = []
    piece_sentence: list[int] = []
    piece_start: list[int] = []
    for i, words in enumerate(sentences):
        sizes = np.bincount([w for w in counts.word_ids(i) if w is not None], minlength=len(words))
        if sizes.sum() <= budget:
            pieces.append(list(words))
            piece_sentence.append(i)
            piece_start.append(0)
            continue
        start, used = 0, 0
        for j, size in enumerate(sizes):
            if used + size > budget and j > start:
                pieces.append(list(words[start:j]))
                piece_sentence.append(i)
                piece_start.append(start)
                start, used = j, 0
            used += size
        pieces.append(list(words[start:]))
        piece_sentence.append(i)
        piece_start.append(start)
    # Pass 2: the model inputs (a word longer than the budget alone is truncated, the only loss possible).
    out = tokenizer(pieces, is_split_into_words=True, truncation=True, max_length=max_length)
    rows = out["input_ids"]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    ids = np.fromiter((t for r in rows for t in r), dtype=np.int64, count=int(lengths.sum()))
    word_ids = np.fromiter(
        (-1 if w is None else w for p in range(len(rows)) for w in out.word_ids(p)), dtype=np.int64, count=len(ids)
    )
    row_of_token = np.repeat(np.arange(len(rows)), lengths)
    previous = np.concatenate([[-1], word_ids[:-1]])
    is_first = (word_ids >= 0) & ((previous != word_ids) | (np.arange(len(ids)) == offsets[row_of_token]))
    first = np.flatnonzero(is_first)
    sentence_start = np.zeros(len(sentences), dtype=np.int64)
    np.cumsum(n_words[:-1], out=sentence_start[1:])
    piece_sentence_arr = np.asarray(piece_sentence, dtype=np.int64)
    piece_base = sentence_start[piece_sentence_arr] + np.asarray(piece_start, dtype=np.int64)
    word = piece_base[row_of_token[first]] + word_ids[first]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = Encoded(ids, None, offsets, lengths, int(pad_id), max_length, piece_sentence_arr, len(sentences))
    return EncodedWords(encoded, first, word, n_words)


def word_predictions(words: EncodedWords, logits: np.ndarray, outside: int) -> tuple[np.ndarray, np.ndarray]:
    """Label id and probability of every word from its first sub-token: int64 and float32 [total words].
    A word with no sub-token (e.g. only characters the tokenizer drops) gets ``outside`` with probability 0."""
    ids = np.full(words.total_words, outside, dtype=np.int64)
    scores = np.zeros(words.total_words, dtype=np.float32)
    first = logits[words.first]  # [first tokens, labels]
    shifted = np.exp(first - first.max(axis=1, keepdims=True))
    proba = shifted / shifted.sum(axis=1, keepdims=True)
    ids[words.word] = proba.argmax(axis=1)
    scores[words.word] = proba.max(axis=1)
    return ids, scores


def split_sentences(flat: np.ndarray, n_words: np.ndarray) -> list[np.ndarray]:
    """Cut a flat per-word array into one array per sentence."""
    return np.split(flat, np.cumsum(n_words)[:-1])


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Words of raw text with their character offsets ``(start, end)`` into ``text``."""
    matches = list(WORD.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]


def entity_dicts(
    text: str, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[str, int, int]], scores: np.ndarray
) -> list[dict[str, Any]]:
    """Entities as ``{entity, text, start, end, score}``: character offsets into ``text`` (``text[start:end]``
    is the entity) and the mean probability of its words' tags."""
    out = []
    for kind, first, last in spans:
        start, end = offsets[first][0], offsets[last - 1][1]
        out.append(
            {
                "entity": kind,
                "text": text[start:end],
                "start": int(start),
                "end": int(end),
                "score": round(float(scores[first:last].mean()), 4),
            }
        )
    return out
