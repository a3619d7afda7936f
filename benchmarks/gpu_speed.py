"""GPU speed: bertkit beside the tuned Trainer and transformers.pipeline on one CUDA device, in one process.

    python benchmarks/gpu_speed.py [--data DIR] [--minilm DIR] [--out DIR] [--sections peak,predict,...]

Runs where a GPU is lent (see README: "GPU benchmark"). ``--data`` is a folder holding GLUE SST-2's
``train.tsv`` (default ../shared/data/glue/SST-2); ``--minilm`` a folder with all-MiniLM-L6-v2 (default: the
installed package; an fp16 copy is upcast to fp32 first). Sections, in order; each writes its numbers to
``--out/gpu_results.json`` as soon as it ends, so a run cut short keeps what it measured:

- ``peak``: the bf16 matrix-product rate (8192^3, median of 10 after 3 warm-ups): the ceiling for ``fixed``.
- ``predict``: BERT-base (random weights: throughput only) on SST-2 sentences. The peer is
  ``pipeline("text-classification")`` in fp32 with batch 64, as the issue's reference figure; bertkit is
  ``TextClassifier.load(folder).predict_proba`` with its defaults (bf16 autocast on CUDA), tokenization
  included on both sides. p50/p95 latency of 200 single-text calls.
- ``train-base``: BERT-base-sized model from one random initialisation, batch 32, learning rate 1e-4, 1 epoch
  over ``--train-rows`` SST-2 sentences: the tuned Trainer (bf16, dynamic padding, length grouping, fused AdamW)
  and bertkit's loop (eager, and with ``cuda_graphs=True``), samples/s over each loop's own wall time, then
  accuracy on ``--held-out`` other sentences. Every engine first makes an untimed run of ``--warmup-rows``
  rows, and the engines' order rotates from seed to seed.
- ``train-minilm``: the real run: pretrained all-MiniLM-L6-v2, same recipe, both engines, held-out accuracy.
- ``fixed``: BERT-base at length 128, batch 128 (no padding), bertkit's loop: TFLOP/s counted as
  6 x parameters x tokens (the issue's reference formula) and its share of the ``peak`` rate, eager;
  ``fixed-graphs`` the same with ``cuda_graphs=True``, ``fixed-compile`` with the model under ``torch.compile``,
  ``fixed-compile-graphs`` both.

``--device cpu --smoke`` runs every section on a tiny random BERT and a few rows, to check the script here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


# --- helpers ------------------------------------------------------------------------------------------------
class Results:
    """Section results, written to disk after every section."""

    def __init__(self, path: Path) -> None:
        self.path, self.data = path, {}

    def put(self, section: str, value: object) -> None:
        self.data[section] = value
        self.path.write_text(json.dumps(self.data, indent=1, default=str))
        print(f"== {section}: {json.dumps(value, default=str)}", flush=True)


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def sst2(args):
    """SST-2 train sentences, shuffled with a fixed seed: (held-out, train, the rest) TextData."""
    from bertkit import load_data

    data = load_data(Path(args.data) / "train.tsv")
    order = np.random.default_rng(0).permutation(len(data))
    cut = args.held_out + args.train_rows
    held, train, rest = (data.subset(np.sort(part)) for part in (order[: args.held_out], order[args.held_out : cut],
                                                                  order[cut:]))  # fmt: skip
    return held, train, rest


def minilm_folder(args, scratch: Path) -> Path:
    """A MiniLM folder with fp32 weights (the carried copy may be fp16 to fit the transfer limit)."""
    from safetensors.torch import load_file, save_file

    from bertkit.models.checkpoints import resolve_checkpoint

    source = Path(resolve_checkpoint(args.minilm or "minilm"))
    target = scratch / "minilm"
    shutil.copytree(source, target)
    weights = load_file(str(source / "model.safetensors"))
    save_file({k: v.float().contiguous() for k, v in weights.items()}, str(target / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip
    return target


def bert_base_folder(args, tokenizer_from: Path, scratch: Path):
    """A randomly initialised BERT-base-sized classifier (seed 0) with MiniLM's uncased WordPiece tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) if args.smoke \
        else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from)
    config = BertConfig(vocab_size=tokenizer.vocab_size, num_labels=2, id2label={0: "0", 1: "1"},
                        label2id={"0": 0, "1": 1}, **size)  # fmt: skip
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    folder = scratch / "bert-base-random"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- sections -----------------------------------------------------------------------------------------------
def section_peak(args, device) -> dict:
    import torch

    n = 1024 if args.smoke else 8192
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(13):
        sync(device)
        started = time.perf_counter()
        a @ b
        sync(device)
        if i >= 3:
            times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    return {"n": n, "dtype": str(dtype), "tflops": 2 * n**3 / seconds / 1e12}


