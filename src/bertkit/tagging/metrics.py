"""Entity-level scores of BIO tag sequences, as the CoNLL shared tasks' ``conlleval`` script defines them.

An entity counts as found only when a predicted span has exactly the gold start, end and type. Spans are
read the way conlleval reads them: ``I-X`` after ``O`` or after another type starts a new entity (so IOB1
and malformed BIO are read consistently), and ``B-X`` always starts one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any


def bio_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities of one sentence as ``(type, first word, last word + 1)``.

    >>> bio_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"])
    [('PER', 0, 2), ('LOC', 3, 4), ('LOC', 4, 5), ('ORG', 5, 6)]
    """
    spans: list[tuple[str, int, int]] = []
    kind: str | None = None
    start = 0
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        continues = prefix == "I" and kind == label
        if kind is not None and not continues:
            spans.append((kind, start, i))
            kind = None
        if prefix in ("B", "I") and not continues:
            kind, start = label, i
    if kind is not None:
        spans.append((kind, start, len(tags)))
    return spans


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Micro-averaged entity ``precision``, ``recall`` and ``f1`` (0-1) over all sentences, plus word
    ``accuracy``, entity counts and the same scores per entity type (``per_type``)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    found, true, correct = Counter(), Counter(), Counter()
    words = right = 0
    for gold_tags, pred_tags in zip(gold, predicted, strict=True):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(f"a sentence has {len(gold_tags)} gold tags but {len(pred_tags)} predicted")
        gold_spans, pred_spans = set(bio_spans(gold_tags)), set(bio_spans(pred_tags))
        true.update(s[0] for s in gold_spans)
        found.update(s[0] for s in pred_spans)
        correct.update(s[0] for s in gold_spans & pred_spans)
        words += len(gold_tags)
        right += sum(g == p for g, p in zip(gold_tags, pred_tags, strict=True))
    scores = _prf(sum(correct.values()), sum(found.values()), sum(true.values()))
    per_type = {
        kind: {**_prf(correct[kind], found[kind], true[kind]), "support": true[kind]}
        for kind in sorted(set(true) | set(found))
    }
    return {
        **scores,
        "accuracy": right / words if words else 0.0,
        "n_gold_entities": sum(true.values()),
        "n_predicted_entities": sum(found.values()),
        "per_type": per_type,
    }


def unknown_types(per_type: dict[str, dict[str, Any]], labels: Sequence[str]) -> dict[str, int]:
    """Gold entities per type (of ``per_type``, as :func:`entity_scores` gives it) that ``labels``, the model's
    tags, have no ``B-``/``I-`` tag for: the model can never predict them, so they count as missed."""
    known = {label[2:] for label in labels if label != "O"}
    return {kind: row["support"] for kind, row in per_type.items() if kind not in known and row["support"]}


def unknown_types_warning(source: str, unknown: dict[str, int]) -> str:
    """The warning line for :func:`unknown_types` of the data ``source``."""
    counts = ", ".join(f"{kind} ({n} {'entity' if n == 1 else 'entities'})" for kind, n in unknown.items())
    return f"{source}: entity types the model does not know: {counts}; they count as missed"


def _prf(correct: int, found: int, true: int) -> dict[str, float]:
    precision = correct / found if found else 0.0
    recall = correct / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
