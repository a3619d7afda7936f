"""Does teacher-labelled unlabeled text help a distilled student? rotten_tomatoes, with and without, over seeds.

    python benchmarks/distill_unlabeled.py --teacher TEACHER_DIR [--seeds 42 43 44] [--unlabeled-rows N]

The teacher is a bertkit classifier fine-tuned on rotten_tomatoes (train.csv). Each seed distils the default
student (``layers:3``: three of the teacher's layers and its mean-pooling layer) twice with bertkit's
:class:`~bertkit.Distiller`, validated on validation.csv: once on the 8,530 labelled training sentences alone,
once with unlabeled text added. The unlabeled text is GLUE SST-2's training file with its labels dropped: movie
review sentences and phrases from the same source as rotten_tomatoes, and so of the same domain. SST and
rotten_tomatoes share sentences, so every SST-2 text that occurs inside a rotten_tomatoes validation or test
sentence, or holds one, is removed first (compared as lowercase runs of letters and digits, which the two
tokenisations of "century's" / "century 's" agree on): the student never sees a text of the splits it is judged
on. The score is accuracy on rotten_tomatoes test (1,066 sentences), beside the teacher's.
"""

from __future__ import annotations

import argparse
import csv
import re
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402

WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> str:
    """``text`` as its lowercase runs of letters and digits, space-separated and padded with a space each side
    (so that a substring test matches whole words only)."""
    return " " + " ".join(WORD.findall(str(text).lower())) + " "


def sst2_unlabeled(limit: int | None, seed: int = 0) -> tuple[list[str], dict[str, int]]:
    """SST-2's training texts without their labels, less every text that overlaps a rotten_tomatoes validation
    or test sentence (either inside the other); then at most ``limit`` of them (a seeded sample).
    Returns (texts, counts of what was read, removed and kept)."""
    sst = pd.read_csv(SHARED / "glue" / "SST-2" / "train.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    held_out = pd.concat(
        [pd.read_csv(SHARED / "rotten_tomatoes" / f"{split}.csv")["text"] for split in ("validation", "test")]
    )
    held_words = [words(text) for text in held_out]
    joined = "|".join(held_words)  # one string: "is this phrase inside any held-out sentence" is one search
    texts = sst["sentence"].astype(str).str.strip()
    texts = texts[texts.str.len() > 0].drop_duplicates()
    phrase_words = [words(text) for text in texts]
    inside = [w.strip() != "" and w in joined for w in phrase_words]
    all_phrases = "|".join(phrase_words)
    holders = {w for w in held_words if w in all_phrases}  # held-out sentences that some SST text contains
    holds = [any(h in w for h in holders) if holders else False for w in phrase_words]
    keep = [not (a or b) for a, b in zip(inside, holds, strict=True)]
    kept = texts[keep]
    counts = {"sst2_rows": len(sst), "distinct": len(texts), "removed_overlap": len(texts) - len(kept)}
    if limit is not None and limit < len(kept):
        kept = kept.sample(n=limit, random_state=seed)
    counts["kept"] = len(kept)
    return kept.tolist(), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="a bertkit classifier folder trained on rotten_tomatoes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--unlabeled-rows", type=int, default=None, help="use at most this many SST-2 texts")
    parser.add_argument("--student", default="layers:3")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table; do not append to RESULTS.md")
    args = parser.parse_args()

    from bertkit import Distiller, TextClassifier, load_data

    folder = SHARED / "rotten_tomatoes"
    train, validation, test = (load_data(folder / f"{split}.csv") for split in ("train", "validation", "test"))
    unlabeled, counts = sst2_unlabeled(args.unlabeled_rows)
    print(f"unlabeled SST-2 texts: {counts}", flush=True)
    teacher = TextClassifier.load(args.teacher)
    teacher_test = teacher.score(test.texts, test.labels)
    print(f"teacher test accuracy {teacher_test:.4f}", flush=True)

    rows = []
    for seed in args.seeds:
        for extra in (None, unlabeled):
            started = time.perf_counter()
            distiller = Distiller(args.student, epochs=args.epochs, seed=seed, max_drop=100.0, progress=False)
            distiller.fit(teacher, train.texts, train.labels, unlabeled=extra, eval_set=validation,
                          teacher_name=args.teacher)  # fmt: skip
            seconds = time.perf_counter() - started
            student_test = distiller.student_.score(test.texts, test.labels)
            rows.append({
                "seed": seed, "unlabeled rows": 0 if extra is None else len(extra),
                "teacher validation": distiller.teacher_score_, "student validation": distiller.student_score_,
                "teacher test": teacher_test, "student test": student_test,
                "drop on test (points)": round((teacher_test - student_test) * 100, 2), "distill s": round(seconds),
            })  # fmt: skip
            print(rows[-1], flush=True)

    summary = []
    for n in sorted({row["unlabeled rows"] for row in rows}):
        scores = [row["student test"] for row in rows if row["unlabeled rows"] == n]
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        summary.append({
            "unlabeled rows": n, "seeds": len(scores), "student test mean": statistics.mean(scores),
            "std": spread, "teacher test": teacher_test,
            "mean drop (points)": round((teacher_test - statistics.mean(scores)) * 100, 2),
        })  # fmt: skip
    table = markdown_table(rows) + "\n\n" + markdown_table(summary)
    print(table)
    if not args.no_write:
        notes = (f"Unlabeled text: GLUE SST-2 train.tsv without labels, {counts['removed_overlap']} of its "
                 f"{counts['distinct']} distinct texts removed for overlapping a rotten_tomatoes validation or test "
                 f"sentence, {counts['kept']} used. Student {args.student}, {args.epochs} epochs, other options "
                 "bertkit distill's defaults; accuracy on rotten_tomatoes test.")  # fmt: skip
        append_results("Distillation with and without teacher-labelled unlabeled text (rotten_tomatoes)", table, notes)


if __name__ == "__main__":
    main()
