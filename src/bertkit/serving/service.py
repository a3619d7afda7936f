"""The served model: one folder, fixed at start; its adapters, batchers and the single model thread."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bertkit.serving.batcher import MicroBatcher
from bertkit.serving.metrics import ServiceMetrics
from bertkit.serving.models import ADAPTERS, CLASSIFIER, QA, TAGGER, EmbedderAdapter, check_folder, detect_kind
from bertkit.serving.settings import ServeSettings

log = logging.getLogger("uvicorn.error")
MODEL_ROUTES = {CLASSIFIER: "/predict", QA: "/qa", TAGGER: "/tag"}


class NotReadyError(Exception):
    """The model is still loading or warming up (or failed to load)."""


class ModelService:
    """Loads the folder's model and an embedder over its encoder, and batches requests for both.

    The folder is checked when the service is made (kind, safetensors only) and never changes afterwards.
    ``load()`` may be called before the server starts (the CLI does, so a bad folder fails at once);
    otherwise the app loads it in the background and ``/ready`` turns 200 after warm-up.
    """

    def __init__(self, folder: str | Path, settings: ServeSettings) -> None:
        self.folder = check_folder(folder)
        self.kind = detect_kind(self.folder)
        self.settings = settings
        self.model: Any = None
        self.embedder: EmbedderAdapter | None = None
        self.ready = False
        self.error: str | None = None
        self.batchers: dict[str, MicroBatcher] = {}
        self.in_flight = {"model": 0, "embed": 0}
        """Requests being handled per batcher, counted by the app's middleware from their first byte."""
        self._executor: ThreadPoolExecutor | None = None
        self._warming: asyncio.Task | None = None
        self._closing = False

    @property
    def route(self) -> str:
        return MODEL_ROUTES[self.kind]

    def load(self) -> None:
        """Load the model and the embedder (blocking; idempotent)."""
        if self.model is not None:
            return
        settings = self.settings
        if settings.torch_threads:
            import torch

            torch.set_num_threads(settings.torch_threads)
        forward = settings.forward_batch_size or (settings.max_batch_size if _on_gpu(settings.device) else 8)
        model = ADAPTERS[self.kind](self.folder, settings.device, forward, settings.precision)
        if self.kind == CLASSIFIER:
            model.model.use_calibration = settings.calibration
        if settings.forward_batch_size is None and getattr(model, "packed", False):
            # No arithmetic on padding (BERT classifiers): one forward pass per merged batch. On the 2-core
            # fp32 CPU this served 32 clients at 165 requests/s against 140 with passes of 8 (mean of 3).
            model.set_forward_batch_size(settings.max_batch_size)
        max_length = model.info().get("max_length") or 256
        self.embedder = EmbedderAdapter(self.folder, settings.device, forward, max_length)
        self.model = model

    def _load_and_warm(self) -> None:
        self.load()
        self.model.warmup()
        self.embedder.warmup()

    async def start(self, metrics: ServiceMetrics) -> None:
        """Start the model thread and the batchers; load and warm up in the background."""
        # One thread runs every forward pass: batches of /predict and /embed never compete for the cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertkit-model")
        s = self.settings
        runners = {"model": lambda items: self.model.run(items), "embed": lambda items: self.embedder.run(items)}
        for name, run in runners.items():
            batcher = MicroBatcher(
                run, executor=self._executor, max_batch_size=s.max_batch_size, max_wait_ms=s.max_wait_ms,
                max_queue=s.max_queue, on_batch=metrics.batch_observer(name),
                in_flight=lambda name=name: self.in_flight[name],
            )  # fmt: skip
            batcher.start()
            metrics.queue_depth.labels(name).set_function(lambda b=batcher: b.depth)
            self.batchers[name] = batcher
        self._warming = asyncio.get_running_loop().create_task(self._warm(metrics))

    async def _warm(self, metrics: ServiceMetrics) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._load_and_warm)
        except Exception as exc:  # reported by /ready; the process stays up so /health still answers
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("bertkit: the model could not be loaded: %s", self.error)
            return
        if self._closing:  # shut down while warming up (e.g. the server failed to start): never "ready"
            return
        self.ready = True
        metrics.ready.set(1)
        log.info("bertkit: %s from %s is ready", self.kind, self.folder)

    async def close(self) -> None:
        """Finish queued work, then stop (new requests get 503 from here on)."""
        self.ready, self._closing = False, True
        if self._warming is not None and not self._warming.done():
            await asyncio.wait([self._warming])
        for batcher in self.batchers.values():
            await batcher.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    async def submit(self, queue: str, items: list[Any]) -> list[Any]:
        """Results of ``items`` from the model (``queue`` "model") or the embedder ("embed"), within the
        request timeout (raises TimeoutError)."""
        if not self.ready:
            raise NotReadyError(self.error or "the model is loading; try again in a few seconds")
        return await asyncio.wait_for(self.batchers[queue].submit(items), self.settings.request_timeout_s)


def _on_gpu(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    import torch

    return torch.cuda.is_available()
