"""WebServer: uvicorn serving the monitor on a background thread of the Runtime's process.

``start()`` binds the socket itself (so port 0 gives a free port whose URL is known
before the first request) and returns once the server accepts connections;
``stop()`` ends the live streams, lets requests finish and joins the thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import uvicorn

from routilux.exceptions import ConfigurationError, FlowStateError
from routilux.web.app import build_app
from routilux.web.monitor import Monitor
from routilux.web.security import Policy, check_binding, is_loopback, resolve_token

logger = logging.getLogger("routilux.web")


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it is up. On a thread other than the main one
    uvicorn leaves signals alone: the Runtime owns SIGTERM."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: Any = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        self.ready.set()


class WebServer:
    """The monitor of ``runtime`` on ``host:port`` (see the module docstring)."""

    def __init__(
        self,
        runtime: Any,
        host: str = "127.0.0.1",
        port: int = 8470,
        *,
        token: str | None = None,
        max_body: int = 1 << 20,
    ) -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigurationError(f"port must be 0..65535 (0: any free port), got {port!r}")
        self.token = resolve_token(token)
        check_binding(host, self.token)
        self.host = host
        self.port = port
        self.runtime = runtime
        self.monitor: Monitor | None = None
        self.policy = Policy(self.token, is_loopback(host), max_body)
        self.url: str | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> str:
        """Bind, start serving, and return the URL (``http://host:port/``)."""
        if self._thread is not None:
            raise FlowStateError(f"the monitor is already serving at {self.url}")
        sock = _bind(self.host, self.port)
        port = sock.getsockname()[1]
        self.policy.allow_port(self.host, port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{shown}:{port}/"
        self.monitor = Monitor(self.runtime)
        config = uvicorn.Config(
            build_app(self.monitor, self.policy),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
            server_header=False,
        )
        self._server = server = _Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="routilux-web", daemon=True
        )
        self._thread.start()
        if not server.ready.wait(timeout) or not self._thread.is_alive():
            self.stop()
            sock.close()
            raise FlowStateError(f"the monitor did not start on {self.url} within {timeout} s")
        logger.info("routilux monitor at %s", self.url)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """End the live streams, stop serving, join the thread. Idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        monitor, loop = self.monitor, server.loop
        assert monitor is not None
        if loop is not None:
            try:
                loop.call_soon_threadsafe(monitor.hub.close)
            except RuntimeError:
                pass  # the loop already ended
        server.should_exit = True
        thread.join(timeout)
        monitor.close()
        if thread.is_alive():
            logger.warning("the monitor's server did not stop within %s s", timeout)
        self._thread = self._server = None


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (the family that ``host`` resolves to)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot resolve host {host!r}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock
