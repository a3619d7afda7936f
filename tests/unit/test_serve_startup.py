"""``bertkit serve`` before it serves: a port in use and a bind open to other machines without a key are refused
with one ``error:`` line and exit code 1, before the model loads. No socket is bound here (the bind is faked);
tests/integration/test_serve_socket.py does the same over real sockets."""

from __future__ import annotations

import errno
import socket

import pytest

pytest.importorskip("fastapi", reason="bertkit serve needs the serve extra")

import uvicorn  # noqa: E402

from bertkit import ConfigError  # noqa: E402
from bertkit.cli import main  # noqa: E402
from bertkit.serving import ServeSettings, serve  # noqa: E402
from bertkit.serving.service import ModelService  # noqa: E402


@pytest.fixture
def no_server(monkeypatch) -> dict[str, list]:
    """Records model loads and server runs instead of doing them (nothing binds, nothing loads)."""
    calls: dict[str, list] = {"load": [], "run": []}
    monkeypatch.setattr(ModelService, "load", lambda self: calls["load"].append(self.folder))
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls["run"].append(options))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: calls["run"].append(sockets))
    return calls


def _fails(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 1, err
    assert err[-1].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err[-1]


def test_a_port_in_use_is_refused_before_the_model_loads(tiny_classifier, monkeypatch, capsys, no_server):
    # Issue 19: uvicorn's "address already in use" came after the model had loaded and "serving" was printed,
    # and the process ended with exit code 3.
    def in_use(self, address):
        raise OSError(errno.EADDRINUSE, "Address already in use")

    monkeypatch.setattr(socket.socket, "bind", in_use)
    line = _fails(capsys, str(tiny_classifier), "--port", "8123", "--device", "cpu")
    assert line == "error: --port 8123: port 8123 on 127.0.0.1 is in use (choose another with --port)"
    assert no_server == {"load": [], "run": []}


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EACCES, "error: --port 80: binding port 80 on 127.0.0.1 needs privileges (choose one above 1023 "
                       "with --port)"),
        (errno.EADDRNOTAVAIL, "error: --host 127.0.0.1: not an address of this machine (choose one it has, "
                              "e.g. 127.0.0.1 or 0.0.0.0)"),
    ],
)  # fmt: skip
def test_other_bind_failures_are_one_line_too(tiny_classifier, monkeypatch, capsys, no_server, code, message):
    def refused(self, address):
        raise OSError(code, "refused")

    monkeypatch.setattr(socket.socket, "bind", refused)
    assert _fails(capsys, str(tiny_classifier), "--port", "80", "--device", "cpu") == message
    assert no_server["load"] == []


def test_a_bind_open_to_other_machines_needs_a_key_or_no_auth(tiny_classifier, capsys, no_server, monkeypatch):
    # Issue 19: --host 0.0.0.0 without a key only warned, then served everyone who could reach the machine.
    line = _fails(capsys, str(tiny_classifier), "--host", "0.0.0.0", "--device", "cpu")
    assert line == (
        "error: --host 0.0.0.0 is reachable from other machines and no API key is set: set one with "
        "--api-key-env VAR, or pass --no-auth to serve anyone who can reach it"
    )
    assert no_server == {"load": [], "run": []}
    with pytest.raises(ConfigError, match="--host 10.1.2.3 is reachable from other machines"):
        serve(tiny_classifier, ServeSettings(host="10.1.2.3"))
    assert no_server == {"load": [], "run": []}
    # a mistyped name is said as such, not taken for a public host that needs a key
    line = _fails(capsys, str(tiny_classifier), "--host", "nosuchhost.invalid", "--device", "cpu")
    assert line.startswith("error: --host nosuchhost.invalid: not a known host name or address")

    monkeypatch.setenv("BERTKIT_TEST_KEY", "k3y")
    line = _fails(capsys, str(tiny_classifier), "--no-auth", "--api-key-env", "BERTKIT_TEST_KEY")
    assert line == "error: --no-auth and --api-key-env contradict each other; choose one"


@pytest.mark.parametrize(
    ("host", "extra", "warned"),
    [("0.0.0.0", ["--no-auth"], True), ("127.0.0.1", [], False), ("127.0.0.2", [], False), ("::1", [], False),
     ("localhost", [], False)],
)  # fmt: skip
def test_loopback_needs_nothing_and_no_auth_is_an_explicit_opt_out(
    tiny_classifier, capsys, monkeypatch, no_server, host, extra, warned
):
    bound = []
    monkeypatch.setattr(socket.socket, "bind", lambda self, address: bound.append(address))
    main(["serve", str(tiny_classifier), "--host", host, "--port", "8124", "--device", "cpu", *extra])
    err = capsys.readouterr().err
    assert ("warning: serving on 0.0.0.0 without an API key" in err) is warned
    assert len(no_server["load"]) == 1 and len(no_server["run"]) == 1
    assert bound and all(address[1] == 8124 for address in bound)
    assert "serving text-classification" not in err  # said only once uvicorn listens (faked away here)
