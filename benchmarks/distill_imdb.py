"""IMDb long reviews: how far below its teacher does a distilled student land? A paired k-fold comparison.

    python benchmarks/distill_imdb.py [--folds 5] [--seed 42] [--student layers:3] [--augment N]
        [--unlabeled rotten_tomatoes] [--no-write]

The shared IMDb file holds 500 reviews, too few for a teacher / student / test split of its own, so every review
is tested once: for each stratified fold, the teacher is bertkit's default recipe (``TextClassifier`` with its
defaults and ``--seed``; most reviews exceed max_length 128, so it trains and predicts on windows by itself) fitted
on the other folds, and the student is :class:`~bertkit.Distiller`'s default (``layers:3``, three of the teacher's
layers and its mean-pooling layer) cut from that teacher and distilled on the same rows (their windows, as the
teacher reads them), validated on the same held-out share as its teacher. Both predict the held-out fold. The
table gives each fold's accuracies and the pooled ones over all 500 reviews; the difference is paired (same
reviews, same folds), with a bootstrap 95% interval over reviews. ``--unlabeled rotten_tomatoes``: the 8,530
rotten_tomatoes training sentences, labels dropped, as unlabeled movie-review text for the teacher to label.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402


def paired_interval(teacher_right: np.ndarray, student_right: np.ndarray, draws: int = 4000) -> tuple[float, float]:
    """A bootstrap 95% interval (percentile) of the accuracy difference, in points, resampling reviews."""
    rng = np.random.default_rng(0)
    difference = teacher_right.astype(np.float64) - student_right.astype(np.float64)  # [reviews]
    picks = rng.integers(0, len(difference), size=(draws, len(difference)))
    means = difference[picks].mean(axis=1) * 100
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--student", default="layers:3")
    parser.add_argument("--augment", type=int, default=0, help="Distiller's augment (altered copies per text)")
    parser.add_argument("--hidden-weight", type=float, default=0.0, help="Distiller's hidden_weight")
    parser.add_argument("--unlabeled", choices=["none", "rotten_tomatoes"], default="none")
    parser.add_argument("--only-folds", type=int, nargs="+", default=None, help="run these folds (1-based) only")
    parser.add_argument("--no-write", action="store_true", help="print the table; do not append to RESULTS.md")
    args = parser.parse_args()

    from bertkit import Distiller, TextClassifier, TrainConfig
    from bertkit.data.dataset import from_lists

    reviews = pd.read_csv(SHARED / "imdb" / "reviews500.csv")
    texts, labels = reviews["text"].astype(str).tolist(), reviews["label"].astype(str).tolist()
    unlabeled = None
    if args.unlabeled == "rotten_tomatoes":
        unlabeled = pd.read_csv(SHARED / "rotten_tomatoes" / "train.csv")["text"].astype(str).tolist()
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed).split(texts, labels)
    teacher_right = np.zeros(len(texts), dtype=bool)
    student_right = np.zeros(len(texts), dtype=bool)
    tested = np.zeros(len(texts), dtype=bool)
    rows = []
    for k, (train_rows, test_rows) in enumerate(folds, 1):
        if args.only_folds and k not in args.only_folds:
            continue
        train = from_lists([texts[i] for i in train_rows], [labels[i] for i in train_rows], name=f"fold-{k}-train")
        test_texts, truth = [texts[i] for i in test_rows], np.asarray([labels[i] for i in test_rows])
        started = time.perf_counter()
        teacher = TextClassifier.from_config(TrainConfig(seed=args.seed), progress=False).fit(train)
        teacher_seconds = time.perf_counter() - started
        started = time.perf_counter()
        distiller = Distiller(args.student, seed=args.seed, max_drop=100.0, progress=False, augment=args.augment,
                              hidden_weight=args.hidden_weight)  # fmt: skip
        # the student validates on its teacher's held-out rows (fit kept them as validation_data_)
        distiller.fit(teacher, train, eval_set=teacher.validation_data_, unlabeled=unlabeled, teacher_name="fold")
        student_seconds = time.perf_counter() - started
        teacher_right[test_rows] = np.asarray(teacher.predict(test_texts)) == truth
        student_right[test_rows] = np.asarray(distiller.student_.predict(test_texts)) == truth
        tested[test_rows] = True
        rows.append({
            "fold": k, "train rows": len(train_rows), "test reviews": len(test_rows),
            "windows": bool(teacher.config_.window_stride),
            "teacher accuracy": round(float(teacher_right[test_rows].mean()), 4),
            "student accuracy": round(float(student_right[test_rows].mean()), 4),
            "drop (points)": round(float(teacher_right[test_rows].mean() - student_right[test_rows].mean()) * 100, 2),
            "teacher s": round(teacher_seconds), "student s": round(student_seconds),
        })  # fmt: skip
        print(rows[-1], flush=True)

    teacher_accuracy, student_accuracy = teacher_right[tested].mean(), student_right[tested].mean()
    low, high = paired_interval(teacher_right[tested], student_right[tested])
    summary = [{
        "reviews": int(tested.sum()), "folds": len(rows), "teacher accuracy": round(float(teacher_accuracy), 4),
        "student accuracy": round(float(student_accuracy), 4),
        "drop (points)": round(float(teacher_accuracy - student_accuracy) * 100, 2),
        "drop 95% interval": f"{low:.2f} to {high:.2f}",
        "fold drop std": round(statistics.stdev([r["drop (points)"] for r in rows]), 2) if len(rows) > 1 else 0.0,
    }]  # fmt: skip
    table = markdown_table(rows) + "\n\n" + markdown_table(summary)
    print(table)
    if not args.no_write:
        notes = (f"IMDb reviews500, stratified {args.folds}-fold (seed {args.seed}); teacher: TextClassifier "
                 f"defaults; student {args.student}, augment {args.augment}, hidden weight {args.hidden_weight:g}, "
                 f"unlabeled {args.unlabeled}; both tested on each held-out fold. Command: "
                 f"python benchmarks/distill_imdb.py {' '.join(sys.argv[1:])}")  # fmt: skip
        append_results("Distillation on IMDb long reviews (paired k-fold)", table, notes)


if __name__ == "__main__":
    main()
