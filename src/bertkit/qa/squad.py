"""Read and validate SQuAD v1.1 / v2.0 JSON into flat question records.

A SQuAD file is ``{"version": ..., "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``. Every problem is reported with the file and
the JSON path of the bad item (``data[3].paragraphs[1].qas[4].answers[0].answer_start``) and how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertkit.data.decoding import check_not_binary
from bertkit.exceptions import DataError


@dataclass(frozen=True)
class Answer:
    text: str
    start: int
    """Character offset of ``text`` in the context (``context[start:start + len(text)] == text``)."""

    @property
    def end(self) -> int:
        """Exclusive end character offset."""
        return self.start + len(self.text)


@dataclass
class QARecord:
    id: str
    question: str
    context: str
    answers: list[Answer] = field(default_factory=list)
    """Gold answers (several in SQuAD dev files); empty for unanswerable (v2) or unlabelled questions."""
    is_impossible: bool = False
    title: str = ""
    """Article title: splits keep whole articles on one side."""


@dataclass
class SquadData:
    records: list[QARecord]
    source: str
    """File name or a label for in-memory data (used in messages)."""
    version: str = "1.1"

    def __len__(self) -> int:
        return len(self.records)

    @property
    def has_impossible(self) -> bool:
        return any(r.is_impossible for r in self.records)

    @property
    def titles(self) -> list[str]:
        """Article titles in first-seen order."""
        return list(dict.fromkeys(r.title for r in self.records))

    def subset(self, titles: Iterable[str]) -> SquadData:
        keep = set(titles)
        return SquadData([r for r in self.records if r.title in keep], self.source, self.version)


def read_squad(path: str | Path, *, need_answers: bool = True) -> SquadData:
    """Read a SQuAD v1.1 or v2.0 JSON file; ``need_answers=False`` accepts questions without answers
    (files to predict on)."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file; pass a SQuAD JSON file")
    if not path.is_file():
        raise DataError(f"{path}: SQuAD file not found")
    check_not_binary(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: a byte-order mark is dropped
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path} line {exc.lineno} column {exc.colno}: invalid JSON ({exc.msg}); "
            'a SQuAD file is one JSON object {"version": ..., "data": [...]}'
        ) from None
    return parse_squad(raw, source=str(path), need_answers=need_answers)


