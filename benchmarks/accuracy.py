"""bertkit's default recipe beside a tuned transformers.Trainer: same model, data and hyperparameters.

    python benchmarks/accuracy.py --sets rotten_tomatoes,mrpc,ag_news,cola [--epochs 3] [--engines bertkit,trainer]
                                  [--seeds 42 | --seeds 1,2,3] [--label-smoothing 0.1] [--classifier-pooling mean]
                                  [--keep-epoch auto|best|last] [--dropout P] [--rdrop ALPHA]

Both engines train the built-in MiniLM with the batch size and learning rate bertkit resolves for the data
size, warm-up 0.1, weight decay 0.01, dynamic padding, length-grouped batches, and evaluate every epoch on the
same validation split. The Trainer keeps the best epoch (load_best_model_at_end); bertkit keeps the epoch its
--keep-epoch names (default auto: the last, unless an earlier one is better beyond validation noise). From
4,000 training rows of single-label classification bertkit's default also runs R-Drop (weight 0.5), which the
Trainer has no option for; `--rdrop 0` gives bertkit the peer's loss. The
score is reported on the split named in the table (test, or GLUE dev). With several
--seeds, each engine runs once per seed and a second table gives the mean and standard deviation per engine:
single runs differ by about a point on these sets, so compare engines over seeds.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import append_results, load_split, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_bertkit(
    split,
    epochs: int,
    seed: int,
    max_length: int,
    precision: str = "auto",
    learning_rate: float | None = None,
    label_smoothing: float = 0.0,
    classifier_pooling: str = "auto",
    keep_epoch: str = "auto",
    dropout: float | None = None,
    rdrop: float | None = None,
) -> dict:
    from bertkit import TextClassifier

    started = time.perf_counter()
    # The same selection metric as the Trainer's metric_for_best_model below.
    clf = TextClassifier(epochs=epochs, seed=seed, max_length=max_length, selection_metric=split.metric,
                         precision=precision, learning_rate=learning_rate, label_smoothing=label_smoothing,
                         classifier_pooling=classifier_pooling, keep_epoch=keep_epoch, dropout=dropout,
                         rdrop=rdrop, progress=False)  # fmt: skip
    clf.fit(split.train, eval_set=split.validation)
    report = clf.evaluate(split.test)
    seconds = time.perf_counter() - started
    epochs_run = len(clf.history_)
    return {"metrics": report.metrics, "seconds": seconds, "config": clf.config_,
            "epochs": f"{clf.best_epoch_} / {clf.kept_epoch_} of {epochs_run}"}  # fmt: skip


def run_trainer(split, config, epochs: int, seed: int, max_length: int) -> dict:
    """The tuned Trainer: dynamic padding, length grouping, best epoch on validation, no optimizer state saved."""
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )
    from transformers.utils import logging as hf_logging

    from bertkit.classification.metrics import classification_metrics
    from bertkit.data.labels import encode_labels, normalize_labels, sorted_classes
    from bertkit.models.checkpoints import resolve_checkpoint

    hf_logging.set_verbosity_error()
    started = time.perf_counter()
    path = resolve_checkpoint("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    task, train_labels = normalize_labels(split.train.labels, "auto")
    classes = sorted_classes(train_labels, task)

    def dataset(data):
        _, labels = normalize_labels(data.labels, task)
        columns = {"text": data.texts, "label": encode_labels(labels, classes, task).tolist()}
        if data.pairs is not None:
            columns["pair"] = data.pairs
        ds = datasets.Dataset.from_dict(columns)
        pair = "pair" if data.pairs is not None else None
        return ds.map(
            lambda b: tokenizer(b["text"], b[pair] if pair else None, truncation=True, max_length=max_length),
            batched=True, remove_columns=["text"] + ([pair] if pair else []),
        )  # fmt: skip

    train, validation, test = dataset(split.train), dataset(split.validation), dataset(split.test)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(classes))

    def compute(pred):
        logits, labels = pred
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return classification_metrics(labels, shifted / shifted.sum(axis=1, keepdims=True))

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, num_train_epochs=epochs, per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=64, learning_rate=config.learning_rate, weight_decay=0.01,
            warmup_steps=0.1, lr_scheduler_type="linear", eval_strategy="epoch", save_strategy="epoch",
            label_smoothing_factor=config.label_smoothing,
            load_best_model_at_end=True, metric_for_best_model=split.metric,
            save_only_model=True, save_total_limit=2, report_to="none", seed=seed, dataloader_pin_memory=False,
            train_sampling_strategy="group_by_length", logging_strategy="epoch", disable_tqdm=True,
        )  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=validation,
                          data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute)  # fmt: skip
        trainer.train()
        metrics = trainer.evaluate(test)
    seconds = time.perf_counter() - started
    return {"metrics": {k[5:]: v for k, v in metrics.items() if k.startswith("eval_")}, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="rotten_tomatoes,mrpc,ag_news,cola")
    parser.add_argument("--engines", default="bertkit,trainer")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="42", help="comma-separated seeds; each engine runs once per seed")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--precision", default="auto", help="bertkit's --precision (auto: bf16 where native)")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: bertkit's data-size rule")
    parser.add_argument(
        "--label-smoothing", type=float, default=0.0, help="both engines (Trainer: label_smoothing_factor)"
    )
    parser.add_argument(
        "--classifier-pooling", default="auto", help="bertkit only: auto (its default), cls or mean (the peer: cls)"
    )
    parser.add_argument("--keep-epoch", default="auto", help="bertkit only: auto (its default), best or last")
    parser.add_argument(
        "--dropout", type=float, default=None, help="bertkit only: its --dropout (default: bertkit's default)"
    )
    parser.add_argument(
        "--rdrop", type=float, default=None, help="bertkit only: its --rdrop weight (default: bertkit's default)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    rows = []
    seeds = [int(s) for s in args.seeds.split(",")]
    engines = args.engines.split(",")
    for name in args.sets.split(","):
        split = load_split(name)
        for seed in seeds:
            # bertkit always runs: it resolves the batch size and learning rate the peer then uses
            result = run_bertkit(
                split,
                args.epochs,
                seed,
                args.max_length,
                args.precision,
                args.learning_rate,
                args.label_smoothing,
                args.classifier_pooling,
                args.keep_epoch,
                args.dropout,
                rdrop=args.rdrop,
            )
            config = result["config"]
            if "bertkit" in engines:
                # the pooling auto resolved to, so that a table never hides which head bertkit trained
                label = args.precision + (", mean pooling" if config.classifier_pooling == "mean" else "")
                label += "" if config.keep_epoch == "auto" else f", keep {config.keep_epoch}"
                label += "" if config.dropout is None else f", dropout {config.dropout:g}"
                label += f", R-Drop {config.rdrop:g}" if config.rdrop else ""
                rows.append(_row(name, split, f"bertkit ({label})", seed, result, config))
                print(rows[-1], flush=True)
            if "trainer" in engines:
                peer = run_trainer(split, config, args.epochs, seed, args.max_length)
                rows.append(_row(name, split, "HF Trainer (tuned)", seed, peer, config))
                print(rows[-1], flush=True)
    table = markdown_table(rows)
    if len(seeds) > 1:
        table += "\n\n" + markdown_table(_over_seeds(rows))
    print(table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if not args.no_write:
        append_results(
            f"Accuracy: bertkit vs transformers.Trainer ({args.epochs} epochs, all-MiniLM-L6-v2)",
            table,
            f"Same model, batch size and learning rate (bertkit's data-size defaults), warm-up 0.1, weight decay "
            f"0.01, label smoothing {args.label_smoothing:g}, evaluation every epoch on the validation split (the Trainer keeps "
            f"the best epoch, bertkit --keep-epoch {args.keep_epoch}), seeds {args.seeds}; peak RSS of the whole run {peak:.0f} MiB.",
        )


def _over_seeds(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation of each metric per data set and engine."""
    summary = []
    for key in dict.fromkeys((r["data"], r["engine"]) for r in rows):
        group = [r for r in rows if (r["data"], r["engine"]) == key]
        cell = {"data": key[0], "reported on": group[0]["reported on"], "engine": key[1], "seeds": len(group)}
        for metric in ("accuracy", "f1", "mcc", "wall s"):
            values = np.array([r[metric] for r in group], dtype=float)
            cell[f"{metric} mean"] = round(float(values.mean()), 4)
            cell[f"{metric} std"] = round(float(values.std(ddof=1)), 4) if len(values) > 1 else 0.0
        summary.append(cell)
    return summary


def _row(name, split, engine, seed, result, config) -> dict:
    m = result["metrics"]
    return {
        "data": name, "reported on": split.test_name, "engine": engine, "seed": seed, "rows": len(split.train),
        "batch": config.batch_size, "lr": f"{config.learning_rate:g}", "accuracy": m["accuracy"], "f1": m["f1"],
        "mcc": m["mcc"], "epoch best / kept": result.get("epochs", "best (no kept)"), "wall s": round(result["seconds"], 1),
    }  # fmt: skip


if __name__ == "__main__":
    main()
