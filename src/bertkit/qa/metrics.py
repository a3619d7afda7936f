"""The official SQuAD exact match and F1 (the v1.1 and v2.0 evaluation scripts' definitions).

Answers are normalised (lower case, punctuation and the articles a/an/the removed, whitespace collapsed);
each question scores the maximum over its gold answers; an unanswerable question's gold answer is "" so
predicting no answer scores 1 and anything else 0. Totals are percentages (0-100).
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (official ``normalize_answer``)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str) -> float:
    """Token-overlap F1 of normalised answers; when either is empty (no answer), 1 if both are, else 0."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def per_question_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Exact match and F1 of each question (0/1 and 0..1), each the maximum over its gold answers;
    a question with no gold answers (unanswerable) has the gold answer ""."""
    em = np.empty(len(predictions))
    f1 = np.empty(len(predictions))
    for i, (prediction, gold) in enumerate(zip(predictions, golds, strict=True)):
        answers = [g for g in gold if normalize_answer(g)] or [""]
        em[i] = max(exact_match(prediction, g) for g in answers)
        f1[i] = max(f1_score(prediction, g) for g in answers)
    return em, f1


def squad_metrics(
    predictions: Sequence[str], golds: Sequence[Sequence[str]], answerable: Sequence[bool] | None = None
) -> dict[str, float]:
    """``exact_match`` and ``f1`` in percent over all questions, plus ``HasAns_*``/``NoAns_*`` splits when
    some questions are unanswerable (as the v2.0 script reports them)."""
    em, f1 = per_question_scores(predictions, golds)
    out = {"exact_match": 100.0 * float(em.mean()), "f1": 100.0 * float(f1.mean()), "total": len(em)}
    if answerable is not None and not all(answerable):
        mask = np.asarray(answerable, dtype=bool)
        for name, part in (("HasAns", mask), ("NoAns", ~mask)):
            if part.any():
                out[f"{name}_exact"] = 100.0 * float(em[part].mean())
                out[f"{name}_f1"] = 100.0 * float(f1[part].mean())
                out[f"{name}_total"] = int(part.sum())
    return out


def best_null_threshold(null_margin: np.ndarray, best_f1: np.ndarray, answerable: np.ndarray) -> tuple[float, float]:
    """The threshold on ``null_margin`` (no-answer score minus best span score) that maximises F1 when every
    question with a margin above it is answered with "" (the v2.0 script's ``find_best_thresh``).

    ``best_f1``: F1 of each question's best non-null span (0..1). Returns (threshold, F1 in percent).
    """
    order = np.argsort(null_margin, kind="stable")
    margins = null_margin[order]
    gain_if_answered = np.where(answerable[order], best_f1[order], -1.0)  # vs predicting "": +f1 or -1 (was right)
    base = float((~answerable).sum())  # everything predicted "" (threshold below every margin)
    # Answering the questions with the k lowest margins: score = base + cumsum of gains.
    totals = base + np.concatenate([[0.0], np.cumsum(gain_if_answered)])
    k = int(np.argmax(totals))
    if k == 0:
        threshold = float(margins[0]) - 1.0
    elif k == len(margins):
        threshold = float(margins[-1]) + 1.0
    else:
        threshold = float((margins[k - 1] + margins[k]) / 2)
    return threshold, 100.0 * float(totals[k]) / max(len(margins), 1)
