"""The record of every call: who called which business, what was said, which tools ran, how it ended.

Businesses expect this record; developers read it to see why a call went the way it did. It lives
in the project's database (SQLite or PostgreSQL) next to the embedded calendar. The same tables
hold the webhook events other systems send us, each stored once per (source, trigger, uid).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from booking.sql import UTCDateTime, create_tables

EventKind = Literal["caller", "agent", "tool_call", "tool_result", "turn_latency", "note"]
Outcome = Literal["booked", "pending", "rescheduled", "cancelled", "transferred", "no_booking", "failed"]


metadata = MetaData()

calls = Table(
    "calls",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
    Column("call_sid", String(64), nullable=False, unique=True),
    Column("business_id", String(64), nullable=False),
    Column("from_number", String(32)),
    Column("to_number", String(32)),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("outcome", String(32)),
    Index("ix_calls_business_started", "business_id", "started_at"),
)

call_events = Table(
    "call_events",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
    Column("call_id", ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data", JSON, nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("uid", String(128), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("processed_at", UTCDateTime()),
    Column("payload", JSON, nullable=False),
    UniqueConstraint("source", "trigger", "uid", name="uq_webhook_once"),
)


@dataclass(frozen=True, slots=True)
class CallEvent:
    at: datetime
    kind: EventKind
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: int
    call_sid: str
    business_id: str
    from_number: str | None
    to_number: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    events: tuple[CallEvent, ...] = ()


class CallStore:
    """Writes and reads call records. Safe to share between concurrent calls and processes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        """Create the tables that do not exist yet (idempotent; runs at every start-up)."""
        await create_tables(self._engine, metadata)

    async def start_call(
        self,
        *,
        call_sid: str,
        business_id: str,
        from_number: str | None,
        to_number: str | None,
        started_at: datetime,
    ) -> int:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                insert(calls)
                .values(
                    call_sid=call_sid,
                    business_id=business_id,
                    from_number=from_number,
                    to_number=to_number,
                    started_at=started_at,
                )
                .returning(calls.c.id)
            )
            return int(result.scalar_one())

    async def add_event(self, call_id: int, kind: EventKind, data: dict[str, Any], at: datetime) -> None:
        await self.add_events(call_id, [(kind, data, at)])

    async def add_events(
        self, call_id: int, events: Sequence[tuple[EventKind, dict[str, Any], datetime]]
    ) -> None:
        """Several events of one call, in order, in one transaction (one commit, not one each)."""
        rows = [{"call_id": call_id, "kind": kind, "data": data, "at": at} for kind, data, at in events]
        async with self._engine.begin() as connection:
            await connection.execute(insert(call_events), rows)

    async def end_call(self, call_id: int, outcome: Outcome, ended_at: datetime) -> None:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(calls)
                .where(calls.c.id == call_id, calls.c.ended_at.is_(None))
                .values(outcome=outcome, ended_at=ended_at)
            )
            if result.rowcount == 0:
                await self.get_call(call_id)

    async def get_call(self, call_id: int) -> CallRecord:
        async with self._engine.connect() as connection:
            row = (await connection.execute(select(calls).where(calls.c.id == call_id))).one_or_none()
            if row is None:
                raise LookupError(f"no call with id {call_id}")
            events = await connection.execute(
                select(call_events).where(call_events.c.call_id == call_id).order_by(call_events.c.id)
            )
            return _record(row._mapping, tuple(CallEvent(at=e.at, kind=e.kind, data=e.data) for e in events))

    async def recent_calls(self, limit: int = 20) -> list[CallRecord]:
        async with self._engine.connect() as connection:
            rows = await connection.execute(
                select(calls).order_by(calls.c.started_at.desc(), calls.c.id.desc()).limit(limit)
            )
            return [_record(row._mapping, ()) for row in rows]

    async def record_webhook(
        self, *, source: str, trigger: str, uid: str, payload: dict[str, Any], received_at: datetime
    ) -> bool:
        """Store a webhook event once; False when this (source, trigger, uid) was already stored."""
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(webhook_events).values(
                        source=source, trigger=trigger, uid=uid, payload=payload, received_at=received_at
                    )
                )
        except IntegrityError:
            return False
        return True


def _record(row: Any, events: tuple[CallEvent, ...]) -> CallRecord:
    return CallRecord(
        id=row["id"],
        call_sid=row["call_sid"],
        business_id=row["business_id"],
        from_number=row["from_number"],
        to_number=row["to_number"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        outcome=row["outcome"],
        events=events,
    )
