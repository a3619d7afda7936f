"""Binding and running the server for :func:`bertkit.serving.serve`.

The port is bound *before* the model loads, and the bound sockets are handed to uvicorn: a port in use (or a
host this machine does not have) is then one clear error at once, not uvicorn's log line after a long load,
and no other process can take the port between a check and the bind. "serving" is said once uvicorn listens.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable

import uvicorn

from bertkit.exceptions import ConfigError


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address ``host`` resolves to, on ``port``, as asyncio's ``create_server`` binds
    them (SO_REUSEADDR, IPv6-only IPv6 sockets, a missing IPv6 stack skipped); not listening yet, so clients
    are refused, not left waiting, while the model loads. Raises ConfigError naming the flag to change."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not a known host name or address ({exc.strerror})") from None
    infos = list(dict.fromkeys(infos))  # getaddrinfo may repeat an address
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in infos:
            try:
                sock = socket.socket(family, kind, proto)
            except OSError:  # an address family this machine lacks (IPv6 switched off)
                continue
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to use
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL and len(infos) > 1:  # e.g. localhost's ::1 without IPv6
                    sockets.pop().close()
                    continue
                raise ConfigError(_bind_failure(host, port, exc)) from None
        if not sockets:
            raise ConfigError(f"--host {host}: no address of it can be bound on this machine")
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"--port {port}: port {port} on {host} is in use (choose another with --port)"
    if exc.errno == errno.EACCES:
        return f"--port {port}: binding port {port} on {host} needs privileges (choose one above 1023 with --port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: not an address of this machine (choose one it has, e.g. 127.0.0.1 or 0.0.0.0)"
    return f"--host {host} --port {port}: cannot bind ({exc.strerror or exc})"


class ListeningServer(uvicorn.Server):
    """uvicorn's server that calls ``on_listening`` once its sockets accept connections (uvicorn logs nothing
    of its own about sockets handed to it)."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.on_listening is not None:
            self.on_listening()


def run_server(app, sockets: list[socket.socket], *, graceful_timeout_s: float, on_listening=None) -> None:
    """Serve ``app`` on the bound ``sockets`` until SIGINT/SIGTERM (in-flight requests get
    ``graceful_timeout_s`` to finish); the sockets are closed at the end."""
    config = uvicorn.Config(app, log_level="info", access_log=False, timeout_graceful_shutdown=graceful_timeout_s)
    try:
        ListeningServer(config, on_listening).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
