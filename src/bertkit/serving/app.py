"""The FastAPI app: endpoints, limits, API key, metrics and the page, over one :class:`ModelService`.

Endpoints: ``POST /predict`` (classifiers), ``/qa`` (question answering), ``/tag`` (token classification),
``POST /embed`` (any folder), ``GET /info``, ``/health``, ``/ready``, ``/metrics``, ``/`` (the page) and
``/docs``. An endpoint the folder's kind does not serve answers 404 with a message that says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import bertkit
from bertkit.exceptions import BertkitError, ConfigError, DataError
from bertkit.serving.batcher import BatcherClosedError, QueueFullError
from bertkit.serving.docs import add_docs_routes
from bertkit.serving.guard import GuardMiddleware
from bertkit.serving.metrics import ServiceMetrics
from bertkit.serving.models import CLASSIFIER, QA, TAGGER, wrong_kind_message
from bertkit.serving.schemas import (
    EmbedRequest,
    EmbedResponse,
    Info,
    Prediction,
    PredictRequest,
    PredictResponse,
    QARequest,
    QAResponse,
    Status,
    TagRequest,
    TagResponse,
)
from bertkit.serving.service import ModelService, NotReadyError
from bertkit.serving.settings import ServeSettings


class HTTPProblem(Exception):
    """An error answer: status, one-line message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def create_app(
    folder: str | Path, settings: ServeSettings | None = None, *, service: ModelService | None = None
) -> FastAPI:
    """The service for the model folder ``folder`` (checked now: kind and safetensors-only weights).

    The model loads in the background when the app starts unless ``service`` was loaded already; ``/ready``
    answers 200 once it is loaded and warmed up.
    """
    settings = settings or ServeSettings()
    service = service or ModelService(folder, settings)
    metrics = ServiceMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start(metrics)
        try:
            yield
        finally:
            await service.close()  # uvicorn has let in-flight requests finish before this

    app = FastAPI(
        title="bertkit",
        version=bertkit.__version__,
        summary=f"{service.kind} model {service.folder.name}",
        lifespan=lifespan,
        docs_url=None,  # served from local files by add_docs_routes: FastAPI's own pages need a CDN
        redoc_url=None,
    )
    app.state.service, app.state.metrics, app.state.settings = service, metrics, settings
    app.add_middleware(
        GuardMiddleware, api_key=settings.api_key, metrics=metrics, in_flight=service.in_flight,
        max_body=settings.max_texts * (settings.max_chars * 12 + 64) * 2 + 4096,
    )  # fmt: skip  # 12: the most JSON bytes a character takes (an escaped surrogate pair, as json.dumps writes)
    _add_error_handlers(app)
    _add_model_routes(app, service, settings)
    _add_status_routes(app, service, settings, metrics)
    add_docs_routes(app)
    return app


