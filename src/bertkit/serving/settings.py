"""Settings of ``bertkit serve``: one dataclass whose fields map 1:1 to the command's flags."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field

from bertkit.exceptions import ConfigError


@dataclass
class ServeSettings:
    """How the service binds, batches and limits requests. Checked on creation (flag names in messages)."""

    host: str = "127.0.0.1"
    """Address to bind; loopback unless told otherwise (``--host``)."""
    port: int = 8000
    """TCP port (``--port``)."""
    max_batch_size: int = 32
    """Most texts of concurrent requests merged into one model call (``--max-batch-size``)."""
    max_wait_ms: float = 5.0
    """How long the first text of a batch waits for others to join it, while other requests are still being
    received (``--max-wait-ms``)."""
    max_queue: int = 1024
    """Most texts waiting for the model; beyond it requests get 503 with Retry-After (``--max-queue``)."""
    max_texts: int = 64
    """Most texts (or pairs) in one request; more give 413 (``--max-texts``)."""
    max_chars: int = 10_000
    """Most characters per text; longer ones give 413 (``--max-chars``)."""
    request_timeout_s: float = 30.0
    """A request not answered within this many seconds gets 504 (``--timeout``)."""
    graceful_timeout_s: float = 30.0
    """On shutdown, how long in-flight requests may take to finish (``--graceful-timeout``)."""
    api_key: str | None = field(default=None, repr=False)  # never printed with the settings
    """When set, every endpoint but /health needs it (read from ``--api-key-env VAR``, never a flag value)."""
    no_auth: bool = False
    """Serve without an API key on a host other machines can reach (``--no-auth``): without it (or a key)
    :func:`bertkit.serving.serve` refuses such a host, as Jupyter does. Loopback hosts need neither."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N (``--device``)."""
    torch_threads: int | None = None
    """torch intra-op threads for the model (``--threads``); None keeps torch's default (OMP_NUM_THREADS)."""
    precision: str = "auto"
    """``auto`` (the precision saved with the model: bf16 autocast where the hardware runs it natively),
    ``fp32`` (scores match plain transformers) or ``bf16`` (``--precision``)."""
    calibration: bool = True
    """Classifiers: apply the temperature fitted at training to the probabilities served (``--no-calibration``:
    the model's own softmax/sigmoid). Labels are the same either way."""
    forward_batch_size: int | None = None
    """Texts per forward pass inside a merged batch, after sorting by length; None: the whole merged batch on
    a GPU and for BERT classifiers (whose packed forward skips padding), else 8 on CPU (least padding for the
    most speed there) (``--forward-batch-size``)."""

    def __post_init__(self) -> None:
        positive = {
            "--port": self.port, "--max-batch-size": self.max_batch_size, "--max-queue": self.max_queue,
            "--max-texts": self.max_texts, "--max-chars": self.max_chars, "--timeout": self.request_timeout_s,
        }  # fmt: skip
        for flag, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{flag} must be positive (got {value})")
        if not 0 < self.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535 (got {self.port})")
        if self.max_wait_ms < 0:
            raise ConfigError(f"--max-wait-ms must be 0 or more (got {self.max_wait_ms})")
        if self.graceful_timeout_s < 0:
            raise ConfigError(f"--graceful-timeout must be 0 or more (got {self.graceful_timeout_s})")
        if self.max_queue < self.max_texts:
            raise ConfigError(
                f"--max-queue ({self.max_queue}) must be at least --max-texts ({self.max_texts}), "
                "or a full request could never be queued"
            )
        if self.torch_threads is not None and self.torch_threads <= 0:
            raise ConfigError(f"--threads must be positive (got {self.torch_threads})")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"--precision must be auto, fp32 or bf16 (got {self.precision!r})")
        if self.forward_batch_size is not None and self.forward_batch_size <= 0:
            raise ConfigError(f"--forward-batch-size must be positive (got {self.forward_batch_size})")
        if self.api_key is not None and not self.api_key:
            raise ConfigError("the API key is empty; set a non-empty key or run without --api-key-env")
        if self.no_auth and self.api_key is not None:
            raise ConfigError("--no-auth and --api-key-env contradict each other; choose one")

    def check_exposure(self) -> None:
        """Refuse a host other machines can reach without an API key, unless ``no_auth`` says so: a model served
        on 0.0.0.0 by mistake would otherwise answer anyone on the network (checked before binding)."""
        if not self.is_loopback and self.api_key is None and not self.no_auth:
            raise ConfigError(
                f"--host {self.host} is reachable from other machines and no API key is set: set one with "
                "--api-key-env VAR, or pass --no-auth to serve anyone who can reach it"
            )

    @property
    def is_loopback(self) -> bool:
        """Whether ``host`` is reachable from this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            pass
        # A host name: loopback when every address it resolves to is (a name that resolves to nothing is a typo,
        # said as such, not a reason to ask for an API key).
        try:
            infos = socket.getaddrinfo(self.host, None, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConfigError(f"--host {self.host}: not a known host name or address ({exc.strerror})") from None
        return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def api_key_from_env(variable: str) -> str:
    """The key held by environment variable ``variable`` (``--api-key-env``); keys never travel as flags,
    where they would show in the process list and shell history."""
    value = os.environ.get(variable, "")
    if not value.strip():
        raise ConfigError(
            f"--api-key-env {variable}: the environment variable {variable} is not set or empty; "
            f"export {variable}=<key> before starting the server"
        )
    return value.strip()
