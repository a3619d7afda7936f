"""Training throughput: bertkit's loop beside a tuned transformers.Trainer, same model, data, hyperparameters.

    python benchmarks/train_speed.py [--rows 2000] [--epochs 1] [--seeds 1,2,3] [--precision auto]
                                     [--classifier-pooling auto|cls|mean]

Each run is a fresh subprocess (so peak RSS is per engine). Both engines train all-MiniLM-L6-v2 on the first
--rows rows of a seeded shuffle of rotten_tomatoes train, with batch 32 (the tuned Trainer's), learning rate
1e-4, warm-up 0.1, dynamic padding and length grouping, then score the 1,066-row test split.
samples/s counts training examples over the training loop's wall time (bertkit: the loop's own clock;
Trainer: its train_runtime), excluding model load and evaluation; tokens/s counts non-padding tokens.
bertkit's default (--classifier-pooling auto) gives MiniLM a mean-pooling layer, one layer more than the
peer's model; --classifier-pooling cls compares the two loops on the same architecture.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def data(rows: int, seed: int):
    from bertkit import load_data

    train = load_data(SHARED / "rotten_tomatoes" / "train.csv")
    pick = np.sort(np.random.default_rng(seed).permutation(len(train))[:rows])
    return train.subset(pick), load_data(SHARED / "rotten_tomatoes" / "test.csv")


def worker_bertkit(args) -> dict:
    from bertkit import TextClassifier

    train, test = data(args.rows, args.seed)
    clf = TextClassifier(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                         seed=args.seed, precision=args.precision, classifier_pooling=args.classifier_pooling,
                         rdrop=0.0, progress=False)  # the Trainer's recipe: no R-Drop (the default from 4,000 rows)  # fmt: skip
    # Validation is the test split here only to give both engines the same per-epoch evaluation work.
    clf.fit(train, eval_set=test)
    seconds = sum(r["train_seconds"] for r in clf.history_)
    tokens = sum(r["train_tokens_per_s"] * r["train_seconds"] for r in clf.history_)
    accuracy = clf.evaluate(test).metrics["accuracy"]
    return {"train_seconds": seconds, "samples_per_s": len(train) * args.epochs / seconds,
            "tokens_per_s": tokens / seconds, "accuracy": accuracy}  # fmt: skip


def worker_trainer(args) -> dict:
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )
    from transformers.utils import logging as hf_logging

    from bertkit.models.checkpoints import resolve_checkpoint

    hf_logging.set_verbosity_error()
    train, test = data(args.rows, args.seed)
    path = resolve_checkpoint("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)

    def dataset(d):
        labels = [1 if label == "positive" else 0 for label in d.labels]
        ds = datasets.Dataset.from_dict({"text": d.texts, "label": labels})
        return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True,
                      remove_columns=["text"])  # fmt: skip

    train_ds, test_ds = dataset(train), dataset(test)
    tokens = sum(len(x) for x in train_ds["input_ids"]) * args.epochs
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    def accuracy(pred):
        logits, labels = pred
        return {"accuracy": float((logits.argmax(axis=1) == labels).mean())}

    with tempfile.TemporaryDirectory() as out:
        training_args = TrainingArguments(
            output_dir=out, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64, learning_rate=args.learning_rate, weight_decay=0.01, warmup_steps=0.1,
            eval_strategy="epoch", save_strategy="no", report_to="none", seed=args.seed,
            dataloader_pin_memory=False, train_sampling_strategy="group_by_length", disable_tqdm=True,
            logging_strategy="no", bf16=args.precision == "bf16",
        )  # fmt: skip
        trainer = Trainer(model=model, args=training_args, train_dataset=train_ds, eval_dataset=test_ds,
                          data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy)  # fmt: skip
        started = time.perf_counter()
        result = trainer.train()
        wall = time.perf_counter() - started
        # Trainer's runtime includes its per-epoch evaluation; subtract it to compare training loops only.
        eval_started = time.perf_counter()
        metrics = trainer.evaluate(test_ds)
        eval_seconds = time.perf_counter() - eval_started
    seconds = min(result.metrics["train_runtime"], wall) - eval_seconds * args.epochs
    return {"train_seconds": seconds, "samples_per_s": len(train) * args.epochs / seconds,
            "tokens_per_s": tokens / seconds, "accuracy": metrics["eval_accuracy"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--precision", default="auto", help="bertkit's --precision (auto, fp32, bf16)")
    parser.add_argument("--engines", default="bertkit,trainer")
    parser.add_argument("--classifier-pooling", default="auto", help="bertkit's (auto: mean for MiniLM; the peer: cls)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.worker:
        result = {"bertkit": worker_bertkit, "trainer": worker_trainer}[args.worker](args)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps(result), flush=True)
        return
    runs: dict[str, list[dict]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for engine in args.engines.split(","):
            command = [sys.executable, __file__, "--worker", engine, "--seed", str(seed), "--rows", str(args.rows),
                       "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                       "--learning-rate", str(args.learning_rate), "--precision", args.precision,
                       "--classifier-pooling", args.classifier_pooling]  # fmt: skip
            out = subprocess.run(command, capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{engine} seed {seed} failed:\n{out.stderr[-3000:]}")
            result = json.loads(line[7:])
            runs.setdefault(engine, []).append(result)
            print(engine, seed, result, flush=True)
    rows = []
    for engine, results in runs.items():
        rows.append({
            "engine": "bertkit" if engine == "bertkit" else "HF Trainer (tuned)",
            "seeds": len(results),
            "train s (mean)": statistics.mean(r["train_seconds"] for r in results),
            "samples/s": statistics.mean(r["samples_per_s"] for r in results),
            "tokens/s": statistics.mean(r["tokens_per_s"] for r in results),
            "peak RSS MiB": max(r["peak_rss_mib"] for r in results),
            "test accuracy (per seed)": " / ".join(f"{r['accuracy']:.3f}" for r in results),
            "accuracy mean": statistics.mean(r["accuracy"] for r in results),
        })  # fmt: skip
    table = markdown_table(rows)
    ratio = ""
    if {"bertkit", "trainer"} <= set(runs):
        speedup = rows[0]["samples/s"] / rows[1]["samples/s"]
        ratio = f"bertkit / Trainer training throughput: **{speedup:.2f}x** (samples/s, mean over seeds)."
    print(table, "\n", ratio)
    if not args.no_write:
        append_results(
            f"Training speed: rotten_tomatoes, {args.rows} rows x {args.epochs} epoch(s), batch {args.batch_size}",
            table, ratio + f" bertkit precision: {args.precision}, classifier pooling: {args.classifier_pooling}.",
        )  # fmt: skip


if __name__ == "__main__":
    main()
