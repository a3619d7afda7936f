"""Named-entity recognition on CoNLL-2003 English: train a TokenTagger on eng.train (a seeded 10% held out for
best-epoch selection), report entity-level precision/recall/F1 (conlleval definition) on eng.testa.

    OMP_NUM_THREADS=1 python benchmarks/ner_conll.py --epochs 3
    python benchmarks/ner_conll.py --max-train-rows 3000 --epochs 1 --no-write   # quick look
"""

from __future__ import annotations

import argparse
import os
import time

from common import SHARED, append_results, markdown_table

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-train-rows", type=int, default=None, help="train on a seeded sample of N sentences")
    parser.add_argument("--output", default=None, help="also save the model here")
    parser.add_argument("--no-write", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()

    from bertkit import TokenTagger, load_tagged_data

    folder = SHARED / "conll2003"
    train, testa = load_tagged_data(folder / "eng.train"), load_tagged_data(folder / "eng.testa")
    print(f"eng.train: {len(train)} sentences, eng.testa: {len(testa)} sentences", flush=True)
    started = time.perf_counter()
    tagger = TokenTagger(
        args.model, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        max_length=args.max_length, max_train_rows=args.max_train_rows, progress=False,
    )  # fmt: skip
    tagger.fit(train)
    train_seconds = time.perf_counter() - started
    for record in tagger.history_:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}, flush=True)
    if args.output:
        tagger.save(args.output)
    started = time.perf_counter()
    report = tagger.evaluate(testa)
    eval_seconds = time.perf_counter() - started
    rows = [
        {
            "train sentences": tagger.n_train_rows_, "epochs": args.epochs, "batch": args.batch_size,
            "lr": args.learning_rate, "best epoch": tagger.best_epoch_,
            "val F1 (held-out train)": tagger.validation_metrics_["f1"],
            "testa precision": report["precision"], "testa recall": report["recall"], "testa F1": report["f1"],
            "train s": train_seconds, "testa sent/s": len(testa) / eval_seconds,
        }
    ]  # fmt: skip
    per_type = [{"type": k, **{m: v[m] for m in ("precision", "recall", "f1", "support")}}
                for k, v in report["per_type"].items()]  # fmt: skip
    table = markdown_table(rows) + "\n\n" + markdown_table(per_type)
    print(table)
    if not args.no_write:
        append_results(
            "Named entities: CoNLL-2003 English, entity F1 on eng.testa",
            table,
            f"{args.model}, max_length {args.max_length}; 10% of the training sentences held out (seeded) to pick "
            "the best epoch by entity F1; eng.testa used only for the final score. Entity-level micro "
            "precision/recall/F1, conlleval definition (exact span and type), IOB1 tags read as BIO.",
        )


if __name__ == "__main__":
    main()
