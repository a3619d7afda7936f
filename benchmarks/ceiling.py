"""The most any CPU engine can gain over the peer here: the CPU's measured matrix-product peak set against the
arithmetic that bertkit and the peer each have to do, with the peer's speed measured in the same run.

    python benchmarks/ceiling.py [--max-length 128] [--repeats 3] [--no-write]

Matrix products are most of the time of every engine here (a profile of a training step: 67%), so:
1. the CPU's best matrix-product rate is measured on the model's own layer shapes and a large square:
   fp32 through torch and ONNX Runtime, int8 through ONNX Runtime's dynamic int8 MatMul (what
   ``bertkit export --quantize int8`` writes);
2. the peers are timed: ``transformers.pipeline`` (batch 32) on rotten_tomatoes test and IMDb reviews, and the
   tuned ``transformers.Trainer`` (batch 32, length grouping) on 320 rotten_tomatoes train rows;
3. the matrix-product arithmetic per sentence is counted from the tokenized data: bertkit's packed forward
   (length-sorted batches of 64, dense layers on real tokens only, last layer on [CLS] only) and, for training,
   three such forwards per example (forward and backward) on length-grouped batches of 32;
4. the ceiling is the ratio bertkit would reach if its matrix products ran at the measured peak and everything
   else (attention softmax, LayerNorm, GELU, dropout, optimizer, tokenization, Python) cost nothing.

A target above its ceiling cannot be met on this CPU without doing less arithmetic than the model needs.

With --model DIR (a bertkit classifier folder with its ONNX graphs, as `bertkit train` writes them) the peer
and bertkit run that folder's model, and bertkit itself is timed in the same run on the same texts: the torch
backend in fp32 and ONNX fp32 (set against the fp32 ceiling) and ONNX int8 (against the int8 ceiling), batch
64, after a warm-up, best of --repeats; "of ceiling" is the measured ratio over the ceiling ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SHARED, append_results, markdown_table, timed  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TOKENS = 8192  # rows of each timed product: 64 IMDb windows of 128 tokens


def best_rate(run, flops: float, repeats: int) -> float:
    """Best GFLOP/s of ``run`` over ``repeats`` timed calls, after one warm-up call."""
    run()
    best = min(_timed(run) for _ in range(repeats))
    return flops / best / 1e9


def _timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def torch_peak(shapes: list[tuple[int, int, int]], repeats: int) -> float:
    import torch

    rates = []
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        rates.append(best_rate(lambda a=a, b=b: torch.mm(a, b), 2 * m * k * n, repeats))
    return max(rates)


def onnx_peak(shapes: list[tuple[int, int, int]], repeats: int, int8: bool) -> float:
    """ONNX Runtime on a one-MatMul graph per shape; with ``int8`` quantized as bertkit's export quantizes."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        for m, k, n in shapes:
            weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((k, n), np.float32), "w")
            graph = helper.make_graph(
                [helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
                [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
                [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])], [weight],
            )  # fmt: skip
            path = Path(tmp) / f"mm{k}x{n}.onnx"
            onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
            if int8:
                quantized = path.with_suffix(".int8.onnx")
                quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
                path = quantized
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            x = np.random.default_rng(1).standard_normal((m, k), np.float32)
            rates.append(best_rate(lambda s=session, x=x: s.run(None, {"x": x}), 2 * m * k * n, repeats))
    return max(rates)


def dense_per_token(hidden: int, intermediate: int) -> int:
    """FLOPs of one encoder layer's matrix products for one token: Q, K, V, attention output, FFN in and out."""
    return 2 * (4 * hidden * hidden + 2 * hidden * intermediate)


def forward_flops(lengths: np.ndarray, batches: list[np.ndarray], cfg, packed: bool) -> float:
    """Matrix-product FLOPs of a forward over ``batches`` (index arrays into ``lengths``).

    Unpacked (the Hugging Face forward): every position of each padded batch through every layer.
    Packed (bertkit's inference forward): dense layers on real tokens; the last layer computes keys and values
    for every token but queries, attention output and FFN for [CLS] alone; attention on the padded grid."""
    h, i, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    total = 0.0
    for index in batches:
        rows, width = len(index), int(lengths[index].max())
        grid = rows * width
        attention = 4 * rows * width * width * h  # Q K^T and probabilities x V, every query
        if packed:
            real = int(lengths[index].sum())
            total += (layers - 1) * (real * dense_per_token(h, i) + attention)
            total += real * 2 * 2 * h * h + rows * (2 * (2 * h * h + 2 * h * i) + 4 * width * h)
        else:
            total += layers * (grid * dense_per_token(h, i) + attention)
        total += rows * 2 * h * h  # pooler
    return total


