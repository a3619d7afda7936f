"""Start/end logits of token windows -> answer spans in the original context (n-best, max answer length,
no-answer score). Pure numpy; one window at a time, all candidate spans of a window at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bertkit.qa.squad import QARecord
from bertkit.qa.windows import QAWindows


@dataclass
class Candidate:
    text: str
    start: int
    """Character offsets in the context: ``context[start:end] == text``."""
    end: int
    logit: float
    """Start logit + end logit: ranks candidates (and is compared with the no-answer logit)."""
    score: float
    """Probability of this span in its window: softmax(start)[i] * softmax(end)[j], over context + CLS."""


@dataclass
class Decoded:
    candidates: list[Candidate] = field(default_factory=list)
    """Best spans first, at most n_best, no two with the same character span."""
    null_logit: float = float("inf")
    """Lowest CLS start+end logit over the question's windows (the "no answer" score)."""
    null_score: float = 0.0
    """Probability of "no answer" (CLS as start and end) in the window of ``null_logit``."""

    @property
    def null_margin(self) -> float:
        """No-answer logit minus the best span's: above the null threshold, the answer is ""."""
        if not self.candidates:
            return float("inf")
        return self.null_logit - self.candidates[0].logit


def decode_spans(
    windows: QAWindows,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    records: Sequence[QARecord],
    *,
    n_best: int = 20,
    max_answer_length: int = 30,
) -> list[Decoded]:
    """The ``n_best`` highest-scoring spans of each question over all of its windows.

    ``start_logits``/``end_logits`` are flat, aligned with ``windows.encoded.ids`` [total tokens]. A span is
    a pair of context tokens i <= j with j - i < ``max_answer_length``.
    """
    found: list[dict[tuple[int, int], Candidate]] = [{} for _ in records]
    nulls = np.full(len(records), np.inf)
    null_scores = np.zeros(len(records))
    for w, r in enumerate(windows.encoded.doc_index):
        r = int(r)
        part = windows.window_slice(w)
        starts, ends = windows.char_start[part], windows.char_end[part]
        context = np.flatnonzero(starts >= 0)  # window positions of context tokens
        window_start, window_end = start_logits[part], end_logits[part]  # [window tokens]
        cls = int(windows.cls_index[w])
        s, e = window_start[context], window_end[context]  # [context tokens]
        p_start = _softmax(np.append(s, window_start[cls]))  # [context tokens + 1]: CLS last
        p_end = _softmax(np.append(e, window_end[cls]))
        null = float(window_start[cls] + window_end[cls])
        if null < nulls[r]:
            nulls[r], null_scores[r] = null, float(p_start[-1] * p_end[-1])
        if len(context) == 0:
            continue
        for i, j, logit in _top_spans(s, e, n_best, max_answer_length):
            span = (int(starts[context[i]]), int(ends[context[j]]))
            best = found[r].get(span)
            if best is None or logit > best.logit:
                text = records[r].context[span[0] : span[1]]
                found[r][span] = Candidate(text, span[0], span[1], logit, float(p_start[i] * p_end[j]))
    out = []
    for r, spans in enumerate(found):
        ranked = sorted(spans.values(), key=lambda c: -c.logit)[:n_best]
        out.append(Decoded(ranked, float(nulls[r]), float(null_scores[r])))
    return out


def _top_spans(s: np.ndarray, e: np.ndarray, k: int, max_answer_length: int) -> list[tuple[int, int, float]]:
    """The k best (i, j, s[i] + e[j]) with i <= j < i + max_answer_length, best first."""
    n = len(s)
    scores = s[:, None] + e[None, :]  # [n, n]: start i, end j
    offset = np.arange(n)[None, :] - np.arange(n)[:, None]  # j - i
    scores = np.where((offset >= 0) & (offset < max_answer_length), scores, -np.inf)
    flat = scores.ravel()
    k = min(k, int(np.isfinite(flat).sum()))
    if k == 0:
        return []
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top], kind="stable")]
    return [(int(t // n), int(t % n), float(flat[t])) for t in top]


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def choose_answers(decoded: Sequence[Decoded], null_threshold: float | None) -> list[Candidate | None]:
    """The best span of each question, or None (no answer) when ``null_threshold`` is set and the question's
    null margin exceeds it (or no span was possible)."""
    out: list[Candidate | None] = []
    for d in decoded:
        if not d.candidates or (null_threshold is not None and d.null_margin > null_threshold):
            out.append(None)
        else:
            out.append(d.candidates[0])
    return out
