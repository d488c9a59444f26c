"""`python -m agent serve --workers N`: the supervisor of N server processes on one listening socket.

The socket is bound here and inherited by each worker; the kernel hands each new connection to a
worker that is waiting for one, so a busy worker takes fewer. A call's webhook and its media
stream may reach different workers: the stream token is redeemed in the shared database. The
supervisor only supervises: it passes a stop signal on once (each worker drains its own calls)
and replaces a worker that dies. It imports none of the server (uvicorn, Pipecat, the models):
the workers start ~2 s sooner than when it loaded them first, only to hand them on.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType

from loguru import logger

# A worker that dies sooner than this after starting is not replaced: it would only die again.
CRASH_LOOP_SECS = 10.0


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket every worker accepts calls on."""
    sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.set_inheritable(True)
    return sock


def _worker(sock: socket.socket) -> None:
    """A worker process's entry: the server is imported here, in the worker, not in the supervisor."""
    from agent.serve import run_worker

    run_worker(sock)


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