# errors -----------------------------------------------------------------------------------------------------


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPProblem)
    async def problem(request: Request, exc: HTTPProblem) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            # FastAPI's words for a body json.loads could not take at all (bytes that are not UTF-8, nesting too
            # deep): a malformed body, answered as the other malformed ones are.
            return JSONResponse(
                {"detail": 'the request body could not be read as JSON; send UTF-8 JSON such as {"texts": ["..."]}'},
                status_code=422,
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
            # FastAPI reads a body that is not declared JSON as no object at all: say what to change.
            got = f"content-type {media}" if media else "no content-type"
            return JSONResponse(
                {"detail": f"the request body was sent with {got}; send JSON with 'content-type: application/json'",
                 "errors": [_plain_error(e) for e in errors[:20]]},
                status_code=415 if media else 422,
            )  # fmt: skip
        # One readable line first (e.g. "body.texts.1: Input should be a valid string"), pydantic's list after.
        lines = [_readable(e) for e in errors]
        return JSONResponse(
            {"detail": "; ".join(lines[:5]), "errors": [_plain_error(e) for e in errors[:20]]}, status_code=422
        )


def _readable(error: dict[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        where = error.get("ctx", {}).get("error", "") or "JSON decode error"
        return f'the request body is not valid JSON ({where}); send a JSON object such as {{"texts": ["..."]}}'
    return ".".join(str(p) for p in error.get("loc", ())) + ": " + str(error.get("msg", ""))


def _plain_error(error: dict[str, Any]) -> dict[str, Any]:
    return {"loc": [str(p) for p in error.get("loc", ())], "msg": str(error.get("msg", "")), "type": error.get("type")}


async def _answer(service: ModelService, queue: str, items: list[Any]) -> list[Any]:
    """The model's results for ``items``, or the HTTP error that explains why not."""
    try:
        return await service.submit(queue, items)
    except NotReadyError as exc:
        raise HTTPProblem(503, f"not ready: {exc}", {"Retry-After": "5"}) from None
    except QueueFullError as exc:
        raise HTTPProblem(503, f"the server is busy: {exc}; retry shortly", {"Retry-After": "1"}) from None
    except BatcherClosedError as exc:
        raise HTTPProblem(503, str(exc), {"Retry-After": "5"}) from None
    except TimeoutError:
        timeout = service.settings.request_timeout_s
        raise HTTPProblem(504, f"the request was not answered within {timeout:g} s (--timeout)") from None
    except (DataError, ConfigError) as exc:
        raise HTTPProblem(422, str(exc)) from None
    except BertkitError as exc:
        raise HTTPProblem(500, str(exc)) from None


def _check_texts(texts: list[str], field: str, settings: ServeSettings) -> None:
    """Request limits (413) and empty texts (422), checked before anything is queued."""
    _check_count(len(texts), field, settings)
    for i, text in enumerate(texts):
        _check_text(text, f"{field}[{i}]", settings)


def _check_shape(service: ModelService, pairs: bool) -> None:
    """422 naming the request field when texts go to a model trained on pairs, or pairs to one trained on texts
    (``text_pair_``: None when the folder does not record it, or before the model is loaded)."""
    text_pair = getattr(getattr(service.model, "model", None), "text_pair_", None)
    if text_pair is None or text_pair == pairs:
        return
    if text_pair:
        raise HTTPProblem(422, 'texts: this model was trained on text pairs; send {"pairs": [["text", "its pair"]]}')
    raise HTTPProblem(422, 'pairs: this model was trained on single texts, not pairs; send {"texts": ["text"]}')


def _check_count(n: int, field: str, settings: ServeSettings) -> None:
    if n > settings.max_texts:
        raise HTTPProblem(413, f"{field}: {n} items in one request; the limit is {settings.max_texts} (--max-texts)")


def _check_text(text: str, where: str, settings: ServeSettings) -> None:
    if len(text) > settings.max_chars:
        raise HTTPProblem(
            413, f"{where}: {len(text)} characters; the limit is {settings.max_chars} per text (--max-chars)"
        )
    # Spaces alone, or characters that print nothing (zero-width, control, byte-order marks): no text to read.
    empty = not any((c.isprintable() and not c.isspace()) or "\ud800" <= c <= "\udfff" for c in text)
    if empty:
        raise HTTPProblem(422, f"{where}: the text is empty; every item needs some text")
    surrogate = next((i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff"), None)
    if surrogate is not None:
        raise HTTPProblem(
            422,
            f"{where}: character {surrogate} is a lone UTF-16 surrogate ({text[surrogate]!r}), not a Unicode "
            "character; escape characters beyond U+FFFF as a surrogate pair or send the text as UTF-8",
        )


# model endpoints --------------------------------------------------------------------------------------------


def _add_model_routes(app: FastAPI, service: ModelService, settings: ServeSettings) -> None:
    kind = service.kind

    def prediction(row: np.ndarray, top_k: int | None) -> Prediction:
        model = service.model
        if model.task == "regression":
            return Prediction(label=None, score=float(row[0]), probabilities={})
        labels = model.labels
        best = int(np.argmax(row))
        order = np.argsort(-row, kind="stable")[:top_k] if top_k else range(len(labels))
        probabilities = {str(labels[i]): float(row[i]) for i in order}
        chosen = None
        if model.task == "multi-label":
            thresholds = model.model.score_thresholds_  # on the scale of the (calibrated) probabilities
            chosen = [labels[i] for i in range(len(labels)) if row[i] >= thresholds[i]]
        return Prediction(label=labels[best], score=float(row[best]), probabilities=probabilities, labels=chosen)

    if kind == CLASSIFIER:

        @app.post("/predict", response_model=PredictResponse, tags=["model"])
        async def predict(body: PredictRequest) -> PredictResponse:
            """Label probabilities for each text (or pair), in input order."""
            if body.texts is not None:
                _check_texts(body.texts, "texts", settings)
                items = [(t, None) for t in body.texts]
            else:
                _check_count(len(body.pairs), "pairs", settings)
                for i, pair in enumerate(body.pairs):
                    for j, text in enumerate(pair):
                        _check_text(text, f"pairs[{i}][{j}]", settings)
                items = list(body.pairs)
            _check_shape(service, body.pairs is not None)
            rows = await _answer(service, "model", items)
            return PredictResponse(predictions=[prediction(row, body.top_k) for row in rows])

    if kind == QA:

        @app.post("/qa", response_model=QAResponse, tags=["model"])
        async def qa(body: QARequest) -> QAResponse:
            """The answer span of each question in its context."""
            _check_texts(body.questions, "questions", settings)
            _check_texts(body.contexts, "contexts", settings)
            return QAResponse(
                answers=await _answer(service, "model", list(zip(body.questions, body.contexts, strict=True)))
            )

    if kind == TAGGER:

        @app.post("/tag", response_model=TagResponse, tags=["model"])
        async def tag(body: TagRequest) -> TagResponse:
            """The tagged spans of each text."""
            _check_texts(body.texts, "texts", settings)
            return TagResponse(tags=await _answer(service, "model", list(body.texts)))

    for route in ("/predict", "/qa", "/tag"):
        if route != service.route:
            app.add_api_route(route, _wrong_kind(wrong_kind_message(route, kind)), methods=["GET", "POST"],
                              include_in_schema=False)  # fmt: skip

    @app.post("/embed", response_model=EmbedResponse, tags=["model"])
    async def embed(body: EmbedRequest) -> EmbedResponse:
        """Mean-pooled sentence embeddings from the folder's encoder, in input order."""
        _check_texts(body.texts, "texts", settings)
        vectors = np.stack(await _answer(service, "embed", list(body.texts)))  # [n, hidden]
        if body.normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return EmbedResponse(embeddings=vectors.tolist(), dimension=vectors.shape[1])


def _wrong_kind(message: str):
    async def wrong_kind() -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=404)

    return wrong_kind


# status, page, metrics --------------------------------------------------------------------------------------


def _add_status_routes(app: FastAPI, service: ModelService, settings: ServeSettings, metrics: ServiceMetrics) -> None:
    @app.get("/health", response_model=Status, tags=["status"])
    async def health() -> Status:
        """Alive (the process answers); says nothing about the model."""
        return Status(status="ok")

    @app.get("/ready", response_model=Status, tags=["status"], responses={503: {"model": Status}})
    async def ready() -> Response:
        """200 once the model is loaded and warmed up, 503 before (or if loading failed)."""
        if service.ready:
            return JSONResponse(Status(status="ready").model_dump())
        detail = service.error or "the model is loading"
        status = "failed" if service.error else "loading"
        return JSONResponse(Status(status=status, detail=detail).model_dump(), status_code=503)

    @app.get("/info", response_model=Info, tags=["status"])
    async def info() -> Info:
        """The model's kind, labels and training metadata, and the service's limits."""
        if service.model is None:
            raise HTTPProblem(503, f"not ready: {service.error or 'the model is loading'}", {"Retry-After": "5"})
        model_info = service.model.info()
        return Info(
            kind=service.kind,
            task=model_info["task"],
            labels=model_info["labels"],
            folder=service.folder.name,
            endpoints=[service.route, "/embed"],
            limits={
                "max_texts": settings.max_texts,
                "max_chars": settings.max_chars,
                "max_batch_size": settings.max_batch_size,
                "max_wait_ms": settings.max_wait_ms,
                "request_timeout_s": settings.request_timeout_s,
            },  # fmt: skip
            embedding_dimension=service.embedder.dimension if service.embedder else None,
            version=bertkit.__version__,
            model={k: v for k, v in model_info.items() if k not in ("task", "labels")},
        )

    @app.get("/metrics", tags=["status"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus text format: requests, latency, batch sizes, queue depth."""
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    page = resources.files("bertkit.serving").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)


# API key and metrics, as plain ASGI middleware (cheaper than BaseHTTPMiddleware on every request) -----------
