"""Whole-process prediction time as a user runs it: `bertkit predict` against a `transformers.pipeline` script.

    python benchmarks/process_speed.py --peer TEACHER_DIR --model NAME=DIR[:BACKEND] [--model ...] [--repeats 2]

The input is the IMDb + rotten_tomatoes mix: every review of ../shared/data/imdb/reviews500.csv (500 long
reviews; the shared data holds no more) and the 1,066 rotten_tomatoes test sentences, shuffled (seed 0) into one
CSV. Each side is one fresh Python process, timed from start to exit: import, load the model, read the file,
predict, write a CSV of predictions. The peer is `transformers.pipeline("text-classification")` on --peer
(batch 32, truncating at that model's max_length, as bertkit does; its own default `truncation=True` would keep
512 tokens). Each bertkit row is `bertkit predict DIR --data mix.csv --output P --backend B [--precision P]` (B: auto, the
default, unless given). Rows are the best
of --repeats runs, alternating peer and bertkit; threads are left to each library's default (all cores). The
ratio is the peer's seconds over the row's seconds. Accuracy is on the mix's labels (pos/positive, neg/negative
read as the same label).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402

PEER_SCRIPT = """
import sys, json, pandas as pd
from transformers import pipeline
folder, data, output, max_length = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
texts = pd.read_csv(data)["text"].tolist()
peer = pipeline("text-classification", model=folder, device="cpu")
out = peer(texts, batch_size=32, truncation=True, max_length=max_length)
pd.DataFrame({"label": [o["label"] for o in out], "score": [o["score"] for o in out]}).to_csv(output, index=False)
"""
SAME = {"pos": "positive", "neg": "negative"}


def write_mix(folder: Path) -> Path:
    """The IMDb reviews and the rotten_tomatoes test sentences in one shuffled CSV (text,label)."""
    imdb = pd.read_csv(SHARED / "imdb" / "reviews500.csv")
    rt = pd.read_csv(SHARED / "rotten_tomatoes" / "test.csv")
    mix = pd.concat([imdb[["text", "label"]], rt[["text", "label"]]], ignore_index=True)
    mix = mix.sample(frac=1.0, random_state=0).reset_index(drop=True)
    path = folder / "mix.csv"
    mix.to_csv(path, index=False)
    return path


def timed_process(command: list[str]) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def accuracy(predictions: Path, mix: Path) -> float:
    truth = [SAME.get(str(v), str(v)) for v in pd.read_csv(mix)["label"]]
    frame = pd.read_csv(predictions)  # bertkit keeps the input columns and adds predicted_label; the peer: label
    column = "predicted_label" if "predicted_label" in frame else "label"
    predicted = [SAME.get(str(v), str(v)) for v in frame[column]]
    return sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peer", type=Path, required=True, help="model folder the pipeline runs (the teacher)")
    parser.add_argument("--model", action="append", required=True,
                        help="NAME=DIR[:BACKEND[:PRECISION]] (repeatable; PRECISION: fp32, bf16, auto for torch)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--title", default="Whole-process prediction: bertkit predict vs a transformers.pipeline script"
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="process-speed-"))
    mix = write_mix(work)
    metadata = json.loads((args.peer / "bertkit.json").read_text())
    max_length = int(metadata.get("config", {}).get("max_length", 128))
    bertkit = str(Path(sys.executable).with_name("bertkit"))
    peer_script = work / "peer.py"
    peer_script.write_text(PEER_SCRIPT)

    entries = []
    for item in args.model:
        name, _, rest = item.partition("=")
        folder, _, backend = rest.partition(":")
        backend, _, precision = backend.partition(":")
        entries.append((name, folder, backend or "auto", precision))  # auto: the backend bertkit train recorded
    peer_out = work / "peer.csv"
    peer_command = [sys.executable, str(peer_script), str(args.peer), str(mix), str(peer_out), str(max_length)]
    peer_times, times = [], {name: [] for name, *_ in entries}
    for _ in range(args.repeats):
        peer_times.append(timed_process(peer_command))
        for name, folder, backend, precision in entries:
            out = work / f"{name}.csv"
            command = [bertkit, "predict", folder, "--data", str(mix), "--output", str(out), "--backend", backend]
            times[name].append(timed_process(command + (["--precision", precision] if precision else [])))
    peer_seconds = min(peer_times)
    rows = [{"engine": f"transformers.pipeline on {args.peer.name} (batch 32, max_length {max_length})",
             "whole process s": peer_seconds, "vs pipeline": 1.0, "mix accuracy": accuracy(peer_out, mix)}]  # fmt: skip
    for name, _folder, backend, precision in entries:
        seconds = min(times[name])
        rows.append({"engine": f"bertkit predict {name} ({backend}{', ' + precision if precision else ''})", "whole process s": seconds,
                     "vs pipeline": peer_seconds / seconds, "mix accuracy": accuracy(work / f"{name}.csv", mix)})  # fmt: skip
    table = markdown_table(rows)
    print(table)
    if not args.no_write:
        notes = (f"Input: {mix.name}, 500 IMDb reviews + 1,066 rotten_tomatoes test sentences (1,566 rows, shuffled). "
                 f"Best of {args.repeats} runs per row, peer and bertkit alternating; every run a fresh process "
                 "(import, load, read, predict, write).")  # fmt: skip
        append_results(args.title, table, notes)


if __name__ == "__main__":
    main()
