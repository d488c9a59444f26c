"""Call records survive on SQLite and PostgreSQL, and several processes can share PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.calls import CallStore, EventKind
from agent.database import make_engine
from agent.phone import CallRecorder
from booking.clock import FixedClock
from tests.conftest import POSTGRES_URL, REPO_ROOT

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=ZoneInfo("America/New_York"))


async def test_a_call_is_recorded_with_its_transcript(engine: AsyncEngine) -> None:
    """Start, transcript lines, a tool call and the end of a call read back in order, in UTC."""
    store = CallStore(engine)
    await store.create_schema()
    call_id = await store.start_call(
        call_sid="CA1",
        business_id="bright-smile",
        from_number="+15550001111",
        to_number="+15550100100",
        started_at=T0,
    )
    await store.add_event(call_id, "caller", {"text": "I need a cleaning"}, T0 + timedelta(seconds=3))
    await store.add_event(
        call_id,
        "tool_call",
        {"name": "check_availability", "arguments": {"when": "tuesday"}},
        T0 + timedelta(seconds=4),
    )
    await store.add_event(call_id, "turn_latency", {"ms": 640}, T0 + timedelta(seconds=4))
    await store.end_call(call_id, "booked", T0 + timedelta(minutes=2))

    record = await store.get_call(call_id)
    assert record.outcome == "booked"
    assert record.started_at == T0 and record.started_at.tzinfo == UTC
    assert record.ended_at == T0 + timedelta(minutes=2)
    assert [e.kind for e in record.events] == ["caller", "tool_call", "turn_latency"]
    assert record.events[1].data["arguments"] == {"when": "tuesday"}


async def test_schema_creation_is_idempotent(engine: AsyncEngine) -> None:
    """Every start-up creates the schema; the second time changes nothing and keeps the data."""
    store = CallStore(engine)
    await store.create_schema()
    call_id = await store.start_call(
        call_sid="CA2", business_id="b", from_number=None, to_number=None, started_at=T0
    )
    await store.create_schema()
    assert (await store.get_call(call_id)).call_sid == "CA2"


async def test_first_outcome_wins(engine: AsyncEngine) -> None:
    """A call that has ended keeps its outcome when a late hang-up event arrives."""
    store = CallStore(engine)
    await store.create_schema()
    call_id = await store.start_call(
        call_sid="CA3", business_id="b", from_number=None, to_number=None, started_at=T0
    )
    await store.end_call(call_id, "transferred", T0 + timedelta(minutes=1))
    await store.end_call(call_id, "no_booking", T0 + timedelta(minutes=5))
    record = await store.get_call(call_id)
    assert (record.outcome, record.ended_at) == ("transferred", T0 + timedelta(minutes=1))
    with pytest.raises(LookupError):
        await store.end_call(call_id + 100, "failed", T0)


async def test_webhook_event_is_stored_once(engine: AsyncEngine) -> None:
    """The same (source, trigger, uid) delivered twice is stored once."""
    store = CallStore(engine)
    await store.create_schema()
    kwargs = {
        "source": "calcom",
        "trigger": "BOOKING_CREATED",
        "uid": "bk_1",
        "payload": {"a": 1},
        "received_at": T0,
    }
    assert await store.record_webhook(**kwargs) is True  # type: ignore[arg-type]
    assert await store.record_webhook(**kwargs) is False  # type: ignore[arg-type]


async def test_concurrent_calls_do_not_lose_records(engine: AsyncEngine) -> None:
    """Twenty calls written at once are all there afterwards."""
    store = CallStore(engine)
    await store.create_schema()

    async def one(n: int) -> int:
        call_id = await store.start_call(
            call_sid=f"CA-c{n}",
            business_id="b",
            from_number=None,
            to_number=None,
            started_at=T0 + timedelta(seconds=n),
        )
        await store.add_event(call_id, "caller", {"n": n}, T0)
        await store.end_call(call_id, "no_booking", T0 + timedelta(minutes=1))
        return call_id

    ids = await asyncio.gather(*(one(n) for n in range(20)))
    assert len(set(ids)) == 20
    assert len(await store.recent_calls(limit=50)) == 20


WRITER = """
import asyncio, sys
from datetime import datetime, UTC
from agent.calls import CallStore, EventKind
from agent.database import make_engine
from agent.phone import CallRecorder
from booking.clock import FixedClock

async def main(url, tag):
    engine = make_engine(url)
    store = CallStore(engine)
    await store.create_schema()
    for n in range(25):
        call_id = await store.start_call(call_sid=f"CA-{tag}-{n}", business_id="b", from_number=None,
                                         to_number=None, started_at=datetime.now(UTC))
        await store.add_event(call_id, "caller", {"n": n}, datetime.now(UTC))
    await engine.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.skipif(POSTGRES_URL is None, reason="TEST_DATABASE_URL is not set")
async def test_several_server_processes_share_postgres() -> None:
    """Two separate processes record calls into one PostgreSQL without losing or mixing any."""
    assert POSTGRES_URL is not None
    engine = make_engine(POSTGRES_URL)
    from agent.calls import metadata

    async with engine.begin() as connection:
        await connection.run_sync(metadata.drop_all)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, POSTGRES_URL, tag, env=env, cwd=REPO_ROOT
        )
        for tag in ("p1", "p2")
    ]
    async with asyncio.timeout(60):
        assert [await p.wait() for p in processes] == [0, 0]
    try:
        records = await CallStore(engine).recent_calls(limit=100)
    finally:
        await engine.dispose()
    assert sorted(r.call_sid for r in records) == sorted(
        f"CA-{t}-{n}" for t in ("p1", "p2") for n in range(25)
    )


class CountedStore(CallStore):
    """The call store, counting its transactions for events and holding the first one a moment."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.writes = 0
        self.first_write = asyncio.Event()
        self.release = asyncio.Event()

    async def add_events(
        self, call_id: int, events: Sequence[tuple[EventKind, dict[str, Any], datetime]]
    ) -> None:
        self.writes += 1
        if self.writes == 1:
            self.first_write.set()
            await self.release.wait()
        await super().add_events(call_id, events)


async def test_a_calls_events_queued_behind_a_slow_write_are_recorded_in_order_in_one_more(
    engine: AsyncEngine,
) -> None:
    store = CountedStore(engine)
    await store.create_schema()
    call_id = await store.start_call(
        call_sid="CA9", business_id="bright-smile", from_number=None, to_number=None, started_at=T0
    )
    recorder = CallRecorder(store, call_id, FixedClock(T0))
    await recorder("caller", {"text": "Hi"})
    await store.first_write.wait()  # the first write is under way (a busy database)
    for n in range(5):
        await recorder("agent", {"n": n})
    store.release.set()
    await recorder.close()
    record = await store.get_call(call_id)
    assert [event.data for event in record.events] == [{"text": "Hi"}] + [{"n": n} for n in range(5)]
    assert store.writes == 2  # the five that waited went in one transaction
