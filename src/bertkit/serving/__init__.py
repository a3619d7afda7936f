"""``bertkit serve``: an HTTP service over one model folder, with dynamic micro-batching and a page.

Needs the ``serve`` extra (``pip install bertkit[serve]``: fastapi, uvicorn, prometheus-client). Importing
this package is light; FastAPI is imported by :func:`create_app` and :func:`serve` only.

    from bertkit.serving import ServeSettings, create_app, serve
    serve("model/", ServeSettings(port=8000, max_batch_size=32))     # blocks until Ctrl-C / SIGTERM
    app = create_app("model/")                                        # or mount the ASGI app yourself
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bertkit.exceptions import ConfigError
from bertkit.serving.settings import ServeSettings, api_key_from_env

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServeSettings", "api_key_from_env", "create_app", "serve"]


def _require_extra() -> None:
    import importlib.util

    needed = ("fastapi", "uvicorn", "prometheus_client", "fastapi_offline")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"bertkit serve needs {', '.join(m.replace('_', '-') for m in missing)}; install the serve extra: pip install 'bertkit[serve]'"
        )


def create_app(folder: str | Path, settings: ServeSettings | None = None, **kwargs: Any) -> FastAPI:
    """The FastAPI app serving ``folder`` (see :func:`bertkit.serving.app.create_app`)."""
    _require_extra()
    from bertkit.serving.app import create_app as _create_app

    return _create_app(folder, settings, **kwargs)


def serve(
    folder: str | Path,
    settings: ServeSettings | None = None,
    *,
    on_loaded: Callable[[Any], None] | None = None,
    on_listening: Callable[[Any], None] | None = None,
) -> None:
    """Serve the model in ``folder`` with uvicorn until interrupted; on SIGINT/SIGTERM in-flight requests finish
    (up to ``graceful_timeout_s``).

    Checked in this order, each before anything slower: the folder (kind, safetensors only), a host other
    machines can reach without a key (refused unless ``no_auth``), the port (bound now: in use, privileged or
    not an address here raise ConfigError), then the model loads (its errors raise here) and ``on_loaded`` is
    called with the service; ``on_listening`` is called with it once the port accepts connections.
    """
    _require_extra()
    from bertkit.serving.app import create_app as _create_app
    from bertkit.serving.server import bind_sockets, run_server
    from bertkit.serving.service import ModelService

    settings = settings or ServeSettings()
    service = ModelService(folder, settings)
    settings.check_exposure()
    sockets = bind_sockets(settings.host, settings.port)
    try:
        service.load()
        if on_loaded is not None:
            on_loaded(service)
        app = _create_app(folder, settings, service=service)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    run_server(
        app, sockets, graceful_timeout_s=settings.graceful_timeout_s,
        on_listening=None if on_listening is None else lambda: on_listening(service),
    )  # fmt: skip
