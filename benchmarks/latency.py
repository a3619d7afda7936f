"""Single-text latency (issue 20, target 4): bertkit as users run it beside transformers.pipeline, in-process
and behind HTTP, same model folder, in one run.

    python benchmarks/latency.py --model DIR [--calls 200] [--threads N] [--no-write]

--model is a folder `bertkit train` wrote (with its backend record: bertkit.json "backend"; without one the
default backend is torch). In-process: p50/p95 of --calls calls of one rotten_tomatoes test sentence each
(cycled), after 20 warm-up calls, for
- the pipeline (`pipeline("text-classification", model=DIR)`, fp32, truncating at the model's max_length);
- bertkit's default: `TextClassifier.load(DIR)` (backend auto: the recorded default), `predict_proba([text])`;
- bertkit's torch backend pinned to fp32 (the figure an fp32-only CPU gets from torch).
HTTP, one client, keep-alive connection: `bertkit serve DIR` (its defaults) against the same FastAPI + uvicorn
stack around the pipeline, one pipeline call per request (serve_load.py's servers). Both sides use --threads
torch threads (default: all cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table  # noqa: E402
from predict_speed import latency  # noqa: E402
from serve_load import PipelineModel, drive, server  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def in_process(folder: Path, texts: list[str], calls: int) -> list[dict]:
    """p50/p95 ms of one-text calls: pipeline, bertkit default, bertkit torch fp32 (in that order)."""
    from bertkit import TextClassifier

    peer = PipelineModel(str(folder))
    default = TextClassifier.load(folder, device="cpu")
    torch_fp32 = TextClassifier.load(folder, device="cpu", backend="torch", precision="fp32")
    rows = []
    for name, model in (("pipeline", peer), (f"bertkit default ({default.backend_})", default),
                        ("bertkit torch fp32", torch_fp32)):  # fmt: skip
        latency(lambda t, m=model: m.predict_proba([t]), texts, calls=20)  # warm-up
        p50, p95 = latency(lambda t, m=model: m.predict_proba([t]), texts, calls=calls)
        rows.append({"where": "in-process", "engine": name, "p50 ms": p50, "p95 ms": p95})
    return rows


def over_http(folder: Path, texts: list[str], calls: int, threads: int) -> list[dict]:
    """p50/p95 ms of one-text requests from one client: the pipeline server, then `bertkit serve`."""
    rows = []
    for kind, name in (("pipeline", "pipeline server"), ("bertkit", "bertkit serve (default)")):
        with server(kind, folder, threads, "auto", 32, 5.0) as (url, _pid):
            result = asyncio.run(drive(url, texts, 1, calls, stats=False))
        rows.append({"where": "HTTP, 1 client", "engine": name, "p50 ms": result["p50 ms"],
                     "p95 ms": result["p95 ms"]})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import torch

    from bertkit import load_data

    torch.set_num_threads(args.threads)
    texts = list(load_data(SHARED / "rotten_tomatoes" / "test.csv").texts)
    rows = in_process(args.model, texts, args.calls) + over_http(args.model, texts, args.calls, args.threads)
    for group in ("in-process", "HTTP, 1 client"):
        peer = next(r for r in rows if r["where"] == group)
        for row in rows:
            if row["where"] == group:
                row["p50 vs pipeline"] = f"{peer['p50 ms'] / row['p50 ms']:.2f}x"
    table = markdown_table(rows)
    print(table)
    backend = json.loads((args.model / "bertkit.json").read_text()).get("backend", {}).get("default", "torch")
    notes = (
        f"Model: {args.model} (recorded default backend: {backend}). One rotten_tomatoes test sentence per call "
        f"(cycled), {args.calls} calls after 20 warm-up calls; torch threads {args.threads} on every side. "
        "`p50 vs pipeline`: the pipeline's p50 over the row's (above 1: faster). HTTP: serve_load.py's servers, "
        "one client on a keep-alive connection; the pipeline server is the same FastAPI + uvicorn stack, one "
        "pipeline call per request."
    )
    if not args.no_write:
        append_results("Single-text latency: bertkit predict and serve vs transformers.pipeline", table, notes)


if __name__ == "__main__":
    main()
