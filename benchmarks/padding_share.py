"""How much of a training batch is padding? The most a packed training forward could save.

    python benchmarks/padding_share.py

A packed forward runs the dense layers on real tokens only, so in training it can save at most the padding share
of the dense arithmetic. bertkit's training batches are shuffled, then sorted by length within groups of 50
batches (:func:`bertkit.data.encoding.training_batches`); this prints the padding share of one epoch's batches
that way and, for comparison, of plainly shuffled batches (what a loop without length grouping pads), on the
built-in model's tokenizer at max_length 128. No model runs: tokenization and counting only.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, markdown_table  # noqa: E402

DATA = [
    ("rotten_tomatoes train (8,530)", SHARED / "rotten_tomatoes" / "train.csv", None, 32),
    ("rotten_tomatoes, first 2,000", SHARED / "rotten_tomatoes" / "train.csv", 2000, 16),
    ("AG News train (5,000)", SHARED / "ag_news" / "train.csv", None, 32),
    ("MRPC train pairs (3,668)", SHARED / "glue" / "MRPC" / "train.tsv", None, 16),
]


def read_texts(path: Path) -> tuple[list[str], list[str] | None]:
    from bertkit import load_data

    data = load_data(path)
    return list(data.texts), (list(data.pairs) if data.pairs is not None else None)


def padding(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Padding's share of the padded grids of ``batches`` (rows of ``lengths``), each padded to its longest."""
    real = sum(int(lengths[b].sum()) for b in batches)
    grid = sum(int(lengths[b].max()) * len(b) for b in batches)
    return 1 - real / grid


def main() -> None:
    from bertkit.data.encoding import training_batches
    from bertkit.models.checkpoints import load_tokenizer, resolve_checkpoint

    tokenizer = load_tokenizer(resolve_checkpoint("minilm"))
    rows = []
    for name, path, limit, batch_size in DATA:
        texts, pairs = read_texts(path)
        if limit is not None:
            texts, pairs = texts[:limit], (pairs[:limit] if pairs is not None else None)
        encoded = tokenizer(texts, pairs, truncation=True, max_length=128)["input_ids"]
        lengths = np.asarray([len(ids) for ids in encoded])
        rng = np.random.default_rng(0)
        grouped = training_batches(lengths, batch_size, rng)
        shuffled = np.array_split(rng.permutation(len(lengths)), max(1, len(lengths) // batch_size))
        rows.append({
            "data": name, "batch": batch_size, "mean tokens": round(float(lengths.mean()), 1),
            "padding, bertkit's grouped batches": f"{padding(lengths, grouped):.1%}",
            "padding, shuffled batches": f"{padding(lengths, shuffled):.1%}",
        })  # fmt: skip
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
