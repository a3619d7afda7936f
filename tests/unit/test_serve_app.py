"""The HTTP service through FastAPI's test client, on a tiny classifier trained in-process."""

from __future__ import annotations

import base64
import json
import shutil
import time

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="bertkit serve needs the serve extra")

from fastapi.testclient import TestClient  # noqa: E402
from helpers import sentiment_examples  # noqa: E402

from bertkit import ModelLoadError, TextClassifier, TextEmbedder  # noqa: E402
from bertkit.cli import main  # noqa: E402
from bertkit.serving import ServeSettings, create_app  # noqa: E402
from bertkit.serving.service import ModelService  # noqa: E402

TEXTS = ["a great and wonderful film", "dull", "the plot was boring and the acting weak", "lovely music"]


def wait_ready(client: TestClient, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, client.get("/ready").json()
        time.sleep(0.02)


@pytest.fixture(scope="module")
def classifier(tiny_classifier) -> TextClassifier:
    return TextClassifier.load(tiny_classifier, device="cpu")


@pytest.fixture(scope="module")
def client(tiny_classifier):
    app = create_app(tiny_classifier, ServeSettings(max_texts=8, max_chars=200, device="cpu"))
    with TestClient(app) as client:
        wait_ready(client)
        yield client


def test_predict_matches_the_estimator_in_input_order(client, classifier):
    response = client.post("/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    expected = classifier.predict_proba(TEXTS)
    assert len(predictions) == len(TEXTS)
    assert np.ptp(expected[:, 1]) > 1e-3  # the texts get different answers, so a mix-up would show
    for row, prediction in zip(expected, predictions, strict=True):
        assert list(prediction["probabilities"]) == ["negative", "positive"]  # the model's label order
        assert np.allclose(list(prediction["probabilities"].values()), row, atol=1e-5)
        assert prediction["label"] == classifier.classes_[int(row.argmax())]
        assert prediction["score"] == pytest.approx(row.max(), abs=1e-5)


def test_predict_top_k_and_pairs_refused_by_a_single_text_model(client, classifier):
    texts = ["a great film", "boring"]
    predictions = client.post("/predict", json={"texts": texts, "top_k": 1}).json()["predictions"]
    expected = classifier.predict_proba(texts)
    for row, prediction in zip(expected, predictions, strict=True):
        best = classifier.classes_[int(row.argmax())]
        assert prediction["probabilities"] == {best: pytest.approx(row.max(), abs=1e-5)}
        assert prediction["label"] == best
    # trained on single texts (bertkit.json text_pair: false): pairs are refused, not answered (issue 19, 10a);
    # a pair model answering pairs: tests/unit/test_model_folders.py
    response = client.post("/predict", json={"pairs": [["a great film", "the acting was weak"]], "top_k": 1})
    assert response.status_code == 422 and "trained on single texts, not pairs" in response.json()["detail"]


def test_embed_matches_text_embedder(client, tiny_classifier):
    body = client.post("/embed", json={"texts": TEXTS[:2], "normalize": True}).json()
    expected = (
        TextEmbedder(str(tiny_classifier), max_length=32, normalize=True, device="cpu").fit().transform(TEXTS[:2])
    )
    assert body["dimension"] == expected.shape[1] == 32
    assert np.allclose(np.asarray(body["embeddings"]), expected, atol=1e-5)


def test_info_health_ready_docs_and_page(client):
    info = client.get("/info").json()
    assert info["kind"] == "text-classification" and info["task"] == "classification"
    assert info["labels"] == ["negative", "positive"]
    assert info["endpoints"] == ["/predict", "/embed"]
    assert info["model"]["max_length"] == 32 and "accuracy" in info["model"]["validation_metrics"]
    assert client.get("/health").json() == {"status": "ok", "detail": None}
    assert client.get("/ready").json()["status"] == "ready"
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/embed", "/health", "/ready", "/info", "/metrics"} <= set(schema["paths"])
    assert "/qa" not in schema["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and 'id="bars"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN


def test_metrics_count_requests_batches_and_queue(client):
    client.post("/predict", json={"texts": TEXTS})
    text = client.get("/metrics").text
    assert 'bertkit_requests_total{endpoint="/predict",status="200"}' in text
    assert 'bertkit_request_seconds_bucket{endpoint="/predict",le="0.5"}' in text
    assert 'bertkit_batch_size_bucket{le="4.0",queue="model"}' in text
    assert 'bertkit_queue_depth{queue="model"} 0.0' in text
    assert "bertkit_ready 1.0" in text


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"texts": ["ok"] * 9}, 413, r"texts: 9 items in one request; the limit is 8 \(--max-texts\)"),
        ({"texts": ["ok", "x" * 201]}, 413, r"texts\[1\]: 201 characters; the limit is 200 per text \(--max-chars\)"),
        ({"pairs": [["ok", "  "]]}, 422, r"pairs\[0\]\[1\]: the text is empty"),
        ({"texts": ["ok", "\u200b\ufeff\x00"]}, 422, r"texts\[1\]: the text is empty"),
        ({"texts": ["ok", 3]}, 422, r"body\.texts\.1: Input should be a valid string"),
        ({"texts": "just one string"}, 422, r"body\.texts: Input should be a valid list"),
        ({"texts": []}, 422, r"body\.texts: List should have at least 1 item"),
        ({"texts": ["a"], "pairs": [["a", "b"]]}, 422, r"give either 'texts' .* or 'pairs'"),
        ({}, 422, r"give either 'texts'"),
        ({"texts": None}, 422, r"'texts' is null; give 'texts' \(a list of strings\) or 'pairs'"),
        ({"texts": ["a"], "top_k": 0}, 422, r"body\.top_k: Input should be greater than or equal to 1"),
        ({"texts": ["a"], "model": "/etc/passwd"}, 422, r"body\.model: Extra inputs are not permitted"),
        ({"pairs": [["only one"]]}, 422, r"body\.pairs\.0"),
    ],
)
def test_bad_requests_get_a_clear_message(client, body, status, message):
    response = client.post("/predict", json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    import re

    assert re.search(message, response.json()["detail"]), response.json()["detail"]


def test_malformed_json_and_oversized_bodies(client):
    response = client.post("/predict", content=b'{"texts": [', headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("the request body is not valid JSON")
    huge = json.dumps({"texts": ["x" * 100_000]}).encode()
    response = client.post("/predict", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "bytes is larger than the limit of" in response.json()["detail"]
    assert "(set by --max-texts and --max-chars)" in response.json()["detail"]
    # A chunked body has no Content-Length: its bytes are counted as they arrive, and it is refused the same.
    chunks = (b'{"texts": ["' if i == 0 else b"x" * 10_000 for i in range(20))
    response = client.post("/predict", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["detail"].startswith("the request body is larger than the limit of")
    assert client.post("/predict", json={"texts": ["still fine"]}).status_code == 200
    response = client.post("/predict", content=b'{"texts": ["a \xff b"]}', headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["detail"].startswith("the request body could not be read")
    assert client.get("/no-such-path").status_code == 404  # other HTTP errors keep FastAPI's answer
    # The limit allows what --max-texts and --max-chars allow, however the JSON is escaped (12 bytes an emoji).
    escaped = json.dumps({"texts": ["\U0001f3ac" * 200] * 8}, ensure_ascii=True).encode()
    response = client.post("/predict", content=escaped, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def test_endpoints_of_other_model_kinds_say_what_the_folder_holds(client):
    for route, needs in (("/qa", "a question-answering model"), ("/tag", "a token-classification model")):
        response = client.post(route, json={"texts": ["a"]})
        assert response.status_code == 404
        assert response.json()["detail"] == f"this model folder holds a text classifier; {route} needs {needs}"


def test_a_request_timeout_gives_504(tiny_classifier):
    settings = ServeSettings(request_timeout_s=0.05, device="cpu")
    service = ModelService(tiny_classifier, settings)
    service.load()
    with TestClient(create_app(tiny_classifier, settings, service=service)) as client:
        wait_ready(client)
        run = service.model.run
        service.model.run = lambda items: (time.sleep(0.5), run(items))[1]  # a model slower than the timeout
        response = client.post("/predict", json={"texts": ["slow"]})
        assert response.status_code == 504
        assert response.json()["detail"] == "the request was not answered within 0.05 s (--timeout)"
        service.model.run = run
        time.sleep(0.6)  # the timed-out batch finishes; then the service answers in time again
        assert client.post("/predict", json={"texts": ["fast again"]}).status_code == 200


def test_not_ready_gives_503_with_retry_after(tiny_classifier):
    app = create_app(tiny_classifier, ServeSettings(device="cpu"))
    # Without the lifespan (no `with`) the model never loads: the state right after start.
    client = TestClient(app)
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "loading"
    response = client.post("/predict", json={"texts": ["a"]})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"


def test_api_key_guards_every_endpoint_but_health(tiny_classifier):
    settings = ServeSettings(api_key="s3cret-key", device="cpu")
    assert "s3cret" not in repr(settings)
    app = create_app(tiny_classifier, settings)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        for method, path in [("get", "/ready"), ("get", "/info"), ("get", "/metrics"), ("get", "/"),
                             ("get", "/docs"), ("get", "/openapi.json"), ("post", "/predict"), ("post", "/embed"),
                             ("post", "/qa"), ("get", "/nowhere")]:  # fmt: skip
            for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer s3cret-ke"}):
                response = getattr(client, method)(path, headers=headers)
                assert response.status_code == 401, (path, headers)
                assert "missing or wrong API key" in response.json()["detail"]
        basic = base64.b64encode(b"anyone:s3cret-key").decode()
        for headers in ({"X-API-Key": "s3cret-key"}, {"Authorization": "Bearer s3cret-key"},
                        {"Authorization": f"Basic {basic}"}):  # fmt: skip
            wait_ready(_Keyed(client, headers))
            response = client.post("/predict", json={"texts": ["great"]}, headers=headers)
            assert response.status_code == 200, headers


class _Keyed:
    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def get(self, path):
        return self.client.get(path, headers=self.headers)


def test_only_safetensors_folders_are_served(tiny_classifier, tmp_path):
    pickled = shutil.copytree(tiny_classifier, tmp_path / "pickled")
    (pickled / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelLoadError, match=r"pickled: holds pickle weights \(pytorch_model.bin\); bertkit serve"):
        create_app(pickled)
    bare = shutil.copytree(tiny_classifier, tmp_path / "bare")
    (bare / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match=r"bare: no model.safetensors; bertkit serve loads only safetensors"):
        create_app(bare)
    with pytest.raises(ModelLoadError, match=r"nowhere: no such model folder"):
        create_app(tmp_path / "nowhere")
    odd = shutil.copytree(tiny_classifier, tmp_path / "odd")
    meta = json.loads((odd / "bertkit.json").read_text())
    (odd / "bertkit.json").write_text(json.dumps({**meta, "kind": "translation"}))
    with pytest.raises(ModelLoadError, match=r"bertkit.json: unknown kind 'translation'; bertkit serve knows"):
        create_app(odd)


def _serve_fails(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *map(str, args)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_serve_command_errors_are_one_line(capsys, tiny_classifier, tmp_path, monkeypatch):
    monkeypatch.delenv("BERTKIT_TEST_KEY", raising=False)
    assert "no such model folder" in _serve_fails(capsys, tmp_path / "missing", "--port", "1")
    line = _serve_fails(capsys, tiny_classifier, "--api-key-env", "BERTKIT_TEST_KEY")
    assert line == (
        "error: --api-key-env BERTKIT_TEST_KEY: the environment variable BERTKIT_TEST_KEY is not set or empty; "
        "export BERTKIT_TEST_KEY=<key> before starting the server"
    )
    assert _serve_fails(capsys, tiny_classifier, "--max-batch-size", "0") == (
        "error: --max-batch-size must be positive (got 0)"
    )
    assert _serve_fails(capsys, tiny_classifier, "--max-texts", "100", "--max-queue", "50") == (
        "error: --max-queue (50) must be at least --max-texts (100), or a full request could never be queued"
    )
    assert _serve_fails(capsys, tiny_classifier, "--port", "70000") == (
        "error: --port must be between 1 and 65535 (got 70000)"
    )


def test_forward_batch_size_defaults_to_the_merged_batch_for_packed_bert(tiny_classifier, tiny_distilbert, tmp_path):
    def forward_batch(folder, **settings) -> int:
        service = ModelService(folder, ServeSettings(device="cpu", max_batch_size=24, **settings))
        service.load()
        return service.model.model.predict_batch_size

    assert forward_batch(tiny_classifier) == 24  # BERT: the packed forward does no work on padding
    assert forward_batch(tiny_classifier, forward_batch_size=4) == 4  # the flag wins
    texts, labels = sentiment_examples(16)
    TextClassifier(model=str(tiny_distilbert), epochs=1, progress=False).fit(texts, labels).save(tmp_path / "distil")
    assert forward_batch(tmp_path / "distil") == 24  # DistilBERT runs the packed forward too


def _asset_urls(html: str) -> list[str]:
    import re

    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_the_service_not_a_cdn(client, page):
    # Issue 19: /docs pulled Swagger UI from a CDN, so it was blank on a machine without internet.
    html = client.get(page)
    assert html.status_code == 200
    assert "http://" not in html.text and "https://" not in html.text
    urls = _asset_urls(html.text)
    assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        assert url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        kind = {"js": "javascript", "css": "text/css", "png": "image/png"}[url.rsplit(".", 1)[1]]
        assert kind in asset.headers["content-type"] and len(asset.content) > 1000, url


def test_docs_assets_need_the_api_key_like_every_page(tiny_classifier):
    app = create_app(tiny_classifier, ServeSettings(api_key="s3cret-key", device="cpu"))
    with TestClient(app) as client:
        key = {"X-API-Key": "s3cret-key"}
        urls = _asset_urls(client.get("/docs", headers=key).text)
        assert urls
        for url in urls:
            assert client.get(url).status_code == 401, url
            assert client.get(url, headers=key).status_code == 200, url


def test_a_service_closed_while_warming_up_never_says_ready(tiny_classifier, caplog):
    # Issue 19: a server that failed to start logged "ready" after its error, as its warm-up finished during
    # shutdown.
    import asyncio

    from bertkit.serving.metrics import ServiceMetrics

    async def start_and_close() -> ModelService:
        service = ModelService(tiny_classifier, ServeSettings(device="cpu"))
        await service.start(ServiceMetrics())
        await service.close()
        return service

    with caplog.at_level("INFO", logger="uvicorn.error"):
        service = asyncio.run(start_and_close())
    assert not service.ready
    assert "is ready" not in caplog.text
