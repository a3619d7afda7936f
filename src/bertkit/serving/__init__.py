"""``bertkit serve``: an HTTP service over one model folder, with dynamic micro-batching and a page.

Needs the ``serve`` extra (``pip install bertkit[serve]``: fastapi, uvicorn, prometheus-client). Importing
this package is light; FastAPI is imported by :func:`create_app` and :func:`serve` only.

    from bertkit.serving import ServeSettings, create_app, serve
    serve("model/", ServeSettings(port=8000, max_batch_size=32))     # blocks until Ctrl-C / SIGTERM
    app = create_app("model/")                                        # or mount the ASGI app yourself
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertkit.exceptions import ConfigError
from bertkit.serving.settings import ServeSettings, api_key_from_env

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "api_key_from_env", "create_app", "serve"]


def _require_extra() -> None:
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "prometheus_client") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"bertkit serve needs {', '.join(missing)}; install the serve extra: pip install 'bertkit[serve]'"
        )


def create_app(folder: str | Path, settings: ServeSettings | None = None, **kwargs: Any) -> FastAPI:
    """The FastAPI app serving ``folder`` (see :func:`bertkit.serving.app.create_app`)."""
    _require_extra()
    from bertkit.serving.app import create_app as _create_app

    return _create_app(folder, settings, **kwargs)


def serve(folder: str | Path, settings: ServeSettings | None = None, *, on_loaded=None) -> None:
    """Load the model in ``folder`` (errors raise here, before binding), then serve it with uvicorn until
    interrupted; on SIGINT/SIGTERM in-flight requests finish (up to ``graceful_timeout_s``)."""
    _require_extra()
    import uvicorn

    from bertkit.serving.app import create_app as _create_app
    from bertkit.serving.service import ModelService

    settings = settings or ServeSettings()
    service = ModelService(folder, settings)
    service.load()
    if on_loaded is not None:
        on_loaded(service)
    app = _create_app(folder, settings, service=service)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="info", access_log=False,
        timeout_graceful_shutdown=settings.graceful_timeout_s,
    )  # fmt: skip
