"""Does teacher-labelled unlabeled text help a distilled student? With and without, over seeds.

    python benchmarks/distill_unlabeled.py --teacher TEACHER_DIR [--data rotten_tomatoes|mrpc] [--seeds 42 43 44]
        [--unlabeled-rows N]

The teacher is a bertkit classifier fine-tuned on rotten_tomatoes (train.csv). Each seed distils the default
student (``layers:3``: three of the teacher's layers and its mean-pooling layer) twice with bertkit's
:class:`~bertkit.Distiller`, validated on validation.csv: once on the 8,530 labelled training sentences alone,
once with unlabeled text added. The unlabeled text is GLUE SST-2's training file with its labels dropped: movie
review sentences and phrases from the same source as rotten_tomatoes, and so of the same domain. SST and
rotten_tomatoes share sentences, so every SST-2 text that occurs inside a rotten_tomatoes validation or test
sentence, or holds one, is removed first (compared as their lowercase letters and digits alone, on which the two
tokenisations of "couldn't" / "could n't" agree; a short phrase found inside any held-out sentence goes too, so
the unlabeled set leans to longer phrases): the student never sees a text of the splits it is judged on. The score is accuracy on rotten_tomatoes test (1,066 sentences), beside the teacher's.

``--data mrpc``: the teacher is a bertkit classifier trained on MRPC's train.tsv (validation: its held-out
share, which the students are given whatever their seed); the unlabeled pairs are GLUE STS-B's and RTE's training pairs
(news, captions, forums; sentence pairs of another task, labels dropped), less every pair with a sentence that
is also in MRPC's dev file. The score is F1 on MRPC dev (408 pairs). ``--swapped-pairs`` adds the student's MRPC
training pairs with their two sentences swapped to the unlabeled pairs: a paraphrase reads the same either way
round, so each is a new in-domain input for the teacher to label, at no cost in data.
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

NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def letters(text: str) -> str:
    """``text`` as its lowercase letters and digits alone: the two data sets' tokenisations ("couldn't" /
    "could n't", "century's" / "century 's", "cannot" / "can not") come out the same."""
    return NOT_ALNUM.sub("", str(text).lower())


def sst2_unlabeled(limit: int | None, seed: int = 0) -> tuple[list[str], dict[str, int]]:
    """SST-2's training texts without their labels, less every text that overlaps a rotten_tomatoes validation
    or test sentence (either inside the other); then at most ``limit`` of them (a seeded sample).
    Returns (texts, counts of what was read, removed and kept)."""
    sst = pd.read_csv(SHARED / "glue" / "SST-2" / "train.tsv", sep="\t", quoting=csv.QUOTE_NONE)
    held_out = pd.concat(
        [pd.read_csv(SHARED / "rotten_tomatoes" / f"{split}.csv")["text"] for split in ("validation", "test")]
    )
    held = [letters(text) for text in held_out]
    joined = "|".join(held)  # one string: "is this phrase inside any held-out sentence" is one search
    texts = sst["sentence"].astype(str).str.strip()
    texts = texts[texts.str.len() > 0].drop_duplicates()
    phrases = [letters(text) for text in texts]
    inside = [p == "" or p in joined for p in phrases]
    all_phrases = "|".join(phrases)
    holders = {h for h in held if h and h in all_phrases}  # held-out sentences that some SST text contains
    holds = [any(h in p for h in holders) for p in phrases]
    keep = [not (a or b) for a, b in zip(inside, holds, strict=True)]
    kept = texts[keep]
    counts = {"sst2_rows": len(sst), "distinct": len(texts), "removed_overlap": len(texts) - len(kept)}
    if limit is not None and limit < len(kept):
        kept = kept.sample(n=limit, random_state=seed)
    counts["kept"] = len(kept)
    return kept.tolist(), counts


def glue_pairs_unlabeled(limit: int | None, seed: int = 0) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """STS-B's and RTE's training pairs without labels, less every pair with a sentence of MRPC's dev file (compared
    as :func:`letters`); then at most ``limit`` of them. Returns (pairs, counts)."""
    glue = SHARED / "glue"
    dev = pd.read_csv(glue / "MRPC" / "dev.tsv", sep="\t", quoting=csv.QUOTE_NONE, encoding="utf-8-sig")
    held = {letters(text) for column in ("#1 String", "#2 String") for text in dev[column]}
    frames = [pd.read_csv(glue / name / "train.tsv", sep="\t", quoting=csv.QUOTE_NONE, on_bad_lines="skip")
              for name in ("STS-B", "RTE")]  # fmt: skip
    pairs = pd.concat([frame[["sentence1", "sentence2"]] for frame in frames], ignore_index=True).dropna()
    pairs = pairs.astype(str).drop_duplicates()
    overlap = [
        letters(a) in held or letters(b) in held for a, b in zip(pairs["sentence1"], pairs["sentence2"], strict=True)
    ]
    kept = pairs[[not o for o in overlap]]
    counts = {"pairs": len(pairs), "removed_overlap": int(sum(overlap))}
    if limit is not None and limit < len(kept):
        kept = kept.sample(n=limit, random_state=seed)
    counts["kept"] = len(kept)
    return list(zip(kept["sentence1"], kept["sentence2"], strict=True)), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="a bertkit classifier trained on --data")
    parser.add_argument("--data", choices=["rotten_tomatoes", "mrpc"], default="rotten_tomatoes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--unlabeled-rows", type=int, default=None, help="use at most this many unlabeled texts")
    parser.add_argument("--student", default="layers:3")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hidden-weight", type=float, default=0.0, help="Distiller's hidden_weight")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--augment", type=int, default=0, help="Distiller's augment (altered copies per text)")
    parser.add_argument("--arms", choices=["both", "labeled", "unlabeled"], default="both",
                        help="distil without unlabeled text, with it, or both (default)")  # fmt: skip
    parser.add_argument("--swapped-pairs", action="store_true",
                        help="mrpc: add the training pairs, sentences swapped, to the unlabeled pairs")  # fmt: skip
    parser.add_argument("--save", type=Path, default=None,
                        help="save the first seed's students (as bertkit distill does) under this folder")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="print the table; do not append to RESULTS.md")
    args = parser.parse_args()

    from bertkit import Distiller, TextClassifier, load_data

    if args.data == "rotten_tomatoes":
        folder = SHARED / "rotten_tomatoes"
        train, validation, test = (load_data(folder / f"{split}.csv") for split in ("train", "validation", "test"))
        unlabeled, counts = sst2_unlabeled(args.unlabeled_rows)
        metric, test_name = "accuracy", "test"
    else:
        folder = SHARED / "glue" / "MRPC"
        train, validation, test = load_data(folder / "train.tsv"), None, load_data(folder / "dev.tsv")
        unlabeled, counts = glue_pairs_unlabeled(args.unlabeled_rows)
        metric, test_name = "f1", "dev"
    print(f"unlabeled texts: {counts}", flush=True)
    teacher = TextClassifier.load(args.teacher)
    if validation is None:  # the teacher's own held-out rows, whatever the student's seed
        from bertkit.classification.inputs import hold_out, planned_rows

        _, n_validation = planned_rows(len(train), teacher.config_, held_out=True)
        train, validation = hold_out(train, teacher.task_, n_validation, teacher.config_.seed)
    if args.swapped_pairs:
        if train.pairs is None:
            parser.error("--swapped-pairs needs a pair task (--data mrpc)")
        # the student's training pairs only (not its validation rows), second sentence first
        unlabeled = [*unlabeled, *zip(train.pairs, train.texts, strict=True)]
        counts["swapped_training_pairs"] = len(train)
        print(f"with swapped training pairs: {counts}", flush=True)

    def score(model) -> float:
        return model.evaluate(test).metrics[metric]

    teacher_test = score(teacher)
    print(f"teacher {test_name} {metric} {teacher_test:.4f}", flush=True)

    rows = []
    for seed in args.seeds:
        for extra in {"both": (None, unlabeled), "labeled": (None,), "unlabeled": (unlabeled,)}[args.arms]:
            started = time.perf_counter()
            distiller = Distiller(
                args.student, epochs=args.epochs, seed=seed, max_drop=100.0, progress=False,
                hidden_weight=args.hidden_weight, temperature=args.temperature, alpha=args.alpha,
                augment=args.augment,
            )  # fmt: skip
            distiller.fit(teacher, train, unlabeled=extra, eval_set=validation, teacher_name=args.teacher)
            seconds = time.perf_counter() - started
            student_test = score(distiller.student_)
            if args.save is not None and seed == args.seeds[0]:  # as `bertkit distill` writes it, graphs included
                from bertkit.runs import choose_default_backend

                folder = distiller.save(args.save / f"student-{0 if extra is None else len(extra)}", overwrite=True)
                choose_default_backend(distiller.student_, folder, progress=False)
            rows.append({
                "seed": seed, "unlabeled rows": 0 if extra is None else len(extra),
                "teacher validation": distiller.teacher_score_, "student validation": distiller.student_score_,
                f"teacher {test_name} {metric}": teacher_test, f"student {test_name} {metric}": student_test,
                "drop (points)": round((teacher_test - student_test) * 100, 2), "distill s": round(seconds),
            })  # fmt: skip
            print(rows[-1], flush=True)

    summary = []
    for n in sorted({row["unlabeled rows"] for row in rows}):
        scores = [row[f"student {test_name} {metric}"] for row in rows if row["unlabeled rows"] == n]
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        summary.append({
            "unlabeled rows": n, "seeds": len(scores), f"student {test_name} {metric} mean": statistics.mean(scores),
            "std": spread, f"teacher {test_name} {metric}": teacher_test,
            "mean drop (points)": round((teacher_test - statistics.mean(scores)) * 100, 2),
        })  # fmt: skip
    table = markdown_table(rows) + "\n\n" + markdown_table(summary)
    print(table)
    if not args.no_write:
        source = (
            "GLUE SST-2 train.tsv without labels, texts overlapping a rotten_tomatoes validation or test "
            "sentence removed"
            if args.data == "rotten_tomatoes"
            else "GLUE STS-B and RTE training pairs without labels, pairs sharing a sentence with MRPC dev removed"
            + ("; the MRPC training pairs, sentences swapped" if args.swapped_pairs else "")
        )
        notes = (f"Unlabeled text: {source} ({counts}). Student {args.student}, {args.epochs} epochs, temperature "
                 f"{args.temperature:g}, alpha {args.alpha:g}, hidden weight {args.hidden_weight:g}, augment {args.augment}, other options "
                 f"bertkit distill's defaults; {metric} on {args.data} {test_name}. Command: "
                 f"python benchmarks/distill_unlabeled.py {' '.join(sys.argv[1:])}")  # fmt: skip
        append_results(f"Distillation with and without teacher-labelled unlabeled text ({args.data})", table, notes)


if __name__ == "__main__":
    main()
