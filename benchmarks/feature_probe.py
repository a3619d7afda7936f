"""Embeddings real run: TextEmbedder features of all-MiniLM-L6-v2 ([CLS], pooler, masked mean) on
rotten_tomatoes train -> logistic regression -> test accuracy, with embedding throughput.

    python benchmarks/feature_probe.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    from bertkit import TextEmbedder, load_data

    train = load_data(SHARED / "rotten_tomatoes" / "train.csv")
    test = load_data(SHARED / "rotten_tomatoes" / "test.csv")
    rows = []
    for pooling in ("cls", "pooler", "mean"):
        embedder = TextEmbedder("minilm", pooling=pooling, max_length=128).fit()
        started = time.perf_counter()
        train_x = embedder.transform(train.texts)
        seconds = time.perf_counter() - started
        test_x = embedder.transform(test.texts)
        probe = LogisticRegression(max_iter=2000).fit(train_x, train.labels)
        rows.append({"pooling": pooling, "texts/s": len(train.texts) / seconds,
                     "probe test accuracy": probe.score(test_x, test.labels)})  # fmt: skip
        print(rows[-1], flush=True)
    table = markdown_table(rows)
    print(table)
    if "--no-write" not in sys.argv:
        append_results("Embeddings: frozen all-MiniLM-L6-v2 features + logistic regression (rotten_tomatoes)", table,
                       "Train 8,530 texts -> test 1,066; texts/s is TextEmbedder.transform on the train split.")  # fmt: skip


if __name__ == "__main__":
    main()
