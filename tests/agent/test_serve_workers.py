"""`python -m agent serve --workers N`: several server processes on one port, supervised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from agent.loopback.serving import free_port
from agent.workers import CRASH_LOOP_SECS

REPO = Path(__file__).resolve().parents[2]


def _wait_for(check: object, limit_secs: float = 60) -> None:
    deadline = time.monotonic() + limit_secs
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CALCOM_", "OPENAI_", "TWILIO_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'calls.db'}",
        "BUSINESSES_FILE": str(REPO / "fixtures" / "businesses" / "demo.yaml"),
        "OPENAI_API_KEY": "sk-test",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "agent", "serve", "--port", str(port), "--workers", "2"],
        env=environment,
        cwd=tmp_path,
    )
    try:
        _wait_for(lambda: _healthy(port))
        yield server, port
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _workers(server: subprocess.Popen[bytes]) -> set[int]:
    """The supervisor's live worker processes (not multiprocessing's resource tracker)."""
    found = set()
    for child in psutil.Process(server.pid).children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


def test_a_worker_that_dies_is_replaced_and_the_port_keeps_answering(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    server, port = served
    _wait_for(lambda: len(_workers(server)) == 2)
    first = _workers(server)
    victim = min(first)
    # A worker that dies within CRASH_LOOP_SECS of starting is not replaced; this one is older.
    seen = time.monotonic()
    _wait_for(lambda: time.monotonic() - seen > CRASH_LOOP_SECS)
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: len(_workers(server)) == 2 and victim not in _workers(server))
    assert _healthy(port)


def test_a_stop_signal_drains_every_worker_and_exits_cleanly(
    served: tuple[subprocess.Popen[bytes], int],
) -> None:
    server, port = served
    workers = _workers(server)
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=60) == 0
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in workers)
    assert not _healthy(port)
