"""`python -m agent serve`: uvicorn with a deploy-safe shutdown, in one process or several.

On SIGTERM the server stops taking new calls (Twilio's webhook gets TwiML that puts the caller
through to the business) and waits for live calls to end, up to a bound, before it exits: a deploy
must not cut a caller off. A second signal exits at once.

One process runs its calls on one event loop, one core. `--workers N` runs N server processes on
one listening socket (bound here, inherited by each; the kernel hands each new connection to a
worker that is waiting for one, so a busy worker takes fewer). A call's webhook and its media
stream may reach different workers: the stream token is redeemed in the shared database. The
parent only supervises: it passes a stop signal on once (each worker drains its own calls) and
replaces a worker that dies.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
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
# A worker that dies sooner than this after starting is not replaced: it would only die again.
CRASH_LOOP_SECS = 10.0


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


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every worker accepts calls on."""
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.set_inheritable(True)
    return sock


def _worker(sock: socket.socket) -> None:
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


def serve_workers(host: str, port: int, workers: int) -> int:
    """Run `workers` server processes on one port until a stop signal; 0 when all have drained."""
    sock = listening_socket(host, port)
    context = multiprocessing.get_context("spawn")
    running: dict[int, BaseProcess] = {}
    stopping = failed = False

    started: dict[int, float] = {}

    def start(index: int) -> None:
        process = context.Process(target=_worker, args=(sock,), name=f"serve-worker-{index}")
        process.start()
        running[index] = process
        started[index] = time.monotonic()

    def stop(sig: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for process in running.values():
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, sig)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(workers):
        start(index)
    logger.info("serving on {}:{} with {} worker processes", host, port, workers)
    while running:
        multiprocessing.connection.wait([p.sentinel for p in running.values()])
        for index, process in list(running.items()):
            if process.is_alive():
                continue
            del running[index]
            if stopping:
                continue
            if time.monotonic() - started[index] < CRASH_LOOP_SECS:
                logger.error("worker {} failed on start ({}); stopping the others", index, process.exitcode)
                stop(signal.SIGTERM, None)
                failed = True
                continue
            logger.warning("worker {} exited ({}); starting another", index, process.exitcode)
            start(index)
    sock.close()
    return 1 if failed else 0
