"""Tagging files: read word-tagged sentences (CoNLL column files, JSONL with ``tokens``/``tags``) and raw texts
to tag, and write predicted tags back as JSONL or CoNLL columns; check sentences as the tagger takes them (its
tag set, held-out validation, words a CoNLL column can hold).

CoNLL (2000/2003 shared tasks): one word per line with whitespace-separated columns (``word POS chunk NER``),
a blank line between sentences, ``-DOCSTART-`` lines between documents. The tag column is the last one unless
told otherwise. Tags are normalised to BIO: the original CoNLL-2003 files use IOB1, where ``I-X`` starts an
entity and ``B-X`` appears only between two adjacent entities of one type; the conversion leaves BIO data as is.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bertkit.data.decoding import check_not_binary, codec, decode_file
from bertkit.exceptions import BertkitWarning, DataError

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
TAG_SHAPE = re.compile(r"^(?:O|[BIESLU]-[^\W\d]\S*)$")
"""A tag as the sniff of a ``.txt`` knows one: ``O``, or a BIO/IOB1/IOBES/BILOU prefix and a type that starts
with a letter (``B-PER``, ``I-WORK_OF_ART``, ``B-ORG:gov``, ``B-PER/LOC``): ``B-52`` and ``I-95`` are words."""
SNIFF_LINES = 1000
"""Word lines looked at, at most, to tell a CoNLL ``.txt`` from one raw text per line."""
FORMATS = (
    "CoNLL columns (word ... tag per line, blank lines between sentences; any extension, .txt too when its lines "
    "look so) or JSONL with tokens/tags"
)


@dataclass
class TaggedData:
    """Sentences as word lists, with one BIO tag per word (``tags`` is None for unlabelled data)."""

    tokens: list[list[str]]
    tags: list[list[str]] | None
    source: str = "<data>"
    """File name (or a name for in-memory data) used in messages."""
    lines: list[int] = field(default_factory=list)
    """Line (1-based) where each sentence starts in ``source``; empty for in-memory data."""

    def __len__(self) -> int:
        return len(self.tokens)

    def where(self, i: int) -> str:
        """'file line N' (or 'name sentence N') of sentence ``i``, for messages."""
        if self.lines:
            return f"{self.source} line {self.lines[i]}"
        return f"{self.source} sentence {i + 1}"

    def subset(self, index: Sequence[int]) -> TaggedData:
        return TaggedData(
            tokens=[self.tokens[i] for i in index],
            tags=None if self.tags is None else [self.tags[i] for i in index],
            source=self.source,
            lines=[self.lines[i] for i in index] if self.lines else [],
        )


def iob1_to_bio(tags: Sequence[str]) -> list[str]:
    """IOB1 (or BIO) tags to BIO: an ``I-X`` that does not continue an entity of type X becomes ``B-X``.

    >>> iob1_to_bio(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    ['B-PER', 'I-PER', 'O', 'B-LOC', 'B-LOC']
    """
    out: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def check_tag(tag: str, where: str) -> None:
    """Refuse anything but ``O``, ``B-TYPE`` and ``I-TYPE`` (strings)."""
    if not isinstance(tag, str):
        raise DataError(
            f"{where}: tag {tag!r} is a {type(tag).__name__}, not a string; tags must be O, B-TYPE or I-TYPE "
            "(e.g. B-PER, I-LOC)"
        )
    if tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2):
        return
    raise DataError(f"{where}: tag {tag!r} is not BIO/IOB1; tags must be O, B-TYPE or I-TYPE (e.g. B-PER, I-LOC)")


def read_conll(
    path: str | Path, *, tag_column: int = -1, need_tags: bool = True, encoding: str = "utf-8"
) -> TaggedData:
    """Read a CoNLL column file: the word is column 0, the tag column ``tag_column`` (0-based; -1 = last).

    Every word line must have as many columns as the first one. With ``need_tags=False`` a file of bare words
    (one column) is accepted too, and its tags are None.
    """
    path = Path(path)
    text = _read_text(path, encoding)
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[int] = []
    words: list[str] = []
    labels: list[str] = []
    width: int | None = None
    width_line = first_line = 0

    def close() -> None:
        if words:
            tokens.append(list(words))
            tags.append(iob1_to_bio(labels))
            lines.append(first_line)
            words.clear()
            labels.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            close()
            continue
        if width is None:
            width, width_line = len(columns), number
            _check_tag_column(path, number, width, tag_column, need_tags)
        elif len(columns) != width:
            raise DataError(
                f"{path.name} line {number}: {len(columns)} columns, expected {width} like line {width_line}; "
                "every word line needs the same columns (word ... tag), separated by whitespace; "
                f"got {line.strip()[:80]!r}"
            )
        if not words:
            first_line = number
        words.append(columns[0])
        if width > 1 or need_tags:
            tag = columns[tag_column]
            check_tag(tag, f"{path.name} line {number}")
            labels.append(tag)
    close()
    if not tokens:
        raise DataError(
            f"{path.name}: no sentences found; expected CoNLL lines 'word ... tag' with blank lines between sentences"
        )
    has_tags = width is not None and width > 1
    return TaggedData(tokens, tags if has_tags else None, path.name, lines)


def _check_tag_column(path: Path, number: int, width: int, tag_column: int, need_tags: bool) -> None:
    if width == 1:
        if need_tags:
            raise DataError(
                f"{path.name} line {number}: 1 column; labelled CoNLL data needs a word and a tag per line "
                "(e.g. 'Paris NNP I-NP B-LOC')"
            )
        return
    if not -width <= tag_column < width or tag_column in (0, -width):
        raise DataError(
            f"{path.name} line {number}: --tag-column {tag_column} does not name a tag column of {width} columns; "
            f"use 1..{width - 1} or -1 (the last, the default)"
        )


def read_tagged_jsonl(path: str | Path, *, need_tags: bool = True, encoding: str = "utf-8") -> TaggedData:
    """Read JSONL with one sentence per line: ``{"tokens": [...], "tags": [...]}`` (tags may be IOB1 or BIO)."""
    path = Path(path)
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[int] = []
    any_tags = False
    for number, line in enumerate(_read_text(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg}); each line must be one JSON object") from None
        if not isinstance(record, dict) or not _is_str_list(record.get("tokens")):
            raise DataError(
                f'{where}: needs "tokens", a list of strings (e.g. {{"tokens": ["Paris"], "tags": ["B-LOC"]}})'
            )
        words = record["tokens"]
        if not words:
            raise DataError(f'{where}: "tokens" is empty; every sentence needs at least one word')
        labels = record.get("tags")
        if labels is None:
            if need_tags:
                raise DataError(f'{where}: no "tags"; labelled data needs one tag per token')
        else:
            if not _is_str_list(labels) or len(labels) != len(words):
                got = len(labels) if isinstance(labels, list) else type(labels).__name__
                raise DataError(f'{where}: "tags" must be a list of {len(words)} strings, one per token (got {got})')
            for tag in labels:
                check_tag(tag, where)
            any_tags = True
        tokens.append([str(w) for w in words])
        tags.append(iob1_to_bio(labels) if labels is not None else [])
        lines.append(number)
    if not tokens:
        raise DataError(f'{path.name}: no sentences found; expected lines like {{"tokens": [...], "tags": [...]}}')
    if any_tags and any(not t for t in tags):
        missing = next(lines[i] for i, t in enumerate(tags) if not t)
        raise DataError(f'{path.name} line {missing}: no "tags" while other lines have them; tag every line or none')
    return TaggedData(tokens, tags if any_tags else None, path.name, lines)


def tagging_format(path: Path, encoding: str) -> str:
    """How ``tag train``, ``tag evaluate`` and ``tag predict`` all read ``path``: ``"jsonl"`` by extension,
    ``"text"`` (one raw text per line) for a ``.txt`` whose lines do not look like CoNLL, else ``"conll"``.

    A ``.txt`` is CoNLL when it has ``-DOCSTART-`` lines, or when its first word lines all have one number (two
    or more) of whitespace-separated columns, one column after the word holds tags alone (:data:`TAG_SHAPE`),
    and either there are three columns or more (``word POS tag``) or a blank line separates two sentences. Short
    lines of raw text such as ``Boeing B-52`` stay text; a two-column file of one sentence reads as CoNLL under
    another extension (``.conll``)."""
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix != ".txt":
        return "conll"
    _read_text(path, encoding)  # a folder, a missing or binary file, bytes not in ``encoding``: named there
    try:
        with path.open(encoding=codec(encoding)) as handle:
            lines, separated = _word_lines(handle)
    except UnicodeDecodeError:
        _read_text(path, encoding)  # raises the message that names the encoding
        raise
    if any(words[0] == "-DOCSTART-" for words in lines):
        return "conll"
    widths = {len(words) for words in lines}
    if len(widths) != 1 or min(widths) < 2:
        return "text"
    width = min(widths)
    tagged = any(all(TAG_SHAPE.match(words[k]) for words in lines) for k in range(1, width))
    return "conll" if tagged and (width >= 3 or separated) else "text"


def _word_lines(handle) -> tuple[list[list[str]], bool]:
    """The first :data:`SNIFF_LINES` non-blank lines of ``handle`` split at whitespace, and whether a blank line
    comes between two of them (read on to the first such line, within the limit, when the first lines lack it)."""
    lines: list[list[str]] = []
    blank = separated = False
    for line in handle:
        words = line.split()
        if not words:
            blank = bool(lines)
            continue
        separated = separated or blank
        blank = False
        lines.append(words)
        if len(lines) >= SNIFF_LINES or (separated and len(lines) >= 50):
            break
    return lines, separated


def load_tagged(
    path: str | Path, *, tag_column: int = -1, need_tags: bool = True, encoding: str = "utf-8"
) -> TaggedData:
    """Read ``path`` as JSONL (``.jsonl``/``.json``/``.ndjson``) or else as a CoNLL column file; a ``.txt`` of
    raw text (see :func:`tagging_format`) is refused, naming the formats read."""
    path = Path(path)
    kind = tagging_format(path, encoding)
    if kind == "jsonl":
        return read_tagged_jsonl(path, need_tags=need_tags, encoding=encoding)
    if kind == "text":
        raise DataError(
            f"{path.name}: reads as raw text, one text per line (its lines are not 'word ... tag' columns); "
            f"word-split sentences are read from {FORMATS}; raw text is for `bertkit tag predict` (a CoNLL file "
            "of one sentence in two columns: name it .conll)"
        )
    return read_conll(path, tag_column=tag_column, need_tags=need_tags, encoding=encoding)


def hold_out(train: TaggedData, fraction: float, seed: int) -> tuple[TaggedData, TaggedData]:
    """(train, validation): a seeded ``fraction`` of the sentences (at least one) held out, order kept."""
    if len(train) < 4:
        raise DataError(f"{train.source}: {len(train)} sentences are too few to hold out validation data")
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = max(1, int(round(fraction * len(train))))
    return train.subset(np.sort(order[n_val:])), train.subset(np.sort(order[:n_val]))


def tag_set(tags: Sequence[Sequence[str]]) -> list[str]:
    """``O`` then ``B-X``/``I-X`` for every type X seen, types sorted: both prefixes of a type are always
    present so the model can express any entity it has seen."""
    kinds = sorted({t[2:] for sentence in tags for t in sentence if t != "O"})
    return ["O", *(f"{p}-{k}" for k in kinds for p in ("B", "I"))]


def refuse_unseen_tags(validation: TaggedData, labels: list[str]) -> None:
    """DataError for the first validation tag whose entity type training never saw: validation picks the epoch
    kept, and a type the model cannot predict there is a wrong file or a typo that should stop the run first."""
    known = set(labels)
    for i, sentence in enumerate(validation.tags or []):
        unseen = next((tag for tag in sentence if tag not in known), None)
        if unseen is not None:
            types = ", ".join(sorted({t[2:] for t in labels if t != "O"})[:20]) or "none"
            raise DataError(
                f"{validation.where(i)}: tag {unseen!r} has an entity type never seen in training (the training "
                f"data has: {types}); validation data may hold only the types of the training data"
            )


def check_conll_words(data: TaggedData, output: Path) -> None:
    """DataError, before anything is written, for a word CoNLL columns cannot hold (empty, or with a space
    inside: JSONL tokens may be either), which would make ``output`` unreadable as CoNLL."""
    for i, words in enumerate(data.tokens):
        bad = next((w for w in words if not w.strip() or any(c.isspace() for c in w)), None)
        if bad is not None:
            raise DataError(
                f"{data.where(i)}: the word {bad!r} cannot be a CoNLL column (empty, or holding a space); write "
                f"{output.with_suffix('.jsonl').name} instead, or split the word in the input"
            )


def write_tagged_rows(handle, rows: list[dict[str, Any]], suffix: str) -> None:
    """Append predicted rows: JSON lines, or CoNLL columns (word, gold tag when known, predicted tag)."""
    if suffix == ".jsonl":
        handle.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return
    for row in rows:
        for i, word in enumerate(row["tokens"]):
            gold = [row["gold_tags"][i]] if "gold_tags" in row else []
            handle.write(" ".join([word, *gold, row["tags"][i]]) + "\n")
        handle.write("\n")


def read_raw_texts(path: Path, encoding: str) -> list[str] | None:
    """One text per line for raw-text input (JSONL with ``text``, or a ``.txt`` file that does not look like
    CoNLL: :func:`tagging_format`); None when ``path`` holds pre-split sentences (JSONL with ``tokens``, or any
    other file, read as CoNLL)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    kind = tagging_format(path, encoding)
    if kind == "jsonl":
        texts = []
        for number, line in enumerate(_read_text(path, encoding).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path.name} line {number}: not valid JSON ({exc.msg})") from None
            if isinstance(record, dict) and "tokens" in record:
                return None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise DataError(f'{path.name} line {number}: needs "text" (a string) or "tokens" (a list of words)')
            texts.append(record["text"])
        return texts
    if kind == "conll":
        return None
    # One text per line, blank lines too (an empty text, tagged with no entities): row N of the output is line N
    # of the input. Lines end at \n alone (not at U+2028 or a form feed inside a text, as str.splitlines has it);
    # blank lines after the last text end the file, they are not texts.
    lines = [line.removesuffix("\r") for line in _read_text(path, encoding).split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    columns = [line.split() for line in lines if line.strip()]
    if columns and all(len(words) == 2 and TAG_SHAPE.match(words[1]) for words in columns):
        # "Paris B-LOC" on every line: a one-sentence CoNLL file more likely than texts ending in a tag
        warnings.warn(
            f"{path.name}: read as one text per line, but every line is 'word TAG': for a word-split sentence in "
            "CoNLL columns, name the file .conll",
            BertkitWarning,
            stacklevel=2,
        )
    return lines


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _read_text(path: Path, encoding: str) -> str:
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file; pass a CoNLL, JSONL or .txt file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    check_not_binary(path, encoding)
    try:
        return path.read_text(encoding=codec(encoding))
    except UnicodeDecodeError:
        decode_file(path, encoding)  # raises the message the other readers give: the line, the encodings to try
        raise
