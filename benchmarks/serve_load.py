"""Load test of `bertkit serve` (dynamic micro-batching) against a naive server (one forward per request).

    python benchmarks/serve_load.py [--model DIR] [--levels 1,8,32,128] [--requests 800] [--threads 1]

Both servers run the same model folder with the same torch thread setting, one at a time, each in its own
process on 127.0.0.1 (a free port). The naive server is a FastAPI app with one model thread that calls
``predict_proba`` once per request: the same shape as bertkit's, without the batching. Clients are asyncio
tasks on keep-alive connections (as many as the concurrency level), each sending one rotten_tomatoes test sentence per request;
a level ends after a fixed number of requests (--requests; a quarter of it at concurrency 1). Prints the
table (throughput, p50/p95/p99 latency, errors, mean batch size) and appends it to RESULTS.md.

--model is a bertkit folder; without it all-MiniLM-L6-v2 is fine-tuned on 500 rotten_tomatoes rows for one
epoch into /tmp/bertkit-serve-model first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, SHARED, append_results, markdown_table  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def ensure_model(path: Path) -> Path:
    if (path / "bertkit.json").is_file():
        return path
    from bertkit import TextClassifier, load_data

    train = load_data(SHARED / "rotten_tomatoes" / "train.csv")
    TextClassifier(epochs=1, max_train_rows=500, progress=False).fit(train).save(path)
    return path


def _naive_body():
    from pydantic import BaseModel

    class NaiveBody(BaseModel):
        texts: list[str]

    return NaiveBody


# At module level: FastAPI resolves the annotation by name (this module uses postponed annotations).
NaiveBody = _naive_body() if "--naive-server" in sys.argv else None


def naive_app(folder: str, threads: int, precision: str, engine: str = "bertkit"):
    """One request, one forward pass, on one model thread (the same thread budget as bertkit's batcher).
    ``engine``: bertkit's ``predict_proba`` (torch backend), or ``pipeline`` (transformers' text-classification
    pipeline on the same folder, truncating at the model's max_length, all scores: the peer of latency.py)."""
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from fastapi import FastAPI

    from bertkit import TextClassifier

    torch.set_num_threads(threads)
    if engine == "pipeline":
        model = PipelineModel(folder)
    else:
        model = TextClassifier.load(folder, device="cpu", backend="torch")
        model.config_.precision = precision
    model.predict_proba(["warm up"])
    labels = [str(c) for c in model.classes_]
    executor = ThreadPoolExecutor(max_workers=1)
    app = FastAPI()

    @app.post("/predict")
    async def predict(body: NaiveBody) -> dict:
        rows = await asyncio.get_running_loop().run_in_executor(executor, model.predict_proba, body.texts)
        return {
            "predictions": [
                {
                    "label": labels[int(r.argmax())],
                    "score": float(r.max()),
                    "probabilities": dict(zip(labels, map(float, r), strict=True)),
                }  # fmt: skip
                for r in rows
            ]
        }

    @app.get("/ready")
    async def ready() -> dict:
        return {"status": "ready"}

    return app


class PipelineModel:
    """``transformers.pipeline`` on a bertkit folder, with ``predict_proba``/``classes_`` like the estimator's:
    fp32, truncating at the folder's max_length (the pipeline's own ``truncation=True`` keeps 512 tokens)."""

    def __init__(self, folder: str) -> None:
        import json

        import torch
        from transformers import pipeline

        config = json.loads((Path(folder) / "bertkit.json").read_text()).get("config", {})
        self.pipe = pipeline("text-classification", model=folder, device=-1, dtype=torch.float32)
        self.kwargs = {"truncation": True, "max_length": int(config.get("max_length", 128)), "top_k": None}
        id2label = self.pipe.model.config.id2label
        self.classes_ = [id2label[i] for i in range(len(id2label))]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        rows = self.pipe(list(texts), **self.kwargs)
        rows = [rows] if texts and isinstance(rows[0], dict) else rows
        return np.asarray([[{r["label"]: r["score"] for r in row}[c] for c in self.classes_] for row in rows])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def server(
    kind: str,
    folder: Path,
    threads: int,
    precision: str,
    max_batch: int,
    max_wait_ms: float,
    extra: tuple[str, ...] = (),
):
    """A server of ``kind`` (bertkit, naive, pipeline) on a free port: yields (url, pid). ``extra``: more
    `bertkit serve` options."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    if kind == "bertkit":
        command = [sys.executable, "-m", "bertkit", "serve", str(folder), "--port", str(port), "--threads",
                   str(threads), "--max-batch-size", str(max_batch), "--max-wait-ms", str(max_wait_ms),
                   "--max-queue", "100000", "--device", "cpu", "--precision", precision, *extra]  # fmt: skip
    else:
        command = [sys.executable, __file__, "--naive-server", str(port), "--model", str(folder), "--threads",
                   str(threads), "--precisions", precision,
                   "--naive-engine", "pipeline" if kind == "pipeline" else "bertkit"]  # fmt: skip
    log = open(f"/tmp/bertkit-serve-load-{kind}-{precision}.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{kind} server exited; see {log.name}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/ready").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind} server not ready after 180 s")
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class Connection:
    """One keep-alive HTTP/1.1 connection over asyncio streams: a load generator that costs far less CPU per
    request than a full client library, so it takes little from the servers on the same small machine."""

    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc) -> None:
        self.writer.close()

    async def request(self, path: str, body: object | None = None) -> tuple[int, bytes]:
        payload = b"" if body is None else json.dumps(body).encode()
        method = "GET" if body is None else "POST"
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        header = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                raise SystemExit("chunked responses are not expected from these servers")
        return int(header[9:12]), await self.reader.readexactly(length)


async def drive(url: str, texts: list[str], concurrency: int, n_requests: int, stats: bool) -> dict:
    """``n_requests`` one-text requests from ``concurrency`` clients, each on its own connection."""
    latencies: list[float] = []
    answers: dict[int, float] = {}
    errors = 0
    counter = iter(range(n_requests))

    async def client() -> None:
        nonlocal errors
        async with Connection(url) as http:
            for i in counter:
                started = time.perf_counter()
                status, data = await http.request("/predict", {"texts": [texts[i % len(texts)]]})
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
                    continue
                answers[i % len(texts)] = json.loads(data)["predictions"][0]["score"]

    async with Connection(url) as http:
        for text in texts[:20]:  # caches warm
            await http.request("/predict", {"texts": [text]})
    before = await batch_stats(url) if stats else (0.0, 0.0)
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    after = await batch_stats(url) if stats else (0.0, 0.0)
    items, batches = after[0] - before[0], after[1] - before[1]
    ms = np.asarray(latencies) * 1000
    return {
        "requests/s": n_requests / seconds,
        "p50 ms": float(np.percentile(ms, 50)),
        "p95 ms": float(np.percentile(ms, 95)),
        "p99 ms": float(np.percentile(ms, 99)),
        "errors": errors,
        "answers": answers,
        "mean batch": items / batches if batches else 1.0,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used: unlike wall time, barely moved by other
    jobs on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def batch_stats(url: str) -> tuple[float, float]:
    """(texts, batches) the bertkit server has run so far, from its /metrics."""
    async with Connection(url) as http:  # a new connection: idle ones are closed after 5 s
        text = (await http.request("/metrics"))[1].decode()

    def value(name: str) -> float:
        match = re.search(rf'^{name}\{{queue="model"\}} (\S+)$', text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    return value("bertkit_batch_size_sum"), value("bertkit_batch_size_count")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("/tmp/bertkit-serve-model"))
    parser.add_argument("--levels", default="1,8,32,128")
    parser.add_argument("--requests", type=int, default=800, help="Requests per level (a quarter at level 1).")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each server.")
    parser.add_argument("--precisions", default="fp32,bf16", help="Run the table once per precision.")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--no-record", action="store_true", help="Print only; do not append to RESULTS.md.")
    parser.add_argument("--naive-server", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--naive-engine", default="bertkit", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.naive_server is not None:
        import uvicorn

        app = naive_app(str(args.model), args.threads, args.precisions, args.naive_engine)
        uvicorn.run(app, host="127.0.0.1", port=args.naive_server,
                    log_level="warning", access_log=False)  # fmt: skip
        return

    from bertkit import load_data

    folder = ensure_model(args.model)
    texts = load_data(SHARED / "rotten_tomatoes" / "test.csv").texts
    levels = [int(x) for x in args.levels.split(",")]
    precisions = args.precisions.split(",")
    results: dict[tuple[str, str, int], dict] = {}
    for precision in precisions:
        # Both servers up at once (an idle one costs nothing); each level runs bertkit then naive back to
        # back, so that load from other jobs on the machine drifts as little as possible between the two.
        options = (folder, args.threads, precision, args.max_batch_size, args.max_wait_ms)
        with server("bertkit", *options) as bertkit, server("naive", *options) as naive:
            for level in levels:
                for kind, (url, pid) in (("bertkit", bertkit), ("naive", naive)):
                    n = max(args.requests // 4, 50) if level == 1 else args.requests
                    cpu = cpu_seconds(pid)
                    result = asyncio.run(drive(url, texts, level, n, stats=kind == "bertkit"))
                    result["cpu ms/request"] = (cpu_seconds(pid) - cpu) / n * 1000
                    result["requests"] = n
                    results[precision, kind, level] = result
                    print(f"{precision:5s} {kind:8s} c={level:4d} {result['requests/s']:8.1f} req/s  p50 "
                          f"{result['p50 ms']:7.1f} ms  p95 {result['p95 ms']:7.1f}  p99 {result['p99 ms']:7.1f}  "
                          f"batch {result['mean batch']:.1f}  errors {result['errors']}", flush=True)  # fmt: skip

    rows = []
    for precision in precisions:
        for level in levels:
            for kind in ("bertkit", "naive"):
                r = results[precision, kind, level]
                naive = results[precision, "naive", level]
                rows.append({
                    "precision": precision, "server": kind, "clients": level, "requests": r["requests"],
                    "requests/s": r["requests/s"], "vs naive": r["requests/s"] / naive["requests/s"],
                    "p50 ms": r["p50 ms"], "p95 ms": r["p95 ms"], "p99 ms": r["p99 ms"],
                    "server CPU ms/request": r["cpu ms/request"], "mean batch": r["mean batch"],
                    "errors": r["errors"],
                })  # fmt: skip
    # Same model, same texts, same precision: the two servers must agree on every answer both gave (at the
    # highest level, where bertkit's answers come from merged, padded batches).
    differences = []
    for precision in precisions:
        top = levels[-1]
        a, b = results[precision, "bertkit", top]["answers"], results[precision, "naive", top]["answers"]
        shared = set(a) & set(b)
        worst = max((abs(a[i] - b[i]) for i in shared), default=float("nan"))
        differences.append(f"{precision} {worst:.1e} over {len(shared)} texts")
    agreement = "; ".join(differences)
    table = markdown_table(rows)
    print(table)
    print(f"largest score difference bertkit vs naive: {agreement}")
    notes = (
        f"Model: {folder} (bertkit.json: {_describe(folder)}). One rotten_tomatoes test sentence per request "
        f"(1,066 sentences, cycled); every level ends after a fixed number of requests (a quarter at 1 client). "
        f"Both servers run on 127.0.0.1, each in its own process, with torch threads = {args.threads}, "
        f"one model thread each; bertkit: `--max-batch-size {args.max_batch_size} --max-wait-ms "
        f"{args.max_wait_ms:g}` and its default forward batch (the whole merged batch for a BERT classifier, "
        f"which runs bertkit's packed forward; 8 length-sorted texts per pass otherwise); naive: the same "
        f"FastAPI + uvicorn stack, one `predict_proba` per request. Levels alternate between the two servers. The client (asyncio streams, "
        f"keep-alive connections) ran on the same machine. `mean batch`: texts per merged batch. `server CPU "
        f"ms/request`: the server process's CPU time (all threads, from /proc) over the level divided by its "
        f"requests, which the other jobs on the machine move much less than wall time. Largest score "
        f"difference between the two servers' answers to the same texts at {levels[-1]} clients: {agreement}."
    )
    if not args.no_record:
        append_results("Serving under load: bertkit serve (micro-batching) vs one forward per request", table, notes)


def _describe(folder: Path) -> str:
    import json

    meta = json.loads((folder / "bertkit.json").read_text())
    config = meta.get("config", {})
    return f"base {config.get('model')}, {meta.get('n_train_rows')} training rows, {config.get('epochs')} epoch(s)"


if __name__ == "__main__":
    main()
