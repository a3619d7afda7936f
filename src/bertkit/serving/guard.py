"""The service's outermost layer: the API key, the request-body limit (counted as the bytes arrive) and the
per-request metrics, around the FastAPI app of :mod:`bertkit.serving.app`."""

from __future__ import annotations

import base64
import binascii
import hmac
import time

from fastapi.responses import JSONResponse, Response

from bertkit.serving.metrics import ServiceMetrics

OPEN_PATHS = ("/health",)  # answered without the API key (liveness probes carry no secrets)
QUEUES = {"/predict": "model", "/qa": "model", "/tag": "model", "/embed": "embed"}  # path -> batcher


class GuardMiddleware:
    """Checks the API key (constant-time) on every path but /health, refuses oversized bodies, and records
    each request's endpoint, status and latency."""

    def __init__(
        self, app, *, api_key: str | None, metrics: ServiceMetrics, in_flight: dict[str, int], max_body: int
    ) -> None:
        self.app = app
        self.in_flight = in_flight
        self.key = api_key.encode() if api_key else None
        self.metrics = metrics
        self.max_body = max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # Counted from the first byte, so the batcher knows a request is on its way while its body is read.
        queue = QUEUES.get(scope["path"]) if scope["method"] == "POST" else None
        if queue is not None:
            self.in_flight[queue] += 1

        async def send_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is None and scope["method"] in ("POST", "PUT", "PATCH"):
                # Read (at most max_body + 1 bytes) before the app does: a chunked body has no Content-Length
                # for _refusal to check, and the app would hold all of it in memory.
                messages, too_large = await self._body(receive)
                refusal = self._too_large("the request body is") if too_large else None
                receive = _replayed(messages, receive)
            if refusal is not None:
                await refusal(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            if queue is not None:
                self.in_flight[queue] -= 1
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - started)

    def _refusal(self, scope) -> Response | None:
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        if self.key is not None and scope["path"] not in OPEN_PATHS and not self._authorized(headers):
            # Basic lets a browser ask for the key (any user name) and resend it with the page's own requests.
            return JSONResponse(
                {"detail": "missing or wrong API key; send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="bertkit"'},
            )
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return self._too_large(f"a request body of {int(length)} bytes is")
        return None

    def _too_large(self, what: str) -> Response:
        return JSONResponse(
            {"detail": f"{what} larger than the limit of {self.max_body} bytes (set by --max-texts and --max-chars)"},
            status_code=413,
        )

    async def _body(self, receive) -> tuple[list[dict], bool]:
        """The request's messages up to its end, a disconnect or more than ``max_body`` bytes (then True)."""
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, False
            size += len(message.get("body", b""))
            if size > self.max_body:
                return messages, True
            if not message.get("more_body", False):
                return messages, False

    def _authorized(self, headers: dict[str, bytes]) -> bool:
        given = headers.get("x-api-key", b"")
        authorization = headers.get("authorization", b"")
        scheme, _, value = authorization.partition(b" ")
        if scheme.lower() == b"bearer":
            given = value.strip()
        elif scheme.lower() == b"basic":
            try:
                given = base64.b64decode(value.strip(), validate=True).partition(b":")[2]
            except (binascii.Error, ValueError):
                given = b""
        return hmac.compare_digest(given, self.key)


def _replayed(messages: list[dict], receive):
    """An ASGI ``receive`` that gives ``messages`` (a body already read) first, then waits on ``receive``."""
    pending = list(messages)

    async def replay() -> dict:
        return pending.pop(0) if pending else await receive()

    return replay