def bertkit_rates(folder: Path, texts: list[str], repeats: int) -> dict[str, float]:
    """Texts/s of bertkit's torch (fp32), ONNX and ONNX int8 backends on ``folder``, batch 64 (the CPU
    default), after a warm-up on 128 texts; best of ``repeats``."""
    from bertkit import TextClassifier

    rates = {}
    for engine in ("torch", "onnx", "onnx-int8"):
        model = TextClassifier.load(folder, device="cpu", backend=engine, precision="fp32")
        model.predict_proba(texts[:128])
        seconds, _ = timed(lambda m=model: m.predict_proba(texts), repeats)
        rates["torch fp32" if engine == "torch" else engine] = len(texts) / seconds
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, default=None, help="A bertkit folder: also time bertkit on it.")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import torch
    from train_speed import data, worker_trainer
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from bertkit import load_data
    from bertkit.data.encoding import training_batches
    from bertkit.models.checkpoints import resolve_checkpoint

    path = str(args.model) if args.model else resolve_checkpoint("minilm")
    cfg = AutoConfig.from_pretrained(path)
    h, i = cfg.hidden_size, cfg.intermediate_size
    shapes = [(TOKENS, h, i), (TOKENS, i, h), (TOKENS, h, 3 * h), (2048, 2048, 2048)]
    fp32_peak = max(torch_peak(shapes, args.repeats), onnx_peak(shapes, args.repeats, int8=False))
    int8_peak = onnx_peak(shapes, args.repeats, int8=True)
    print(f"peak matrix products: fp32 {fp32_peak:.1f} GFLOP/s, int8 {int8_peak:.1f} GOP/s", flush=True)

    tokenizer = AutoTokenizer.from_pretrained(path)
    # head weights do not set speed; fp32 on every CPU (the peer's default dtype may follow the checkpoint's)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, dtype=torch.float32)
    peer = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu")
    sets = {
        "rotten_tomatoes test": load_data(SHARED / "rotten_tomatoes" / "test.csv").texts,
        "imdb reviews500": load_data(SHARED / "imdb" / "reviews500.csv").texts,
    }
    rows = []
    for name, texts in sets.items():
        seconds, _ = timed(lambda t=texts: peer(t, batch_size=32, truncation=True, max_length=args.max_length),
                           args.repeats)  # fmt: skip
        peer_rate = len(texts) / seconds
        lengths = np.array([len(x) for x in tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]])
        in_order = [np.arange(s, min(s + 32, len(texts))) for s in range(0, len(texts), 32)]
        by_length = np.argsort(lengths, kind="stable")
        sorted_batches = [by_length[s : s + 64] for s in range(0, len(texts), 64)]
        peer_flops = forward_flops(lengths, in_order, cfg, packed=False) / len(texts)
        ours_flops = forward_flops(lengths, sorted_batches, cfg, packed=True) / len(texts)
        measured = bertkit_rates(args.model, texts, args.repeats) if args.model else {}
        for precision, peak, target in (("fp32", fp32_peak, 3.0), ("int8", int8_peak, 6.0)):
            ceiling = peak * 1e9 / ours_flops
            row = {
                "work": f"predict {name}", "peer": "pipeline", "peer /s": peer_rate,
                "peer GFLOP/s achieved": peer_rate * peer_flops / 1e9, "bertkit MFLOP per text": ours_flops / 1e6,
                "precision": precision, "peak GFLOP/s": peak, "bertkit /s at peak": ceiling,
                "ceiling vs peer": ceiling / peer_rate, "target": target,
            }  # fmt: skip
            engines = [e for e in measured if (e == "onnx-int8") == (precision == "int8")]
            for engine in engines or [None]:
                if engine is not None:
                    ratio = measured[engine] / peer_rate
                    row = {**row, "bertkit engine": engine, "bertkit /s": measured[engine],
                           "measured vs peer": ratio, "of ceiling": ratio / (ceiling / peer_rate)}  # fmt: skip
                rows.append(row)
                print(row, flush=True)

    train_rows = 320
    trainer = worker_trainer(argparse.Namespace(rows=train_rows, seed=1, epochs=1, batch_size=32,
                                                learning_rate=1e-4, precision="fp32"))  # fmt: skip
    train, _ = data(train_rows, 1)
    lengths = np.array(
        [len(x) for x in tokenizer(train.texts, truncation=True, max_length=args.max_length)["input_ids"]]
    )
    batches = training_batches(lengths, 32, np.random.default_rng(1))
    # the peer pads every batch; bertkit's floor is a packed forward and backward (what a packed training step
    # would do), so the ceiling is generous to bertkit
    peer_flops = 3 * forward_flops(lengths, batches, cfg, packed=False) / train_rows
    step_flops = 3 * forward_flops(lengths, batches, cfg, packed=True) / train_rows
    ceiling = fp32_peak * 1e9 / step_flops
    rows.append({
        "work": "train rotten_tomatoes (320 rows, batch 32)", "peer": "Trainer", "peer /s": trainer["samples_per_s"],
        "peer GFLOP/s achieved": trainer["samples_per_s"] * peer_flops / 1e9,
        "bertkit MFLOP per text": step_flops / 1e6, "precision": "fp32", "peak GFLOP/s": fp32_peak,
        "bertkit /s at peak": ceiling, "ceiling vs peer": ceiling / trainer["samples_per_s"], "target": 1.5,
    })  # fmt: skip
    table = markdown_table(rows)
    print(table)
    if not args.no_write:
        append_results(
            "Ceiling: the CPU's matrix-product peak against the arithmetic of each job",
            table,
            f"Threads: torch {torch.get_num_threads()}, ONNX Runtime default. max_length {args.max_length}. The "
            "peer's GFLOP/s counts the arithmetic it does (every padded position); bertkit's count is the packed "
            "forward's, and 3 packed forwards per example for training (less than bertkit's loop does today). 'ceiling vs "
            "peer' assumes bertkit's matrix products at the measured peak and everything else free.",
        )


if __name__ == "__main__":
    main()
