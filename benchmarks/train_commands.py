"""Training as whole commands: `bertkit train` with its defaults beside a tuned transformers.Trainer script.

    python benchmarks/train_commands.py --data ag_news|rotten_tomatoes [--epochs 1] [--seeds 1,2,3]
                                        [--engines bertkit,trainer] [--precision auto|fp32]
                                        [--bertkit-args "--rdrop 0"] [--max-train-rows N] [--no-write]

Each run is a fresh process, timed from its start to the moment its model folder is complete, as a user
waits for it: imports, reading the files, tokenizing, training, validation every epoch, saving. "training loop s"
is the part of it spent in the training loop (bertkit: the epochs' own clock, without validation; the Trainer:
its train_runtime, with its per-epoch evaluation and checkpoints).
- bertkit: `python -m bertkit train --train T --validation V --epochs E --seed S --output DIR`, nothing
  else but `--precision` (fp32 stands in for an fp32-only CPU on a host with native bf16) and
  `--bertkit-args`. The default command also writes and scores the int8 graph after saving the model; that is
  part of its time; its clock stops when the process has exited. Test accuracy comes after, untimed, from
  `bertkit evaluate DIR --data TEST --json --backend torch` (the default backend it chose is recorded).
- the Trainer: this file's `--worker` (datasets.map tokenization, dynamic padding, length grouping, evaluation
  and a checkpoint every epoch, the best epoch loaded at the end, `save_model`) with the batch size and
  learning rate bertkit resolves for the same rows; it notes the time when the model folder is saved (before
  its interpreter exits: about a second in the Trainer's favour), then scores the test split, untimed.
AG News: train.csv (5,000 rows), validation dev.csv (1,000 of those rows), test.csv. bertkit runs with
`--validation-overlap keep` there, so that both engines train on the same 5,000 rows (its default drops the
validation rows from training; the Trainer has no such step).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
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

FILES = {
    "ag_news": ("ag_news/train.csv", "ag_news/dev.csv", "ag_news/test.csv", ["--validation-overlap", "keep"]),
    "rotten_tomatoes": ("rotten_tomatoes/train.csv", "rotten_tomatoes/validation.csv", "rotten_tomatoes/test.csv", []),
}


def run_bertkit(args, seed: int, folder: Path) -> dict:
    train, validation, test, data_flags = FILES[args.data]
    command = [sys.executable, "-m", "bertkit", "train", "--train", str(SHARED / train), "--validation",
               str(SHARED / validation), "--epochs", str(args.epochs), "--seed", str(seed), "--output", str(folder),
               "--quiet", "--precision", args.precision, *data_flags, *shlex.split(args.bertkit_args)]  # fmt: skip
    if args.max_train_rows:
        command += ["--max-train-rows", str(args.max_train_rows)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    # torch: the trained model itself, as the Trainer's accuracy is its torch model's (the default backend, which
    # predict and serve load, is recorded beside it)
    evaluated = subprocess.run([sys.executable, "-m", "bertkit", "evaluate", str(folder), "--data", str(SHARED / test),
                                "--json", "--backend", "torch"], check=True, capture_output=True, text=True)  # fmt: skip
    metrics = json.loads(evaluated.stdout)
    metrics = metrics.get("metrics", metrics)
    config = json.loads((folder / "train_config.json").read_text())
    backend = (json.loads((folder / "bertkit.json").read_text()).get("backend") or {}).get("default", "torch")
    history = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines() if line.strip()]
    return {"seconds": seconds, "loop": sum(r["train_seconds"] for r in history), "accuracy": metrics["accuracy"],
            "batch": config["batch_size"], "backend": backend,
            "lr": config["learning_rate"], "rdrop": config.get("rdrop")}  # fmt: skip


def run_trainer(args, seed: int, folder: Path, batch_size: int, learning_rate: float) -> dict:
    done = folder.with_suffix(".done")
    command = [sys.executable, __file__, "--worker", "--data", args.data, "--epochs", str(args.epochs),
               "--seed", str(seed), "--output", str(folder), "--batch-size", str(batch_size),
               "--learning-rate", str(learning_rate), "--done", str(done)]  # fmt: skip
    if args.max_train_rows:
        command += ["--max-train-rows", str(args.max_train_rows)]
    started = time.time()
    finished = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = float(done.read_text()) - started
    return {"seconds": seconds, **json.loads(finished.stdout.strip().splitlines()[-1])}


def trainer_worker(args) -> None:
    """The peer as a tutorial writes it, tuned: one process that reads, tokenizes, trains and saves."""
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )
    from transformers.utils import logging as hf_logging

    from bertkit import load_data
    from bertkit.models.checkpoints import resolve_checkpoint

    hf_logging.set_verbosity_error()
    train_file, validation_file, test_file, _ = FILES[args.data]
    path = resolve_checkpoint("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    train, validation, test = (load_data(SHARED / f) for f in (train_file, validation_file, test_file))
    if args.max_train_rows and args.max_train_rows < len(train):  # the rows bertkit's --max-train-rows keeps
        train = train.subset(np.sort(np.random.default_rng(args.seed).permutation(len(train))[: args.max_train_rows]))
    classes = sorted({str(label) for label in train.labels})

    def dataset(data):
        labels = [classes.index(str(label)) for label in data.labels]
        ds = datasets.Dataset.from_dict({"text": data.texts, "label": labels})
        return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=128), batched=True,
                      remove_columns=["text"])  # fmt: skip

    train_set, validation_set, test_set = dataset(train), dataset(validation), dataset(test)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(classes))

    def accuracy(prediction):
        logits, labels = prediction
        return {"accuracy": float((logits.argmax(-1) == labels).mean())}

    with tempfile.TemporaryDirectory() as checkpoints:
        training = TrainingArguments(
            output_dir=checkpoints, num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64, learning_rate=args.learning_rate, weight_decay=0.01, warmup_steps=0.1,
            lr_scheduler_type="linear", eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
            metric_for_best_model="accuracy", save_only_model=True, save_total_limit=2, report_to="none",
            seed=args.seed, dataloader_pin_memory=False, train_sampling_strategy="group_by_length",
            logging_strategy="epoch", disable_tqdm=True,
        )  # fmt: skip
        trainer = Trainer(model=model, args=training, train_dataset=train_set, eval_dataset=validation_set,
                          data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=accuracy)  # fmt: skip
        loop = trainer.train().metrics["train_runtime"]
        trainer.save_model(args.output)
        tokenizer.save_pretrained(args.output)
        Path(args.done).write_text(repr(time.time()))  # the model folder is complete: the command's time ends here
        scored = trainer.evaluate(test_set)
    print(json.dumps({"accuracy": scored["eval_accuracy"], "loop": loop, "batch": args.batch_size,
                      "lr": args.learning_rate}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="ag_news", choices=sorted(FILES))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--engines", default="bertkit,trainer")
    parser.add_argument(
        "--precision", default="auto", help="bertkit's --precision (fp32 stands in for an fp32-only CPU)"
    )
    parser.add_argument("--bertkit-args", default="", help="extra flags for bertkit train, as one string")
    parser.add_argument("--max-train-rows", type=int, default=None)
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--learning-rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--done", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        trainer_worker(args)
        return
    engines = args.engines.split(",")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in (int(s) for s in args.seeds.split(",")):
            resolved = None
            if "bertkit" in engines:
                result = run_bertkit(args, seed, Path(scratch) / f"bertkit-{seed}")
                resolved = result
                label = (
                    f"bertkit train ({args.precision}" + (f" {args.bertkit_args}" if args.bertkit_args else "") + ")"
                )
                rows.append(_row(label, seed, result))
                print(rows[-1], flush=True)
            if "trainer" in engines:
                batch, lr = (resolved["batch"], resolved["lr"]) if resolved else (32, 5e-5)
                result = run_trainer(args, seed, Path(scratch) / f"trainer-{seed}", batch, lr)
                rows.append(_row("HF Trainer script (tuned)", seed, result))
                print(rows[-1], flush=True)
    table = markdown_table(rows)
    summary = _summary(rows)
    print(table + "\n\n" + summary)
    if not args.no_write:
        append_results(f"Training as whole commands: {args.data}, {args.epochs} epoch(s), bertkit train vs a Trainer script",
                       table + "\n\n" + summary, "Seconds: process start to the model folder complete (test scoring after, untimed).")  # fmt: skip


def _row(engine: str, seed: int, result: dict) -> dict:
    row = {"engine": engine, "seed": seed, "batch": result["batch"], "lr": f"{result['lr']:g}"}
    if "rdrop" in result:
        row["R-Drop weight"] = f"{result['rdrop'] or 0:g}"
        row["default backend"] = result["backend"]
    return {**row, "seconds": round(result["seconds"], 1),
            "training loop s (Trainer: with its evaluation)": round(result["loop"], 1),
            "test accuracy (torch)": round(result["accuracy"], 4)}  # fmt: skip


def _summary(rows: list[dict]) -> str:
    """Mean seconds and accuracy per engine, and bertkit's speed-up over the Trainer per seed and on the means."""
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    lines = ["| engine | seeds | seconds mean | test accuracy mean (std) |", "|---|---|---|---|"]
    for engine in engines:
        group = [r for r in rows if r["engine"] == engine]
        accuracy = [r["test accuracy (torch)"] for r in group]
        spread = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
        lines.append(f"| {engine} | {len(group)} | {statistics.mean(r['seconds'] for r in group):.1f} | "
                     f"{statistics.mean(accuracy):.4f} ({spread:.4f}) |")  # fmt: skip
    peer = [r for r in rows if r["engine"].startswith("HF")]
    ours = [r for r in rows if r["engine"].startswith("bertkit")]
    if peer and ours:
        ratios = [p["seconds"] / b["seconds"] for b, p in zip(ours, peer, strict=False)]
        mean = statistics.mean(p["seconds"] for p in peer) / statistics.mean(b["seconds"] for b in ours)
        lines.append("")
        lines.append(f"bertkit's speed-up over the Trainer: {mean:.2f}x on the mean seconds (per seed: "
                     + ", ".join(f"{x:.2f}x" for x in ratios) + ")")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