def section_predict(args, device, folder: Path) -> dict:
    from transformers import pipeline

    from bertkit import TextClassifier
    from bertkit.data.encoding import encode
    from bertkit.devices import predict_batch_size

    held, train, rest = sst2(args)
    texts = (train.texts + held.texts + rest.texts)[: args.predict_rows]
    rows = []

    def measure(name: str, run_many, run_one, warm: list[str]) -> dict:
        run_many(warm)  # warm-up: every batch shape's kernels loaded and chosen before the clock runs
        reset_peak(device)
        seconds = float("inf")
        for _ in range(2):  # best of two passes over all the sentences
            sync(device)
            started = time.perf_counter()
            run_many(texts)
            sync(device)
            seconds = min(seconds, time.perf_counter() - started)
        lat = []
        for text in texts[: args.latency_calls]:
            t0 = time.perf_counter()
            run_one(text)
            sync(device)
            lat.append((time.perf_counter() - t0) * 1000)
        row = {"engine": name, "sentences": len(texts), "seconds": seconds, "sent_per_s": len(texts) / seconds,
               "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
               "gpu_peak_mib": peak_mib(device)}  # fmt: skip
        print(row, flush=True)
        rows.append(row)
        return row

    index = None if device.type == "cpu" else device.index or 0
    peer = pipeline("text-classification", model=str(folder), device=index if index is not None else "cpu")
    kwargs = dict(batch_size=64, truncation=True, max_length=128)
    measure("pipeline fp32 batch 64", lambda t: peer(t, **kwargs), lambda t: peer(t, **kwargs), texts[:2048])
    peer = None  # release the peer's model before bertkit's runs
    clf = TextClassifier.load(folder, device=str(device))
    default_batch = predict_batch_size(clf.predict_batch_size, device)
    variants = [(None, "true"), (None, "false"), (64, "true"), (256, "true")]
    for batch, parallel in variants[: args.predict_variants]:
        os.environ["TOKENIZERS_PARALLELISM"] = parallel  # read by the tokenizers library at every batch call
        clf.predict_batch_size = batch
        label = f"bertkit batch {batch or str(default_batch) + ' (default)'}, tokenizer threads {parallel}"
        measure(label, clf.predict_proba, lambda t: clf.predict_proba([t]), texts)
    clf.predict_batch_size = None
    if args.predict_fp32:  # bertkit's defaults but fp32, as the peer computes
        fp32 = TextClassifier.load(folder, device=str(device), precision="fp32")
        measure("bertkit fp32, default batch", fp32.predict_proba, lambda t: fp32.predict_proba([t]), texts)
    timings = {}
    for parallel in ("true", "false"):
        os.environ["TOKENIZERS_PARALLELISM"] = parallel
        started = time.perf_counter()
        encode(clf.tokenizer_, texts, None, clf.config_.max_length)  # tokenization alone
        timings[parallel] = time.perf_counter() - started
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    peer_rate = rows[0]["sent_per_s"]
    for row in rows:
        row["vs_pipeline_fp32"] = row["sent_per_s"] / peer_rate
    return {"rows": rows, "tokenize_only_s": timings, "default_batch": default_batch}


