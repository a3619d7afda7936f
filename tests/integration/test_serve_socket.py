"""The service over a real loopback socket (uvicorn in a thread, or ``bertkit serve`` in a subprocess):
concurrent callers each get their own answers, a bad item fails alone, a full queue answers 503, a soak of
mixed good and bad requests loses nothing, shutdown lets in-flight requests finish, and the CLI's server
answers every endpoint."""

from __future__ import annotations

import asyncio
import random
import re
import socket
import threading
import time
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="bertkit serve needs the serve extra")

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from helpers import NEGATIVE, NEUTRAL, POSITIVE, live_server  # noqa: E402

from bertkit import DataError, TextClassifier  # noqa: E402
from bertkit.serving import ServeSettings, create_app  # noqa: E402
from bertkit.serving.service import ModelService  # noqa: E402


def random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = POSITIVE + NEGATIVE + NEUTRAL
    return [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(n)]


@pytest.fixture(scope="module")
def classifier(tiny_classifier) -> TextClassifier:
    return TextClassifier.load(tiny_classifier, device="cpu")


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


def test_concurrent_clients_each_get_their_own_answers(tiny_classifier, classifier):
    pool = random_texts(300, seed=1)
    expected = dict(zip(pool, classifier.predict_proba(pool)[:, 1], strict=True))
    assert len(set(np.round(list(expected.values()), 4))) > 50  # answers differ by far more than the tolerance

    async def client(url: str, seed: int) -> list[tuple[list[str], list[float]]]:
        rng = random.Random(seed)
        seen = []
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for _ in range(5):
                texts = rng.sample(pool, rng.randint(1, 4))
                response = await http.post("/predict", json={"texts": texts})
                assert response.status_code == 200, response.text
                seen.append((texts, [p["probabilities"]["positive"] for p in response.json()["predictions"]]))
        return seen

    async def clients(url: str):
        return await asyncio.gather(*(client(url, seed) for seed in range(32)))

    settings = ServeSettings(max_batch_size=32, max_wait_ms=10, device="cpu")
    with live_server(create_app(tiny_classifier, settings)) as url:
        answers = asyncio.run(clients(url))
        metrics = httpx.get(url + "/metrics").text
    n_items = 0
    for seen in answers:
        for texts, positives in seen:
            n_items += len(texts)
            assert positives == pytest.approx([expected[t] for t in texts], abs=1e-5)
    # Merged: far fewer forward passes than requests (32 x 8); every item computed exactly once.
    assert metric(metrics, 'bertkit_batch_size_sum{queue="model"}') == n_items
    assert metric(metrics, 'bertkit_batch_size_count{queue="model"}') < 32 * 5 / 2


def test_a_bad_item_fails_only_its_own_request(tiny_classifier, classifier):
    settings = ServeSettings(max_batch_size=64, max_wait_ms=50, device="cpu")
    service = ModelService(tiny_classifier, settings)
    service.load()
    run = service.model.run

    def picky(items):  # a model that cannot take one particular input
        if any("poison" in text for text, _ in items):
            raise DataError("item: the model cannot take 'poison'")
        return run(items)

    service.model.run = picky
    good = random_texts(24, seed=2)
    expected = classifier.predict_proba(good)[:, 1]

    async def send(url):
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            requests = [http.post("/predict", json={"texts": [t]}) for t in good]
            requests[5:5] = [http.post("/predict", json={"texts": ["good", "poison pill"]})]
            return await asyncio.gather(*requests)

    with live_server(create_app(tiny_classifier, settings, service=service)) as url:
        responses = asyncio.run(send(url))
        batches = metric(httpx.get(url + "/metrics").text, 'bertkit_batch_size_count{queue="model"}')
    bad = responses.pop(5)
    assert bad.status_code == 422 and bad.json()["detail"] == "item: the model cannot take 'poison'"
    assert [r.status_code for r in responses] == [200] * len(good)
    got = [r.json()["predictions"][0]["probabilities"]["positive"] for r in responses]
    assert got == pytest.approx(list(expected), abs=1e-5)
    assert batches < len(good)  # the poisoned request did share batches with the others


class Gate:
    """Holds the model's batches until released, so a test decides when the model runs."""

    def __init__(self, service: ModelService) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        run = service.model.run

        def gated(items):
            self.started.set()
            assert self.release.wait(30), "the test never released the model"
            return run(items)

        service.model.run = gated


