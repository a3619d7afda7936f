"""Shared pieces of the benchmark scripts: data sets in ../shared/data, machine description, RESULTS.md."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


@dataclass
class Split:
    """train, validation (for best-epoch selection) and the split the score is reported on."""

    name: str
    train: object
    validation: object
    test: object
    test_name: str
    metric: str


def load_split(name: str, seed: int = 13) -> Split:
    from bertkit import load_data

    def hold_out(data, fraction=0.1):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(data))
        cut = int(len(data) * fraction)
        return data.subset(np.sort(order[cut:])), data.subset(np.sort(order[:cut]))

    if name == "rotten_tomatoes":
        d = SHARED / "rotten_tomatoes"
        return Split(name, load_data(d / "train.csv"), load_data(d / "validation.csv"), load_data(d / "test.csv"),
                     "test", "accuracy")  # fmt: skip
    if name == "ag_news":
        d = SHARED / "ag_news"
        return Split(name, load_data(d / "train.csv"), load_data(d / "dev.csv"), load_data(d / "test.csv"),
                     "test", "accuracy")  # fmt: skip
    if name == "mrpc":
        d = SHARED / "glue" / "MRPC"
        train, validation = hold_out(load_data(d / "train.tsv"))
        return Split(name, train, validation, load_data(d / "dev.tsv"), "dev", "f1")
    if name == "cola":
        d = SHARED / "glue" / "CoLA"
        train, validation = hold_out(load_data(d / "train.tsv"))
        return Split(name, train, validation, load_data(d / "dev.tsv"), "dev", "mcc")
    raise SystemExit(f"unknown data set {name!r}; choose rotten_tomatoes, ag_news, mrpc, cola")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        cpu = model
    except (OSError, StopIteration):
        pass
    import torch

    from bertkit.devices import cpu_has_native_bf16

    # CPUs sold under one name differ in what matters most here: native bf16 (AVX512-BF16/AMX) or not.
    bf16 = "native bf16" if cpu_has_native_bf16() else "no native bf16 (fp32 by default)"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{cpu}, {bf16}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}, "
            f"Python {platform.python_version()}")  # fmt: skip


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def append_results(title: str, table: str, notes: str = "") -> None:
    command = "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT)) if Path(sys.argv[0]).is_absolute()
                                    else sys.argv[0], *sys.argv[1:]])  # fmt: skip
    block = (
        f"\n## {title}\n\n"
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, bertkit at {REVISION} (when the run started)\n"
        f"- machine: {machine()}\n"
        f"- command: `{command}`\n\n{table}\n"
    )
    if notes:
        block += f"\n{notes}\n"
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(block)


REVISION = git_revision()
threads = os.environ.get("OMP_NUM_THREADS")
if threads:
    REVISION += f", OMP_NUM_THREADS={threads}"


def markdown_table(rows: list[dict]) -> str:
    """A Markdown table of ``rows``: every key any row has, in first-seen order; a row without one shows ''."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3g}"  # learning rates
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def timed(fn, repeats: int) -> tuple[float, object]:
    """(best seconds of ``repeats`` calls of ``fn``, the last call's result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result
