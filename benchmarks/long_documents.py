"""Long documents: truncation vs overlapping windows on IMDb reviews (many beyond 512 tokens), by k-fold
cross-validation with the same folds, model and hyperparameters.

    python benchmarks/long_documents.py [--folds 3] [--epochs 2] [--max-length 128] [--stride 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--aggregations", default="mean,max", help="window aggregations to compare")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from sklearn.model_selection import StratifiedKFold

    from bertkit import TextClassifier, load_data

    data = load_data(SHARED / "imdb" / "reviews500.csv")
    folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=13).split(data.texts, data.labels)
    modes: dict[str, dict] = {"truncate": {}}
    for how in args.aggregations.split(","):
        modes[f"windows, {how}"] = {"window_stride": args.stride, "window_aggregation": how}
    scores: dict[str, list[float]] = {m: [] for m in modes}
    seconds: dict[str, float] = dict.fromkeys(modes, 0.0)
    for fold, (train_index, test_index) in enumerate(folds, start=1):
        train, test = data.subset(np.sort(train_index)), data.subset(np.sort(test_index))
        for mode, extra in modes.items():
            started = time.perf_counter()
            clf = TextClassifier(epochs=args.epochs, max_length=args.max_length, progress=False, **extra)
            clf.fit(train)
            scores[mode].append(clf.evaluate(test).metrics["accuracy"])
            seconds[mode] += time.perf_counter() - started
            print(f"fold {fold} {mode}: accuracy {scores[mode][-1]:.3f}", flush=True)
    rows = [
        {"mode": mode, "folds": args.folds, "accuracy mean": statistics.mean(values),
         "accuracy std": statistics.pstdev(values), "per fold": " / ".join(f"{v:.3f}" for v in values),
         "train+eval s": seconds[mode]}
        for mode, values in scores.items()
    ]  # fmt: skip
    table = markdown_table(rows)
    print(table)
    if not args.no_write:
        longest = max(len(t.split()) for t in data.texts)
        append_results(
            "Long documents: truncation vs windows (IMDb reviews500, stratified k-fold)",
            table,
            f"all-MiniLM-L6-v2, {args.epochs} epochs, max_length {args.max_length}, window stride {args.stride}; "
            f"same folds for every mode (longest review: {longest} words).",
        )


if __name__ == "__main__":
    main()
