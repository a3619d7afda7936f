"""Memory and time as data grows: peak RSS of `bertkit predict` at 10k / 100k / 1M rows, and how prediction
and training time grow with rows and with max_length.

    python benchmarks/scaling.py [--model DIR] [--rows 10000,100000,1000000] [--model-rows 10000]

Each measurement is a separate `python -m bertkit ...` process; its peak RSS is the child's ru_maxrss
(os.wait4), so nothing else in this script is counted. Input files are written to a temporary folder by
sampling rotten_tomatoes train sentences with replacement (never into the repository).

Two models: ``--model`` (a bertkit folder, default: a rotten_tomatoes MiniLM model trained on the fly, as in
predict_speed.py) for the realistic sizes, and a small random BERT (MiniLM's vocabulary, 2 layers x 128) for
the 1M-row memory check, where MiniLM would take most of an hour on 2 cores. Streaming memory does not depend
on the model beyond its weights: the point is that RSS stays flat as rows grow 100x.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402
from predict_speed import ensure_model  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_measured(args: list[str]) -> tuple[float, float]:
    """Run ``python -m bertkit ARGS``; return (wall seconds, peak RSS in MiB) of that process alone."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bertkit", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bertkit {' '.join(args)} failed:\n{stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def write_rows(path: Path, rows: int, seed: int = 0) -> Path:
    import pandas as pd

    source = pd.read_csv(SHARED / "rotten_tomatoes" / "train.csv")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(source), size=rows)
    pd.DataFrame({"text": source["text"].to_numpy()[pick]}).to_csv(path, index=False)
    return path


def small_random_model(folder: Path, like: Path) -> Path:
    """A 2-layer, 128-wide random BERT classifier with ``like``'s tokenizer (memory check only)."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(like)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=512, num_labels=2, id2label={0: "negative", 1: "positive"},
                        label2id={"negative": 0, "positive": 1})  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("/tmp/bertkit-bench-model"))
    parser.add_argument("--rows", default="10000,100000,1000000", help="row counts for the small-model RSS check")
    parser.add_argument("--model-rows", default="10000", help="row counts predicted with --model")
    parser.add_argument("--lengths", default="64,128,256,512", help="max_length values (imdb reviews)")
    parser.add_argument("--train-rows", default="250,500,1000", help="training rows (1 epoch, --model's base)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    folder = ensure_model(args.model)
    work = Path(tempfile.mkdtemp(prefix="bertkit-scaling-"))
    small = small_random_model(work / "small-model", folder)
    sections = []

    rows_table = []
    for model_name, model_dir, counts in (("small random BERT (2x128)", small, args.rows),
                                          ("MiniLM-L6 (rotten_tomatoes model)", folder, args.model_rows)):  # fmt: skip
        for rows in (int(r) for r in counts.split(",") if r):
            data = write_rows(work / f"rows-{rows}.csv", rows)
            seconds, rss = run_measured(["predict", str(model_dir), "--data", str(data),
                                         "--output", str(work / "out.csv")])  # fmt: skip
            rows_table.append({"model": model_name, "rows": rows, "input MiB": data.stat().st_size / 2**20,
                               "wall s": seconds, "rows/s": rows / seconds, "peak RSS MiB": rss})  # fmt: skip
            print(rows_table[-1], flush=True)
    sections.append(("Prediction memory as rows grow (`bertkit predict --data --output`, streamed 50k rows a chunk)",
                     markdown_table(rows_table)))  # fmt: skip

    imdb = SHARED / "imdb" / "reviews500.csv"
    length_table = []
    for length in (int(v) for v in args.lengths.split(",") if v):
        import json

        # A copy of the model folder whose saved max_length is `length` (prediction reads it from bertkit.json).
        variant = work / f"model-len{length}"
        if not variant.exists():
            variant.mkdir()
            for item in folder.iterdir():
                if item.is_file():
                    (variant / item.name).symlink_to(item)
            meta = json.loads((folder / "bertkit.json").read_text())
            meta["config"]["max_length"] = length
            (variant / "bertkit.json").unlink()
            (variant / "bertkit.json").write_text(json.dumps(meta))
        seconds, rss = run_measured(["predict", str(variant), "--data", str(imdb), "--output",
                                     str(work / "out.csv")])  # fmt: skip
        length_table.append({"max_length": length, "rows": 500, "wall s": seconds, "rows/s": 500 / seconds,
                             "peak RSS MiB": rss})  # fmt: skip
        print(length_table[-1], flush=True)
    sections.append(("Prediction time vs max_length (MiniLM, imdb reviews500, truncation)",
                     markdown_table(length_table)))  # fmt: skip

    train_table = []
    train_csv = SHARED / "rotten_tomatoes" / "train.csv"
    for rows in (int(r) for r in args.train_rows.split(",") if r):
        seconds, rss = run_measured(["train", "--train", str(train_csv), "--max-train-rows", str(rows), "--epochs",
                                     "1", "--output", str(work / f"train-{rows}")])  # fmt: skip
        train_table.append({"train rows": rows, "max_length": 128, "wall s (incl. load, eval, save)": seconds,
                            "peak RSS MiB": rss})  # fmt: skip
        print(train_table[-1], flush=True)
    for length in (64, 256):
        rows = int(args.train_rows.split(",")[-1])
        seconds, rss = run_measured(["train", "--train", str(imdb), "--max-train-rows", str(min(rows, 400)),
                                     "--epochs", "1", "--max-length", str(length), "--output",
                                     str(work / f"train-len{length}")])  # fmt: skip
        train_table.append({"train rows": min(rows, 400), "max_length": f"{length} (imdb)",
                            "wall s (incl. load, eval, save)": seconds, "peak RSS MiB": rss})  # fmt: skip
        print(train_table[-1], flush=True)
    sections.append(("Training time vs rows and max_length (MiniLM, 1 epoch)", markdown_table(train_table)))

    text = "\n\n".join(f"**{title}**\n\n{table}" for title, table in sections)
    print(text)
    if not args.no_write:
        append_results(
            "Memory and scale: rows and max_length",
            text,
            f"Threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}. Each row is one "
            "`python -m bertkit` process; peak RSS is that process's ru_maxrss.",
        )


if __name__ == "__main__":
    main()