async def until(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the server"
        await asyncio.sleep(0.005)


def loaded_service(folder, settings: ServeSettings) -> ModelService:
    service = ModelService(folder, settings)
    service.load()
    return service


def test_a_full_queue_answers_503_with_retry_after(tiny_classifier):
    settings = ServeSettings(max_batch_size=64, max_queue=4, max_texts=2, device="cpu")
    service = loaded_service(tiny_classifier, settings)
    batcher_depth = lambda: service.batchers["model"].depth  # noqa: E731

    async def scenario(url, gate):
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            post = lambda: asyncio.ensure_future(http.post("/predict", json={"texts": ["a", "b"]}))  # noqa: E731
            running = post()
            await until(gate.started.is_set)  # its batch holds the model
            queued = [post(), post()]
            await until(lambda: batcher_depth() == 4)  # the queue is full
            refused = [await http.post("/predict", json={"texts": ["c"]}) for _ in range(3)]
            gate.release.set()
            return [await running, *await asyncio.gather(*queued)], refused

    with live_server(create_app(tiny_classifier, settings, service=service)) as url:
        answered, refused = asyncio.run(scenario(url, Gate(service)))
        after = httpx.post(url + "/predict", json={"texts": ["fine again"]})
    assert [r.status_code for r in answered] == [200] * 3
    assert [r.status_code for r in refused] == [503] * 3
    assert refused[0].headers["retry-after"] == "1"
    assert refused[0].json()["detail"] == (
        "the server is busy: 4 texts are already waiting (--max-queue 4); retry shortly"
    )
    assert after.status_code == 200


SOAK_KINDS = {
    # kind: (path, status it must get)
    "texts": ("/predict", 200),
    "pairs": ("/predict", 422),  # the model was trained on single texts: pairs are refused (issue 19, 10a)
    "embed": ("/embed", 200),
    "wrong type": ("/predict", 422),
    "empty text": ("/predict", 422),
    "too many": ("/predict", 413),
    "too long": ("/predict", 413),
    "malformed": ("/predict", 422),
    "unknown field": ("/predict", 422),
    "wrong kind": ("/qa", 404),
}


def soak_request(kind: str, rng: random.Random, pool: list[str]) -> tuple[str, dict]:
    texts = rng.sample(pool, rng.randint(1, 3))
    body = {
        "texts": {"json": {"texts": texts}},
        "pairs": {"json": {"pairs": [[texts[0], pool[0]]]}},
        "embed": {"json": {"texts": texts}},
        "wrong type": {"json": {"texts": [texts[0], 7]}},
        "empty text": {"json": {"texts": [texts[0], " "]}},
        "too many": {"json": {"texts": [texts[0]] * 9}},
        "too long": {"json": {"texts": ["x" * 201]}},
        "malformed": {"content": b'{"texts": ["a"', "headers": {"content-type": "application/json"}},
        "unknown field": {"json": {"texts": texts, "folder": "/tmp"}},
        "wrong kind": {"json": {"questions": texts}},
    }[kind]
    return SOAK_KINDS[kind][0], body


def test_soak_of_mixed_good_and_bad_requests_loses_nothing(tiny_classifier, classifier):
    pool = random_texts(200, seed=3)
    expected = dict(zip(pool, classifier.predict_proba(pool)[:, 1], strict=True))
    n_requests, concurrency = 2000, 24
    rng = random.Random(4)
    plan = [rng.choice(list(SOAK_KINDS)) for _ in range(n_requests)]
    outcomes: list[tuple[str, int, dict]] = []

    async def worker(url: str, queue: asyncio.Queue) -> None:
        local = random.Random(id(queue) % 1000)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            while not queue.empty():
                kind = queue.get_nowait()
                path, request = soak_request(kind, local, pool)
                response = await http.post(path, **request)
                outcomes.append((kind, response.status_code, request.get("json"), response.json()))

    async def soak(url: str) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        for kind in plan:
            queue.put_nowait(kind)
        await asyncio.gather(*(worker(url, queue) for _ in range(concurrency)))

    settings = ServeSettings(max_batch_size=32, max_wait_ms=5, max_texts=8, max_chars=200, device="cpu")
    started = time.monotonic()
    with live_server(create_app(tiny_classifier, settings)) as url:
        asyncio.run(soak(url))
        health, ready = httpx.get(url + "/health"), httpx.get(url + "/ready")
        metrics = httpx.get(url + "/metrics").text
    seconds = time.monotonic() - started
    assert len(outcomes) == n_requests  # nothing lost
    assert Counter(kind for kind, *_ in outcomes) == Counter(plan)
    for kind, status, body, answer in outcomes:
        assert status == SOAK_KINDS[kind][1], (kind, status, answer)
        if kind == "texts":
            got = [p["probabilities"]["positive"] for p in answer["predictions"]]
            assert got == pytest.approx([expected[t] for t in body["texts"]], abs=1e-5)
        elif kind == "embed":
            assert len(answer["embeddings"]) == len(body["texts"])
        elif status != 200:
            assert isinstance(answer["detail"], str) and answer["detail"]
    assert health.status_code == 200 and ready.status_code == 200
    answered = sum(float(v) for v in re.findall(r'^bertkit_requests_total\{endpoint="/(?:predict|embed|qa)".*\} (\S+)$',
                                                metrics, re.MULTILINE))  # fmt: skip
    assert answered == n_requests
    assert metric(metrics, 'bertkit_queue_depth{queue="model"}') == 0
    assert seconds < 120


def test_shutdown_lets_in_flight_requests_finish(tiny_classifier):
    settings = ServeSettings(device="cpu")
    service = loaded_service(tiny_classifier, settings)
    holder = {}

    async def in_flight(url, gate):
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            requests = [asyncio.ensure_future(http.post("/predict", json={"texts": [f"text {i}"]})) for i in range(4)]
            await until(lambda: gate.started.is_set() and service.in_flight["model"] == 4)
            holder["server"].should_exit = True  # what uvicorn's SIGINT/SIGTERM handler does
            await asyncio.sleep(0.3)  # the server is shutting down now, with all four requests in flight
            gate.release.set()
            return await asyncio.gather(*requests)

    with live_server(create_app(tiny_classifier, settings, service=service), holder) as url:
        responses = asyncio.run(in_flight(url, Gate(service)))
        holder["thread"].join(30)
        assert not holder["thread"].is_alive()
    assert [r.status_code for r in responses] == [200] * 4
    assert all(len(r.json()["predictions"]) == 1 for r in responses)
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/health")


def test_serve_command_binds_loopback_and_serves_every_endpoint(tiny_classifier, monkeypatch, capsys):
    from bertkit.cli import main

    calls = []

    def run(server, sockets=None):  # instead of serving: record, and say what a listening server says
        calls.append((server.config, [sock.getsockname() for sock in sockets]))
        server.on_listening()

    monkeypatch.setenv("BERTKIT_TEST_KEY", "k3y")
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with monkeypatch.context() as patched:  # live_server below runs uvicorn for real
        patched.setattr(uvicorn.Server, "run", run)
        main(["serve", str(tiny_classifier), "--port", str(port), "--max-batch-size", "4", "--api-key-env",
              "BERTKIT_TEST_KEY", "--device", "cpu"])  # fmt: skip
    ((config, bound),) = calls
    assert bound == [("127.0.0.1", port)]  # bound by bertkit before the model loaded, handed to uvicorn
    assert (config.log_level, config.access_log, config.timeout_graceful_shutdown) == ("info", False, 30.0)
    assert f"serving text-classification from {tiny_classifier} on http://127.0.0.1:{port}/" in capsys.readouterr().err
    app = config.app
    key = {"X-API-Key": "k3y"}
    with live_server(app, headers=key) as url:
        assert httpx.get(url + "/health").status_code == 200
        assert httpx.post(url + "/predict", json={"texts": ["great"]}).status_code == 401
        predict = httpx.post(url + "/predict", json={"texts": ["great"], "top_k": 2}, headers=key)
        assert set(predict.json()["predictions"][0]["probabilities"]) == {"negative", "positive"}
        assert len(httpx.post(url + "/embed", json={"texts": ["a", "b"]}, headers=key).json()["embeddings"]) == 2
        for path in ("/info", "/metrics", "/", "/docs", "/openapi.json"):
            assert httpx.get(url + path, headers=key).status_code == 200, path
        assert httpx.post(url + "/tag", json={"texts": ["a"]}, headers=key).status_code == 404


def test_serve_on_a_port_in_use_says_so_in_one_line_before_loading(tiny_classifier, monkeypatch, capsys):
    # Issue 19: the model loaded, "serving" was printed, then uvicorn failed to bind and exited with code 3.
    from bertkit.cli import main

    loads = []
    monkeypatch.setattr(ModelService, "load", lambda self: loads.append(self.folder))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["serve", str(tiny_classifier), "--port", str(port), "--device", "cpu"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        f"error: --port {port}: port {port} on 127.0.0.1 is in use (choose another with --port)"
    )
    assert "serving" not in err and not loads


def test_serve_says_serving_only_once_the_port_accepts_connections(tiny_classifier, monkeypatch):
    import importlib

    from bertkit.cli import main

    cli_app = importlib.import_module("bertkit.cli.app")  # the module: bertkit.cli.app is also the Typer app

    with socket.socket() as probe:  # a free port (the kernel picks it; released at once for the server)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    said, servers = [], []

    def say(message: str) -> None:
        if message.startswith("serving"):  # can a client connect at the moment the line is printed?
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                said.append("accepting")
            except OSError as exc:
                said.append(f"refused: {exc}")

    monkeypatch.setattr(cli_app, "say", say)
    startup = uvicorn.Server.startup

    async def recorded(self, sockets=None):
        servers.append(self)
        await startup(self, sockets=sockets)

    monkeypatch.setattr(uvicorn.Server, "startup", recorded)
    thread = threading.Thread(target=main, args=(["serve", str(tiny_classifier), "--port", str(port),
                                                  "--device", "cpu"],), daemon=True)  # fmt: skip
    thread.start()
    deadline = time.monotonic() + 60
    while not said:
        assert thread.is_alive() and time.monotonic() < deadline, "bertkit serve never said it was serving"
        time.sleep(0.01)
    assert said == ["accepting"]
    assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    servers[0].should_exit = True
    thread.join(30)
    assert not thread.is_alive()
