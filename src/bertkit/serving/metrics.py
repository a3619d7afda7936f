"""Prometheus metrics, in a registry of the app's own (several apps in one process never share counts)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ENDPOINTS = ("/", "/predict", "/embed", "/qa", "/tag", "/info", "/health", "/ready", "/metrics", "/docs",
             "/openapi.json")  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServiceMetrics:
    """Requests by endpoint and status, request latency, batch sizes and durations, queue depth."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bertkit_requests", "HTTP requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "bertkit_request_seconds", "Time from request to response", ["endpoint"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )  # fmt: skip
        self.batch_size = Histogram(
            "bertkit_batch_size", "Items per model call", ["queue"], registry=self.registry, buckets=BATCH_BUCKETS
        )
        self.batch_seconds = Histogram(
            "bertkit_batch_seconds", "Duration of one model call", ["queue"], registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
        self.queue_depth = Gauge(
            "bertkit_queue_depth", "Items waiting for the model", ["queue"], registry=self.registry
        )
        self.ready = Gauge("bertkit_ready", "1 once the model is loaded and warmed up", registry=self.registry)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        endpoint = path if path in ENDPOINTS else "other"  # unknown paths must not grow the label set
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def batch_observer(self, queue: str):
        def observe(size: int, seconds: float) -> None:
            self.batch_size.labels(queue).observe(size)
            self.batch_seconds.labels(queue).observe(seconds)

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)