def trainer_run(args, device, folder: Path, train, held, seed: int) -> dict:
    """The tuned Trainer on lists of tokenized rows (the GPU machine has no ``datasets`` package)."""
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)

    def dataset(data):
        enc = tokenizer(list(data.texts), truncation=True, max_length=128)
        return [{**{k: enc[k][i] for k in enc}, "labels": int(y)} for i, y in enumerate(data.labels)]

    train_ds, held_ds = dataset(train), dataset(held)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2, dtype=torch.float32)
    common = dict(output_dir=tempfile.mkdtemp(), num_train_epochs=1, per_device_train_batch_size=32,
                  per_device_eval_batch_size=256, learning_rate=1e-4, weight_decay=0.01, warmup_steps=0.1,
                  eval_strategy="no", save_strategy="no", report_to="none", seed=seed, disable_tqdm=True,
                  logging_strategy="no", bf16=device.type == "cuda", use_cpu=device.type == "cpu",
                  optim="adamw_torch_fused")  # fmt: skip
    try:
        training_args = transformers.TrainingArguments(**common, train_sampling_strategy="group_by_length")
    except TypeError:  # transformers before train_sampling_strategy
        training_args = transformers.TrainingArguments(**common, group_by_length=True)
    trainer = transformers.Trainer(model=model, args=training_args, train_dataset=train_ds,
                                   data_collator=transformers.DataCollatorWithPadding(tokenizer))  # fmt: skip
    reset_peak(device)
    sync(device)
    started = time.perf_counter()
    result = trainer.train()
    sync(device)
    wall = time.perf_counter() - started
    memory = peak_mib(device)
    # Scored against the label_ids the Trainer returns with its predictions: with length grouping on, transformers
    # also orders the prediction batches by length, so they do not come back in the data set's order.
    predicted = trainer.predict(held_ds)
    accuracy = float((np.asarray(predicted.predictions).argmax(axis=1) == np.asarray(predicted.label_ids)).mean())
    seconds = min(result.metrics["train_runtime"], wall)
    return {"engine": "HF Trainer (tuned)", "seed": seed, "train_seconds": seconds,
            "samples_per_s": len(train_ds) / seconds, "held_out_accuracy": accuracy, "gpu_peak_mib": memory}  # fmt: skip


def bertkit_run(args, device, folder: Path, train, held, seed: int, pooling: str, graphs: bool) -> dict:
    from bertkit import TextClassifier

    clf = TextClassifier(model=str(folder), epochs=1, batch_size=32, learning_rate=1e-4, seed=seed,
                         device=str(device), classifier_pooling=pooling, cuda_graphs=graphs,
                         rdrop=0.0, progress=False)  # the Trainer's recipe: no R-Drop  # fmt: skip
    reset_peak(device)
    clf.fit(train, eval_set=held)  # the held-out set: scored after the epoch, outside the loop's clock
    seconds = sum(r["train_seconds"] for r in clf.history_)
    memory = peak_mib(device)
    accuracy = float(clf.history_[-1]["val_accuracy"])
    name = f"bertkit ({clf.config_.classifier_pooling} head{', CUDA graphs' if graphs else ''})"
    return {"engine": name, "seed": seed, "train_seconds": seconds,
            "samples_per_s": len(train) / seconds, "held_out_accuracy": accuracy, "gpu_peak_mib": memory}  # fmt: skip


def section_train(args, device, folder: Path, seeds: list[int], engines: tuple[str, ...]) -> dict:
    held, train, _ = sst2(args)

    def run_engine(engine: str, seed: int, train, held) -> dict:
        try:
            if engine == "trainer":
                return trainer_run(args, device, folder, train, held, seed)
            pooling = "cls" if engine == "bertkit-cls" else "auto"
            return bertkit_run(args, device, folder, train, held, seed, pooling, graphs=engine == "bertkit-graphs")
        except Exception as exc:  # keep the other engines' runs
            traceback.print_exc()
            return {"engine": engine, "seed": seed, "error": f"{type(exc).__name__}: {exc}"}

    # An untimed short run of every engine first: kernels loaded and chosen for these shapes, so that no engine
    # pays the process's one-time costs inside its timed run (first runs were up to 2x slower without).
    warm_train = train.subset(np.arange(min(len(train), args.warmup_rows)))
    warm_held = held.subset(np.arange(min(len(held), 256)))
    for engine in engines if args.warmup_rows else ():
        run_engine(engine, seeds[0], warm_train, warm_held)
    runs = []
    for turn, seed in enumerate(seeds):
        # The order of the engines rotates from seed to seed, so none is always first or last.
        for engine in engines[turn % len(engines) :] + engines[: turn % len(engines)]:
            run = run_engine(engine, seed, train, held)
            print(run, flush=True)
            runs.append(run)
    by: dict[str, list[dict]] = {}
    for run in runs:
        if "error" not in run:
            by.setdefault(run["engine"], []).append(run)
    summary = {
        engine: {"samples_per_s": statistics.mean(r["samples_per_s"] for r in group),
                 "held_out_accuracy": statistics.mean(r["held_out_accuracy"] for r in group), "seeds": len(group)}
        for engine, group in by.items()
    }  # fmt: skip
    peer = summary.get("HF Trainer (tuned)", {}).get("samples_per_s")
    for value in summary.values():
        value["vs_trainer"] = value["samples_per_s"] / peer if peer else None
    return {"train_rows": len(train), "held_out_rows": len(held), "runs": runs, "summary": summary}


