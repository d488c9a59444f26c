"""Serve an ASGI app on 127.0.0.1 from a background thread, for fakes and for apps under test.

A fake service must answer while the test's event loop is busy running a pipeline, and its
latency must not depend on that loop, so it gets its own thread and loop. The port is chosen by
the OS (bound before uvicorn starts, so it is known without races), and stopping always joins
the thread: a test never leaves a server behind.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import TracebackType
from typing import Literal, Self

import uvicorn
from starlette.types import ASGIApp

__all__ = ["ServedApp", "free_port"]


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on now, for a server started in another process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedApp:
    """`app` served by uvicorn on a free 127.0.0.1 port; a context manager, sync or async.

    `ws` is uvicorn's websocket implementation: "none" for plain HTTP fakes, "websockets-sansio"
    for apps with websocket routes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ws: Literal["none", "websockets-sansio"] = "none",
        graceful_shutdown_seconds: int = 1,
    ) -> None:
        self._config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws=ws,
            timeout_graceful_shutdown=graceful_shutdown_seconds,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server thread's event loop (for `call_soon_threadsafe`)."""
        if self._server is None or self._server.loop is None:
            raise RuntimeError("The server is not running.")
        return self._server.loop

    def url(self, path: str = "", *, scheme: str = "http") -> str:
        """`scheme://127.0.0.1:PORT` + `path`; use scheme "ws" for websocket routes."""
        if not self.port:
            raise RuntimeError("The server is not running.")
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def start(self, timeout_seconds: float = 10.0) -> None:
        """Bind a free port and serve; returns once uvicorn accepts connections."""
        if self._thread is not None:
            raise RuntimeError("The server is already running.")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._server = _Server(self._config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="served-app", daemon=True
        )
        self._thread.start()
        if not self._server.ready.wait(timeout_seconds):
            self.stop()
            raise RuntimeError("The server did not start in time.")
        self.port = sock.getsockname()[1]

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Ask uvicorn to exit and join its thread."""
        server, thread = self._server, self._thread
        self._server, self._thread, self.port = None, None, 0
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout_seconds)
        if thread.is_alive():
            raise RuntimeError("The server did not stop in time.")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


class _Server(uvicorn.Server):
    """uvicorn that says when it is ready and which loop it runs on."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)
        self.ready.set()
