"""What R-Drop costs a training step, through every layer and through the top K only (``--rdrop-layers K``).

    python benchmarks/rdrop_cost.py [--rows 960] [--precision fp32] [--layers 1 2 3] [--repeats 2]

One epoch of bertkit's default recipe on the first ``--rows`` rotten_tomatoes training sentences (all-MiniLM-L6-v2
with its mean-pooling layer: 7 encoder layers), batch 32, per arm: R-Drop off, R-Drop through every layer (the
default from 4,000 rows), and R-Drop through the top K layers. The figure is the loop's own training throughput
(``train_samples_per_s`` of the epoch's record: forward, backward and optimizer steps, no validation), best of
``--repeats``; the cost is each arm's step time over the step time without R-Drop. Speed only: whether the top-K
variant keeps R-Drop's accuracy gain is a question for multi-seed runs (benchmarks/accuracy.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=960)
    parser.add_argument("--precision", default="fp32", help="bertkit's --precision (fp32: as on an fp32-only CPU)")
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print the table; do not append to RESULTS.md")
    args = parser.parse_args()

    from bertkit import TextClassifier, load_data

    data = load_data(SHARED / "rotten_tomatoes" / "train.csv")
    texts, labels = list(data.texts[: args.rows]), list(data.labels[: args.rows])
    arms = [("off", 0.0, None), ("every layer", 0.5, None)]
    arms += [(f"top {k} layers", 0.5, k) for k in args.layers]
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, weight, layers in arms:  # arms in turns: a busy moment weighs on none of them alone
            clf = TextClassifier(epochs=1, batch_size=32, rdrop=weight, rdrop_layers=layers, precision=args.precision,
                                 keep_epoch="last", progress=False)  # fmt: skip
            clf.fit(texts, labels, eval_set=(texts[:32], labels[:32]))
            rate = clf.history_[-1]["train_samples_per_s"]
            best[name] = max(best.get(name, 0.0), rate)
            print(name, rate, flush=True)
    base = best["off"]
    rows = [
        {
            "R-Drop": name,
            "samples/s": round(rate, 1),
            "step time vs off": round(base / rate, 3),
            "extra cost vs every layer": "-"
            if name == "off"
            else f"{(base / rate - 1) / (base / best['every layer'] - 1):.0%}",
        }  # fmt: skip
        for name, rate in best.items()
    ]
    table = markdown_table(rows)
    print(table)
    if not args.no_write:
        notes = (f"{args.rows} rotten_tomatoes training rows, batch 32, 1 epoch, precision {args.precision}, best of "
                 f"{args.repeats}; all-MiniLM-L6-v2 + mean-pooling layer (7 layers). Command: python "
                 f"benchmarks/rdrop_cost.py {' '.join(sys.argv[1:])}")  # fmt: skip
        append_results("R-Drop's cost per step: every layer vs the top K (--rdrop-layers)", table, notes)


if __name__ == "__main__":
    main()
