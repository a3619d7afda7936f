"""Words and sub-words: pre-split sentences to sub-token ids and predictions back to words, and words with
character offsets for raw text.

Alignment: each word's label sits on its first sub-token; the other sub-tokens and the special tokens get -100,
so the loss and the predictions see one position per word. Sentences longer than ``max_length`` sub-tokens are
cut at word boundaries into pieces that fit, so no word is ever truncated away.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from typing import Any

import numpy as np

from bertkit.data.encoding import Encoded
from bertkit.exceptions import ConfigError

IGNORE = -100
JOINERS = "\u00ad\u200c\u200d\u2060"
"""Invisible characters that sit inside a word: soft hyphen, zero-width non-joiner and joiner, word joiner."""


@cache
def word_pattern() -> re.Pattern[str]:
    """Words for raw text: dotted abbreviations (U.S.), words with inner hyphens/apostrophes/ampersands
    (1996-08-22, O'Neill, AT&T), or any single other visible character (punctuation), as CoNLL splits them.

    Combining marks (Unicode M*: the accents of decomposed "Mu\u0308ller", Indic vowel signs and viramas) and
    :data:`JOINERS` belong to the word they are in, as letters do (``\\w`` alone matches neither); other
    control and format characters (zero-width space, LRM/RLM, BOM) separate words like spaces. Built on first
    use (the Unicode tables are read once, ~30 ms): marks and format characters lie in planes 0, 1 and 14."""
    marks, invisible = [], []
    for code in chain(range(0x20000), range(0xE0000, 0xE1000)):
        char = chr(code)
        category = unicodedata.category(char)
        if category[0] == "M" or char in JOINERS:
            marks.append(code)
        elif category in ("Cc", "Cf") and not char.isspace():
            invisible.append(code)
    mark, hidden = _ranges(marks), _ranges(invisible)
    letter, other = rf"[\w{mark}]", rf"[^\w\s{mark}{hidden}]"
    symbol = rf"{other}(?:\u200d{other}|[{mark}])*"  # an emoji ZWJ sequence stays one symbol
    return re.compile(rf"(?:\w[{mark}]*\.){{2,}}|{letter}+(?:[-'’&]{letter}+)*|{symbol}")


def _ranges(codes: Iterable[int]) -> str:
    """Sorted code points as the inside of a regex character class: ``\\Uxxxxxxxx-\\Uyyyyyyyy`` runs."""
    out: list[str] = []
    start = previous = None
    for code in chain(codes, [None]):
        if code is not None and previous is not None and code == previous + 1:
            previous = code
            continue
        if start is not None:
            out.append(f"\\U{start:08x}-\\U{previous:08x}")
        start = previous = code
    return "".join(out)


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
    """Tokenize pre-split sentences (``is_split_into_words``), cutting long ones into pieces at word boundaries.

    A word the tokenizer turns into no sub-token at all (a zero-width space, a soft hyphen, a control
    character, an empty string) is encoded as the tokenizer's unknown token, so every word has a first
    sub-token: it gets a prediction, and its tag reaches the loss (a tokenizer without one leaves it out)."""
    special = tokenizer.num_special_tokens_to_add()
    if max_length <= special:  # no word would get a sub-token: every word tagged O, no label trained
        raise ConfigError(
            f"--max-length {max_length} leaves no room for words beside the model's {special} special tokens; "
            f"give at least {special + 1} (128 or more is usual)"
        )
    budget = max_length - special
    n_words = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    # Pass 1 (no special tokens): sub-tokens per word decide where long sentences are cut.
    counts = tokenizer(list(map(list, sentences)), is_split_into_words=True, add_special_tokens=False)
    unk = tokenizer.unk_token
    unk_size = 0 if unk is None else len(tokenizer([unk], add_special_tokens=False)["input_ids"][0])
    pieces: list[list[str]] = []
    piece_sentence: list[int] = []
    piece_start: list[int] = []
    for i, words in enumerate(sentences):
        sizes = np.bincount([w for w in counts.word_ids(i) if w is not None], minlength=len(words))
        if unk_size and not sizes.all():
            words = [unk if size == 0 else word for word, size in zip(words, sizes, strict=True)]
            sizes = np.where(sizes == 0, unk_size, sizes)
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
    A word with no sub-token (only with a tokenizer that has no unknown token: :func:`encode_words`) gets
    ``outside`` with probability 0."""
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
    matches = list(word_pattern().finditer(text))
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
