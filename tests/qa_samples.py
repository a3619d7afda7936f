"""Synthetic SQuAD data from the tiny vocabulary: each context hides one sentiment word among neutral words.

"what is good ?" is answered by the context's positive word (sometimes with "very" before it); with
``impossible_share`` some questions are "what is bad ?" about a context without a negative word (SQuAD v2).
A tiny random BERT learns the task in a few epochs.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from conftest import NEGATIVE, NEUTRAL, POSITIVE


def make_context(rng: random.Random, answer: str | None, n_words: int) -> tuple[str, int]:
    """Neutral words with ``answer`` inserted at a random place, some commas, a final full stop; returns the
    context and the answer's character offset (-1 without an answer)."""
    words = rng.choices(NEUTRAL, k=n_words)
    at = rng.randint(0, n_words)
    pieces = words[:at] + ([answer] if answer else []) + words[at:]
    text, start = "", -1
    for i, piece in enumerate(pieces):
        if i:
            text += ", " if rng.random() < 0.15 else " "
        if answer and i == at:
            start = len(text)
        text += piece
    return text + ".", start


def make_squad(
    n: int, *, seed: int = 0, impossible_share: float = 0.0, n_words: tuple[int, int] = (6, 14), per_article: int = 4
) -> dict[str, Any]:
    """A SQuAD object with ``n`` questions, ``per_article`` per article (titles "article 0", ...)."""
    rng = random.Random(seed)
    articles: list[dict[str, Any]] = []
    for i in range(n):
        if i % per_article == 0:
            articles.append({"title": f"article {len(articles)}", "paragraphs": []})
        impossible = rng.random() < impossible_share
        if impossible:
            context, _ = make_context(rng, rng.choice(POSITIVE), rng.randint(*n_words))
            qa = {"id": f"q{i}", "question": "what is bad ?", "answers": [], "is_impossible": True}
        elif impossible_share and rng.random() < 0.5:
            answer = rng.choice(NEGATIVE)
            context, start = make_context(rng, answer, rng.randint(*n_words))
            qa = {"id": f"q{i}", "question": "what is bad ?", "answers": [{"text": answer, "answer_start": start}]}
        else:
            answer = ("very " if rng.random() < 0.3 else "") + rng.choice(POSITIVE)
            context, start = make_context(rng, answer, rng.randint(*n_words))
            qa = {"id": f"q{i}", "question": "what is good ?", "answers": [{"text": answer, "answer_start": start}]}
        articles[-1]["paragraphs"].append({"context": context, "qas": [qa]})
    return {"version": "v2.0" if impossible_share else "1.1", "data": articles}


def write_squad(path: Path, squad: dict[str, Any]) -> Path:
    path.write_text(json.dumps(squad), encoding="utf-8")
    return path
