"""`python -m agent serve`: uvicorn with a deploy-safe shutdown, in one process or several.

On SIGTERM the server stops taking new calls (Twilio's webhook gets TwiML that puts the caller
through to the business) and waits for live calls to end, up to a bound, before it exits: a deploy
must not cut a caller off. A second signal exits at once.

One process runs its calls on one event loop, one core. `--workers N` runs N of them on one
listening socket under a supervisor (`agent.workers`); each worker is `run_worker`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
from types import FrameType

import uvicorn
from loguru import logger

from agent.errors import RuntimeFailure
from agent.logs import setup_logging
from agent.media_socket import MediaStreamProtocol
from agent.server import MAX_MESSAGE_BYTES, LiveCalls, create_app
from agent.settings import load_settings
from agent.wiring import Runtime, open_runtime

DRAIN_LIMIT_SECONDS = 15 * 60


def settle_heap() -> None:
    """Put everything loaded at start-up out of the garbage collector's way (`gc.freeze`).

    A full collection otherwise walks every module, class and model the server imported, in one
    pause: ~190 ms at 20 calls in `python -m agent bench`, a gap in every caller's audio. After a
    freeze it walks only what calls have made since (~30 ms).
    """
    gc.collect()
    gc.freeze()


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, live: LiveCalls, drain_limit_secs: float) -> None:
        super().__init__(config)
        self._live = live
        self._drain_limit = drain_limit_secs
        self._draining: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining is not None or not self._live.tasks:
            super().handle_exit(sig, frame)
            return
        logger.info("shutting down: no new calls; waiting for {} live call(s)", len(self._live.tasks))
        self._live.draining = True
        loop = asyncio.get_event_loop()
        self._draining = loop.create_task(self._drain_then_exit(sig, frame))

    async def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        await self._live.drain(self._drain_limit)
        super().handle_exit(sig, frame)


async def serve(runtime: Runtime, host: str, port: int, sock: socket.socket | None = None) -> int:
    """Serve calls until stopped; on `sock` (already listening) when given, else on host:port."""
    live = LiveCalls()
    app = create_app(runtime, live=live)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws_max_size=MAX_MESSAGE_BYTES,
        log_config=None,
        proxy_headers=True,
        ws=MediaStreamProtocol,
    )
    # Loading the listening models at the first call would stall that call's worker mid-greeting.
    await app.state.listening.load()
    settle_heap()
    await DrainingServer(config, live, DRAIN_LIMIT_SECONDS).serve(sockets=None if sock is None else [sock])
    return 0


def run_worker(sock: socket.socket) -> None:
    """One worker process: its own settings, database engine and app, on the shared socket."""
    os.setpgrp()  # a terminal's Ctrl-C reaches the supervisor only, which passes it on once
    host, port = sock.getsockname()[:2]

    async def run() -> int:
        settings = load_settings()
        setup_logging(settings.log_level)
        async with open_runtime(settings) as runtime:
            return await serve(runtime, host, port, sock)

    try:
        sys.exit(asyncio.run(run()))
    except RuntimeFailure as failure:
        logger.error("worker could not start: {}", failure)
        sys.exit(failure.exit_code)
