"""Prediction throughput and latency: bertkit's backends beside transformers.pipeline, same model and inputs.

    python benchmarks/predict_speed.py [--model DIR] [--repeats 2]

--model is a bertkit folder; without it a rotten_tomatoes model is trained first (2,000 rows, 1 epoch) into
/tmp/bertkit-bench-model. Throughput is sentences/s over the whole file (best of --repeats), both sides
truncating at the model's max_length; latency is p50/p95 of 200 single-text calls; accuracy is on
rotten_tomatoes test. ONNX backends are exported on the fly (`bertkit export`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table, timed  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def ensure_model(path: Path) -> Path:
    if (path / "bertkit.json").is_file():
        return path
    from bertkit import TextClassifier, load_data

    train = load_data(SHARED / "rotten_tomatoes" / "train.csv")
    TextClassifier(epochs=1, max_train_rows=2000, progress=False).fit(train).save(path)
    return path


def latency(fn, texts: list[str], calls: int = 200) -> tuple[float, float]:
    samples = []
    for text in (texts * (calls // len(texts) + 1))[:calls]:
        started = time.perf_counter()
        fn(text)
        samples.append((time.perf_counter() - started) * 1000)
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("/tmp/bertkit-bench-model"))
    parser.add_argument("--repeats", type=int, default=2)
    # torch = the default (precision auto: bf16 on CPUs with native bf16, else fp32); torch-fp32 forces fp32;
    # torch-hf-forward = the default without bertkit's packed BERT forward.
    parser.add_argument("--backends", default="torch,torch-fp32,torch-hf-forward,onnx,onnx-int8")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from transformers import pipeline

    from bertkit import TextClassifier, load_data

    folder = ensure_model(args.model)
    rt = load_data(SHARED / "rotten_tomatoes" / "test.csv")
    imdb = load_data(SHARED / "imdb" / "reviews500.csv")
    sets = {"rotten_tomatoes test (1,066)": rt.texts, "imdb reviews (500, long)": imdb.texts}
    base = TextClassifier.load(folder, device="cpu")
    max_length = base.config_.max_length
    if any(b.startswith("onnx") for b in args.backends.split(",")):
        base.export_onnx(folder)
        base.export_onnx(folder, quantize="int8")

    rows = []
    peer = pipeline("text-classification", model=str(folder), device="cpu")
    peer_kwargs = dict(batch_size=32, truncation=True, max_length=max_length)
    peer_speed = {}
    for name, texts in sets.items():
        seconds, out = timed(lambda t=texts: peer(t, **peer_kwargs), args.repeats)
        peer_speed[name] = len(texts) / seconds
    p50, p95 = latency(lambda t: peer(t, **peer_kwargs), rt.texts)
    outputs = peer(rt.texts, **peer_kwargs)
    accuracy = float(np.mean([o["label"] == y for o, y in zip(outputs, rt.labels, strict=True)]))
    rows.append({"engine": "HF pipeline (batch 32)", **{f"{k} sent/s": v for k, v in peer_speed.items()},
                 "vs pipeline (rt / imdb)": "1.00 / 1.00", "p50 ms": p50, "p95 ms": p95, "rt test accuracy": accuracy})  # fmt: skip

    import bertkit.engine.forward

    packed_classifier = bertkit.engine.forward.packed_classifier
    for backend in args.backends.split(","):
        # torch-hf-forward: the default precision with the Hugging Face forward instead of bertkit's packed one,
        # to show what the packed forward gives on its own.
        bertkit.engine.forward.packed_classifier = (
            (lambda model: None) if backend == "torch-hf-forward" else packed_classifier
        )
        if backend in ("torch-fp32", "torch-bf16"):
            clf = TextClassifier.load(folder, device="cpu", precision=backend.split("-", 1)[1])
        else:
            clf = TextClassifier.load(
                folder, device="cpu", backend=backend.split("-")[0] if backend.startswith("torch") else backend
            )
        clf.predict_batch_size = 64
        speed = {}
        for name, texts in sets.items():
            seconds, _ = timed(lambda t=texts, c=clf: c.predict_proba(t), args.repeats)
            speed[name] = len(texts) / seconds
        p50, p95 = latency(lambda t, c=clf: c.predict_proba([t]), rt.texts)
        accuracy = float(np.mean(clf.predict(rt.texts) == np.asarray(rt.labels, dtype=object)))
        bertkit.engine.forward.packed_classifier = packed_classifier
        ratios = " / ".join(f"{speed[k] / peer_speed[k]:.2f}" for k in sets)
        rows.append({"engine": f"bertkit {backend}", **{f"{k} sent/s": v for k, v in speed.items()},
                     "vs pipeline (rt / imdb)": ratios, "p50 ms": p50, "p95 ms": p95, "rt test accuracy": accuracy})  # fmt: skip
        print(rows[-1], flush=True)
    table = markdown_table(rows)
    print(table)
    if not args.no_write:
        append_results(
            "Prediction speed: bertkit backends vs transformers.pipeline",
            table,
            f"Model: {folder} (all-MiniLM-L6-v2 fine-tuned on 2,000 rotten_tomatoes rows), max_length {max_length}, "
            "bertkit batch 64 length-sorted, pipeline batch 32. Latency: 200 calls of one text each.",
        )


if __name__ == "__main__":
    main()
