"""Question/context pairs to overlapping token windows with character offsets and start/end labels.

One batched call of the fast tokenizer (``truncation="only_second"``, ``return_overflowing_tokens``,
``stride``, ``return_offsets_mapping``) cuts every context longer than ``max_length`` into windows that share
``stride`` tokens; the result is a flat :class:`Encoded` (so the shared batching and training loop apply) plus,
per token, the character span it covers in the original context (-1 outside the context).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bertkit.data.encoding import Encoded
from bertkit.exceptions import BertkitWarning, ConfigError, ModelLoadError
from bertkit.qa.squad import QARecord


@dataclass
class QAWindows:
    encoded: Encoded
    """Flat token ids of every window; ``encoded.doc_index`` maps window -> question record."""
    char_start: np.ndarray
    """Per token (aligned with ``encoded.ids``): first character in the context, -1 outside it. int64."""
    char_end: np.ndarray
    """Per token: exclusive end character in the context, -1 outside it. int64."""
    cls_index: np.ndarray
    """Per window: position of the token whose start/end logits mean "no answer here" (CLS), int64."""

    def __len__(self) -> int:
        return len(self.encoded)

    def window_slice(self, w: int) -> slice:
        start = int(self.encoded.offsets[w])
        return slice(start, start + int(self.encoded.lengths[w]))


def question_budget(max_length: int, max_question_length: int) -> int:
    """Tokens a question may use in a window: ``max_question_length``, but at most a quarter of the window
    so that short windows keep room for context."""
    return max(1, min(max_question_length, max_length // 4))


def special_tokens(tokenizer) -> int:
    """Special tokens the tokenizer adds to a (question, context) pair: 3 for BERT ([CLS] q [SEP] c [SEP]),
    4 for RoBERTa-family models (<s> q </s></s> c </s>)."""
    return int(tokenizer.num_special_tokens_to_add(pair=True))


def check_window_sizes(max_length: int, doc_stride: int, max_question_length: int, n_special: int = 3) -> None:
    """Every window must keep room for the question, the ``n_special`` special tokens of a pair
    (:func:`special_tokens`) and more context than the overlap."""
    if max_length < 16:
        raise ConfigError(f"--max-length must be at least 16 for question answering (got {max_length})")
    if max_question_length < 1:
        raise ConfigError(f"--max-question-length must be a positive integer (got {max_question_length})")
    budget = question_budget(max_length, max_question_length)
    room = max_length - budget - n_special
    if doc_stride < 0 or doc_stride >= room:
        raise ConfigError(
            f"--doc-stride must be at least 0 and below the context room of a window, {room} tokens "
            f"(--max-length {max_length} minus {budget} for the question minus {n_special} special tokens) "
            f"(got {doc_stride})"
        )


def encode_windows(
    tokenizer, records: Sequence[QARecord], max_length: int, doc_stride: int, max_question_length: int = 64
) -> QAWindows:
    """Tokenize (question, context) pairs into windows; questions longer than their budget
    (:func:`question_budget`) are cut so that every window keeps room for context."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(
            f"{getattr(tokenizer, 'name_or_path', 'tokenizer')}: question answering needs a fast (Rust) tokenizer "
            "for character offsets; use a model folder with tokenizer.json"
        )
    check_window_sizes(max_length, doc_stride, max_question_length, special_tokens(tokenizer))
    budget = question_budget(max_length, max_question_length)
    questions = _cut_questions(tokenizer, [r.question.lstrip() for r in records], budget)
    contexts = [r.context for r in records]
    pad_right = tokenizer.padding_side == "right"
    wants_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    out = tokenizer(
        questions if pad_right else contexts,
        contexts if pad_right else questions,
        truncation="only_second" if pad_right else "only_first",
        max_length=max_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=wants_types,
        return_attention_mask=False,
        padding=False,
    )
    rows = out["input_ids"]
    context_side = 1 if pad_right else 0
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    total = int(lengths.sum())
    ids = np.fromiter((t for r in rows for t in r), dtype=np.int64, count=total)
    type_ids = None
    if wants_types:
        type_ids = np.fromiter((t for r in out["token_type_ids"] for t in r), dtype=np.int64, count=total)
    char_start = np.full(total, -1, dtype=np.int64)
    char_end = np.full(total, -1, dtype=np.int64)
    cls_index = np.zeros(len(rows), dtype=np.int64)
    cls_id = tokenizer.cls_token_id
    for w in range(len(rows)):
        sequence = np.asarray([-1 if s is None else s for s in out.sequence_ids(w)])  # [window tokens]
        spans = np.asarray(out["offset_mapping"][w], dtype=np.int64).reshape(-1, 2)  # [window tokens, 2]
        in_context = sequence == context_side
        base = offsets[w]
        char_start[base : base + lengths[w]] = np.where(in_context, spans[:, 0], -1)
        char_end[base : base + lengths[w]] = np.where(in_context, spans[:, 1], -1)
        if cls_id is not None:
            found = np.flatnonzero(np.asarray(rows[w]) == cls_id)
            cls_index[w] = found[0] if len(found) else 0
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    doc_index = np.asarray(out["overflow_to_sample_mapping"], dtype=np.int64)
    encoded = Encoded(ids, type_ids, offsets, lengths, int(pad_id), max_length, doc_index, len(records))
    return QAWindows(encoded, char_start, char_end, cls_index)