def section_fixed(args, device, folder: Path, peak_tflops: float | None, variant: str) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification

    from bertkit.classification.objective import SequenceObjective
    from bertkit.config import TrainConfig
    from bertkit.data.encoding import Encoded
    from bertkit.engine.loop import RunOptions, fit

    length, batch = (32, 8) if args.smoke else (128, 128)
    rows = []
    for compiled in ("compile" in variant,):
        model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
        params = sum(p.numel() for p in model.parameters())
        if compiled:
            model.compile()
        rng = np.random.default_rng(0)

        def encoded(steps: int, rng=rng) -> Encoded:
            n = steps * batch
            ids = rng.integers(1000, 29000, size=n * length).astype(np.int64)
            ids[::length] = 101  # [CLS] first
            return Encoded(ids, None, np.arange(n, dtype=np.int64) * length, np.full(n, length, dtype=np.int64),
                           0, length)  # fmt: skip

        config = TrainConfig(epochs=1, batch_size=batch, learning_rate=1e-4, device=str(device),
                             cuda_graphs="graphs" in variant).resolved(batch)  # fmt: skip
        warmup = encoded(args.fixed_warmup)  # drawn before its targets, from the same generator
        warmup_objective = SequenceObjective("classification", rng.integers(0, 2, args.fixed_warmup * batch))
        fit(model, warmup, config, warmup_objective, device=device, run=RunOptions(progress=False))
        steps = args.fixed_steps
        reset_peak(device)
        timed = encoded(steps)
        objective = SequenceObjective("classification", rng.integers(0, 2, steps * batch))
        result = fit(model, timed, config, objective, device=device, run=RunOptions(progress=False))
        seconds = result.history[0]["train_seconds"]
        tokens = steps * batch * length
        tflops = 6 * params * tokens / seconds / 1e12
        row = {"variant": variant, "length": length, "batch": batch, "steps": steps,
               "params": params, "samples_per_s": steps * batch / seconds, "tflops": tflops,
               "share_of_peak": tflops / peak_tflops if peak_tflops else None, "gpu_peak_mib": peak_mib(device)}  # fmt: skip
        print(row, flush=True)
        rows.append(row)
        del model
    return {"rows": rows}


