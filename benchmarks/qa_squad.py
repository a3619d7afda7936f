"""Extractive QA on XQuAD-en (SQuAD v1.1 format, 36 articles): fine-tuned model vs trivial baselines.

The articles are split by a seeded shuffle (whole articles on one side: no context is seen in training and
evaluation); the fine-tuned model picks its best epoch on articles held out of the training side. Every
row is scored with the same official SQuAD EM/F1 on the same evaluation articles.

    python benchmarks/qa_squad.py [--eval-articles 8] [--epochs 3] [--max-length 256] [--doc-stride 128]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = SHARED / "squad" / "xquad_en_36articles.json"


def first_sentence(context: str) -> str:
    """Everything up to the first sentence end (., ! or ? followed by a space)."""
    match = re.search(r"[.!?](\s|$)", context)
    return context[: match.start() + 1] if match else context


# fmt: off
STOPWORDS = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "is", "was", "were",
    "are", "be", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "did", "does", "do", "that",
    "this", "it", "its", "as",
})
# fmt: on


def sentences(context: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", context) if s]


def best_overlap_sentence(question: str, context: str) -> str:
    """The sentence sharing the most non-stopword words with the question (first one on ties)."""
    words = {w for w in re.findall(r"\w+", question.lower()) if w not in STOPWORDS}
    return max(sentences(context), key=lambda s: len(words & set(re.findall(r"\w+", s.lower()))))


def first_words(context: str, k: int) -> str:
    return " ".join(context.split()[:k])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-articles", type=int, default=8)
    parser.add_argument("--seed", type=int, default=13, help="seed of the article split")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--doc-stride", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--max-train-questions", type=int, default=None)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from bertkit import QuestionAnswerer, read_squad
    from bertkit.qa.metrics import squad_metrics

    data = read_squad(DATA)
    titles = data.titles
    order = np.random.default_rng(args.seed).permutation(len(titles))
    eval_titles = [titles[i] for i in order[: args.eval_articles]]
    train, test = data.subset(t for t in titles if t not in eval_titles), data.subset(eval_titles)
    golds = [[a.text for a in r.answers] for r in test.records]
    print(f"train: {len(train)} questions / {len(train.titles)} articles; "
          f"eval: {len(test)} questions / {len(test.titles)} articles", flush=True)  # fmt: skip

    rows = []

    def add(name: str, answers: list[str], seconds: float | None = None) -> None:
        metrics = squad_metrics(answers, golds)
        rows.append({"system": name, "exact_match": metrics["exact_match"], "f1": metrics["f1"],
                     "seconds": "-" if seconds is None else round(seconds, 1)})  # fmt: skip
        print(rows[-1], flush=True)

    add("baseline: first sentence of the context", [first_sentence(r.context) for r in test.records])
    add("baseline: sentence sharing most words with the question",
        [best_overlap_sentence(r.question, r.context) for r in test.records])  # fmt: skip
    mean_words = round(np.mean([len(a.text.split()) for r in train.records for a in r.answers]))
    add(f"baseline: first {mean_words} words (mean train answer length)",
        [first_words(r.context, mean_words) for r in test.records])  # fmt: skip

    settings = dict(max_length=args.max_length, doc_stride=args.doc_stride, progress=False)
    started = time.perf_counter()
    qa = QuestionAnswerer(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        max_train_questions=args.max_train_questions, seed=42, **settings,
    )  # fmt: skip
    qa.fit(train)
    train_seconds = time.perf_counter() - started
    for record in qa.history_:
        print(
            {
                k: v
                for k, v in record.items()
                if k in ("epoch", "train_loss", "val_exact_match", "val_f1", "train_seconds", "train_samples_per_s")
            },
            flush=True,
        )
    started = time.perf_counter()
    predicted = [p["answer"] for p in qa.predict_records(test)]
    add(f"minilm fine-tuned ({args.epochs} epochs, best {qa.best_epoch_})", predicted, time.perf_counter() - started)
    table = markdown_table(rows)
    print(table)
    if not args.no_write:
        append_results(
            "Extractive QA: XQuAD-en (SQuAD v1.1 format), split by article",
            table,
            f"Data: {DATA.name}, 36 articles / {len(data)} questions; seeded article split (seed {args.seed}): "
            f"train {len(train.titles)} articles / {len(train)} questions (of which "
            f"{len(qa.validation_articles_)} articles held out for best-epoch selection), evaluation "
            f"{len(test.titles)} articles / {len(test)} questions never seen in training. all-MiniLM-L6-v2 "
            f"(a sentence-embedding model, not QA-tuned) with a new span head, {args.epochs} epochs, "
            f"max_length {args.max_length}, doc stride {args.doc_stride}, batch {qa.config_.batch_size}, "
            f"lr {qa.config_.learning_rate:g}, {qa.n_train_windows_} training windows; fit {train_seconds:.0f} s "
            "(incl. per-epoch validation); the seconds column is prediction time on the evaluation articles. "
            "Machine shared with other jobs, 1 thread. Scores: official SQuAD v1.1 EM/F1 (max over gold answers).",
        )


if __name__ == "__main__":
    main()