def _cut_questions(tokenizer, questions: list[str], limit: int) -> list[str]:
    """Questions longer than ``limit`` tokens are cut at the character where token ``limit`` starts."""
    out = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False)
    cut = list(questions)
    for i, spans in enumerate(out["offset_mapping"]):
        if len(spans) > limit:
            cut[i] = questions[i][: spans[limit][0]].rstrip()
    return cut


def span_targets(windows: QAWindows, records: Sequence[QARecord]) -> np.ndarray:
    """Start/end token positions of each window's answer (the first gold answer, without its leading and
    trailing whitespace), or the CLS position twice when the answer is not wholly inside the window or the
    question has none: int64 [windows, 2].

    Warns (:class:`BertkitWarning`) when answerable questions have their answer in no window: they would
    train as "no answer" (an answer longer than a window's context room, or than the overlap where it meets
    the next window)."""
    targets = np.repeat(windows.cls_index[:, None], 2, axis=1)
    labelled = np.zeros(len(records), dtype=bool)
    for w, r in enumerate(windows.encoded.doc_index):
        record = records[int(r)]
        if record.is_impossible or not record.answers:
            continue
        answer = record.answers[0]
        start = answer.start + len(answer.text) - len(answer.text.lstrip())
        found = token_span(windows, w, start, answer.start + len(answer.text.rstrip()))
        if found is not None:
            targets[w] = found
            labelled[int(r)] = True
    answerable = [i for i, r in enumerate(records) if r.answers and not r.is_impossible]
    missed = [records[i].id for i in answerable if not labelled[i]]
    if missed:
        named = ", ".join(repr(qid) for qid in missed[:3]) + (", ..." if len(missed) > 3 else "")
        warnings.warn(
            f"{len(missed)} of {len(answerable)} answerable questions ({named}) have their answer in no window "
            f'(longer than a window\'s context or than the overlap of two windows), so they train as "no answer"; '
            "raise --max-length (or --doc-stride)",
            BertkitWarning,
            stacklevel=3,  # the caller of fit
        )
    return targets


def token_span(windows: QAWindows, w: int, start_char: int, end_char: int) -> tuple[int, int] | None:
    """Window-relative positions of the first and last tokens covering characters [start_char, end_char),
    or None when the span is not wholly inside window ``w``'s part of the context."""
    part = windows.window_slice(w)
    starts, ends = windows.char_start[part], windows.char_end[part]
    context = np.flatnonzero(starts >= 0)  # window positions of context tokens, in order
    if len(context) == 0:
        return None
    c_starts, c_ends = starts[context], ends[context]
    if c_starts[0] > start_char or c_ends[-1] < end_char:
        return None
    # The first token ending after the answer's first character and the last one starting before its end: an
    # answer that starts or ends inside a word keeps the whole word, whitespace at either side adds no token.
    first = int(np.searchsorted(c_ends, start_char, side="right"))
    last = int(np.searchsorted(c_starts, end_char, side="left")) - 1
    if first >= len(context) or last < first:
        return None
    return int(context[first]), int(context[last])