def parse_squad(raw: Any, *, source: str = "data", need_answers: bool = True) -> SquadData:
    """Validate an already-decoded SQuAD object (see :func:`read_squad`)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("data"), list):
        got = type(raw).__name__ if not isinstance(raw, Mapping) else f"keys {sorted(raw)}"
        raise DataError(f'{source}: not SQuAD JSON: expected an object with a "data" list of articles (got {got})')
    records: list[QARecord] = []
    seen: dict[str, str] = {}
    for a, article in enumerate(raw["data"]):
        where = f"data[{a}]"
        _expect(article, Mapping, source, where, 'an article object with "paragraphs"')
        title = article.get("title", f"article {a}")
        paragraphs = _field(article, "paragraphs", list, source, where)
        for p, paragraph in enumerate(paragraphs):
            at = f"{where}.paragraphs[{p}]"
            _expect(paragraph, Mapping, source, at, 'a paragraph object with "context" and "qas"')
            context = _field(paragraph, "context", str, source, at)
            for q, qa in enumerate(_field(paragraph, "qas", list, source, at)):
                record = _record(qa, context, str(title), source, f"{at}.qas[{q}]", need_answers)
                if record.id in seen:
                    raise DataError(
                        f"{source} {at}.qas[{q}].id: question id {record.id!r} already used at {seen[record.id]}; "
                        "ids must be unique"
                    )
                seen[record.id] = f"{at}.qas[{q}]"
                records.append(record)
    if not records:
        raise DataError(f'{source}: no questions found (every paragraph\'s "qas" list is empty)')
    version = str(raw.get("version", "1.1"))
    if any(r.is_impossible for r in records):
        version = "2.0"
    return SquadData(records, source, version)


def _record(qa: Any, context: str, title: str, source: str, where: str, need_answers: bool) -> QARecord:
    _expect(qa, Mapping, source, where, 'a question object with "id", "question" and "answers"')
    qid = qa.get("id")
    if not isinstance(qid, str | int) or str(qid) == "":
        raise DataError(f'{source} {where}.id: missing or empty question id; give every question a unique "id"')
    qid = str(qid)
    question = _field(qa, "question", str, source, where)
    if not question.strip():
        raise DataError(f"{source} {where}.question (id {qid}): the question is empty")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise DataError(f"{source} {where}.is_impossible (id {qid}): must be true or false (got {impossible!r})")
    raw_answers = qa.get("answers", [])
    if not isinstance(raw_answers, list):
        raise DataError(f"{source} {where}.answers (id {qid}): must be a list (got {type(raw_answers).__name__})")
    answers = [_answer(item, context, source, f"{where}.answers[{i}]", qid) for i, item in enumerate(raw_answers)]
    if impossible and answers:
        raise DataError(
            f"{source} {where} (id {qid}): is_impossible is true but answers are given; "
            'SQuAD v2 keeps them under "plausible_answers"'
        )
    if need_answers and not impossible and not answers:
        raise DataError(
            f"{source} {where}.answers (id {qid}): no answer; give at least one "
            '{"text", "answer_start"} or mark the question "is_impossible": true (SQuAD v2)'
        )
    return QARecord(qid, question, context, answers, impossible, title)


def _answer(item: Any, context: str, source: str, where: str, qid: str) -> Answer:
    _expect(item, Mapping, source, where, 'an answer object with "text" and "answer_start"')
    text = _field(item, "text", str, source, where)
    start = item.get("answer_start")
    if isinstance(start, bool) or not isinstance(start, int):
        raise DataError(
            f"{source} {where}.answer_start (question id {qid}): must be an integer character offset (got {start!r})"
        )
    if not text.strip():
        raise DataError(
            f"{source} {where}.text (question id {qid}): the answer text is empty or only whitespace; give the "
            "answer's words, or mark the question unanswerable"
        )
    if not 0 <= start <= len(context) - len(text) or context[start : start + len(text)] != text:
        found = context.find(text)
        fix = (
            f"the text occurs at {found}: set answer_start to {found}"
            if found >= 0
            else "the answer text does not occur in the context at all: fix the text or the context"
        )
        raise DataError(
            f"{source} {where}.answer_start (question id {qid}): answer {_short(text)} does not match the "
            f"context at {start} (context there: {_short(context[start : start + len(text)])}); {fix}"
        )
    return Answer(text, start)


def _field(obj: Mapping, key: str, kind: type, source: str, where: str) -> Any:
    if key not in obj:
        raise DataError(f'{source} {where}: missing "{key}" (keys present: {sorted(obj)})')
    value = obj[key]
    if not isinstance(value, kind):
        raise DataError(f"{source} {where}.{key}: expected {_kind(kind)} (got {type(value).__name__})")
    return value


def _expect(value: Any, kind: type, source: str, where: str, wanted: str) -> None:
    if not isinstance(value, kind):
        raise DataError(f"{source} {where}: expected {wanted} (got {type(value).__name__})")


def _kind(kind: type) -> str:
    return {list: "a list", str: "a string"}.get(kind, kind.__name__)


def _listed(items: Any, name: str) -> list:
    """``items`` as a list (a generator is read once); DataError when it is not iterable."""
    if isinstance(items, bytes | Mapping):
        raise DataError(f"{name}: expected a list of strings (got {type(items).__name__}); pass a list")
    try:
        return list(items)
    except TypeError:
        raise DataError(f"{name}: expected a list of strings (got {type(items).__name__}); pass a list") from None


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def as_squad(data: Any, name: str = "data", *, need_answers: bool = True) -> SquadData:
    """Accept a :class:`SquadData`, a path to SQuAD JSON, a decoded SQuAD object, or a list of records
    (dicts with ``question``, ``context`` and optionally ``id``, ``answers`` [{"text", "answer_start"}],
    ``is_impossible``, ``title``). Rows without a title are grouped by their context (titles "context 0",
    "context 1", ... in first-seen order), so a held-out split never puts one context on both sides."""
    if isinstance(data, SquadData):
        return data
    if isinstance(data, str | Path):
        return read_squad(data, need_answers=need_answers)
    if isinstance(data, Mapping):
        return parse_squad(data, source=name, need_answers=need_answers)
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        records, seen = [], set()
        untitled: dict[str, str] = {}  # context -> its title when rows give none
        for i, row in enumerate(data):
            where = f"[{i}]"
            _expect(row, Mapping, name, where, 'a dict with "question" and "context"')
            context = _field(row, "context", str, name, where)
            title = row.get("title")
            # None, or a NaN from DataFrame.to_dict("records") where a title cell was empty
            if title is None or (isinstance(title, float) and title != title):
                title = untitled.setdefault(context, f"context {len(untitled)}")
            record = _record({"id": str(i), **row}, context, str(title), name, where, need_answers)
            if record.id in seen:
                raise DataError(f"{name} {where}.id: question id {record.id!r} already used; ids must be unique")
            seen.add(record.id)
            records.append(record)
        if not records:
            raise DataError(f"{name}: no questions given")
        return SquadData(records, name, "2.0" if any(r.is_impossible for r in records) else "1.1")
    raise DataError(f"{name}: expected a SQuAD JSON path, a SquadData or a list of dicts (got {type(data).__name__})")


def questions_contexts(questions: Iterable[str], contexts: Iterable[str]) -> SquadData:
    """Unlabelled records from parallel lists (or any iterables: generators, arrays, Series) of questions and
    contexts."""
    if isinstance(questions, str) or isinstance(contexts, str):
        raise DataError("expected lists of questions and contexts, got a single string; wrap it in a list")
    questions, contexts = _listed(questions, "questions"), _listed(contexts, "contexts")
    if len(questions) != len(contexts):
        raise DataError(f"{len(questions)} questions but {len(contexts)} contexts; pass one context per question")
    rows = [{"question": q, "context": c} for q, c in zip(questions, contexts, strict=True)]
    return as_squad(rows, "questions", need_answers=False)