# --- report -------------------------------------------------------------------------------------------------
def report(data: dict) -> str:
    """RESULTS.md tables from a ``gpu_results.json`` (the GPU machine's files come back here to be recorded)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import markdown_table

    m = data["machine"]
    lines = [f"- machine: {m['gpu']}, {m['cpus']} CPU cores, torch {m['torch']}, transformers {m['transformers']}, "
             f"Python {m['python']}; run started {m['started']} UTC"]  # fmt: skip
    if m.get("command"):
        lines.append(f"- command: `{m['command']}`")
    if "tflops" in data.get("peak", {}):
        lines.append(f"- bf16 matrix-product peak (8192^3, median of 10): {data['peak']['tflops']:.0f} TFLOP/s")
    out = ["\n".join(lines)]
    predict = data.get("predict", {})
    if predict.get("rows"):
        rows = [{"engine": r["engine"], "sentences/s": r["sent_per_s"], "vs pipeline fp32": r["vs_pipeline_fp32"],
                 "p50 ms (1 text)": r["p50_ms"], "p95 ms": r["p95_ms"], "GPU peak MiB": r["gpu_peak_mib"]}
                for r in predict["rows"]]  # fmt: skip
        n = predict["rows"][0]["sentences"]
        out.append(f"**Prediction**, BERT-base (random weights), {n:,} SST-2 sentences, tokenization included, "
                   "best of 2 passes after a warm-up pass; latency: 200 single-text calls.\n\n" + markdown_table(rows))  # fmt: skip
    for key, title in (("train-base", "BERT-base-sized model, random initialisation (throughput; accuracy is "
                        "near the majority class after one epoch from scratch)"),
                       ("train-minilm", "pretrained all-MiniLM-L6-v2 (the real run)")):  # fmt: skip
        section = data.get(key, {})
        if not section.get("runs"):
            continue
        rows = [{"engine": r["engine"], "seed": r["seed"], "train s": r.get("train_seconds", "-"),
                 "samples/s": r.get("samples_per_s", "-"), "held-out accuracy": r.get("held_out_accuracy", "-"),
                 "GPU peak MiB": r.get("gpu_peak_mib", "-"), **({"error": r["error"]} if "error" in r else {})}
                for r in section["runs"]]  # fmt: skip
        summary = [{"engine": e, "seeds": v["seeds"], "samples/s (mean)": v["samples_per_s"],
                    "vs Trainer": v["vs_trainer"], "held-out accuracy (mean)": v["held_out_accuracy"]}
                   for e, v in section["summary"].items()]  # fmt: skip
        out.append(f"**Training, {title}**: SST-2, {section['train_rows']:,} training sentences, 1 epoch, batch 32, "
                   f"lr 1e-4, accuracy on {section['held_out_rows']:,} held-out SST-2 train sentences.\n\n"
                   + markdown_table(summary) + "\n\n" + markdown_table(rows))  # fmt: skip
    fixed = [r for key in ("fixed", "fixed-graphs", "fixed-compile", "fixed-compile-graphs")
             for r in data.get(key, {}).get("rows", [])]  # fmt: skip
    if fixed:
        rows = [{"variant": r["variant"], "samples/s": r["samples_per_s"], "TFLOP/s (6 x params x tokens)": r["tflops"],
                 "share of measured peak": r["share_of_peak"], "GPU peak MiB": r["gpu_peak_mib"]} for r in fixed]  # fmt: skip
        out.append("**Training at length 128, batch 128**, BERT-base, bertkit's loop, 30 timed steps after 3 warm-up "
                   "steps.\n\n" + markdown_table(rows))  # fmt: skip
    errors = {k: v["error"] for k, v in data.items() if isinstance(v, dict) and "error" in v}
    if errors:
        out.append("Sections that failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    return "\n\n".join(out)


# --- main ---------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "glue" / "SST-2"))
    parser.add_argument("--minilm", default=None)
    parser.add_argument("--out", default=".")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sections", default="peak,predict,train-base,train-minilm,fixed,fixed-graphs,fixed-compile")
    parser.add_argument("--train-rows", type=int, default=8000)
    parser.add_argument("--held-out", type=int, default=4000)
    parser.add_argument("--predict-rows", type=int, default=20000)
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--warmup-rows", type=int, default=640, help="untimed run per engine first (0: none)")
    parser.add_argument("--predict-variants", type=int, default=4, help="bertkit batch/thread variants to time")
    parser.add_argument("--predict-fp32", action="store_true", help="also time bertkit in fp32")
    parser.add_argument("--minilm-engines", default="trainer,bertkit,bertkit-graphs,bertkit-cls")
    parser.add_argument("--fixed-steps", type=int, default=30)
    parser.add_argument("--fixed-warmup", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny model and few rows (a check of the script)")
    parser.add_argument("--report", type=Path, help="print RESULTS.md tables of this gpu_results.json and stop")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return
    args.seeds = [int(s) for s in args.seeds.split(",")]
    if args.smoke:
        args.train_rows, args.held_out, args.predict_rows, args.latency_calls = 256, 128, 512, 5
        args.warmup_rows = min(args.warmup_rows, 64)
        args.fixed_steps, args.fixed_warmup = 3, 1

    import torch
    import transformers

    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = Results(out / "gpu_results.json")
    results.put("machine", {
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "command": "python benchmarks/gpu_speed.py " + " ".join(sys.argv[1:]),
    })  # fmt: skip
    scratch = Path(tempfile.mkdtemp(prefix="bertkit-gpu-"))
    minilm = minilm_folder(args, scratch)
    base = bert_base_folder(args, minilm, scratch)
    peak = None
    for section in args.sections.split(","):
        started = time.perf_counter()
        try:
            if section == "peak":
                value = section_peak(args, device)
                peak = value["tflops"]
            elif section == "predict":
                value = section_predict(args, device, base)
            elif section == "train-base":  # random weights: one seed, the same architecture on both sides
                value = section_train(args, device, base, args.seeds[:1], ("trainer", "bertkit", "bertkit-graphs"))
            elif section == "train-minilm":  # bertkit's default adds a mean-pooling layer; -cls: the peer's head
                engines = tuple(args.minilm_engines.split(","))
                value = section_train(args, device, minilm, args.seeds, engines)
            elif section in ("fixed", "fixed-graphs", "fixed-compile", "fixed-compile-graphs"):
                variant = section.partition("-")[2] or "eager"
                value = section_fixed(args, device, base, peak, variant)
            else:
                raise SystemExit(f"unknown section {section!r}")
        except Exception as exc:  # keep what the other sections measure
            traceback.print_exc()
            value = {"error": f"{type(exc).__name__}: {exc}"}
        value["section_seconds"] = round(time.perf_counter() - started, 1)
        results.put(section, value)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps(results.data, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
