"""Conventions every table of the project follows, on SQLite and PostgreSQL alike.

* Time is stored through one type (`UTCDateTime`): aware datetimes in, aware UTC out. SQLite keeps
  no zone and PostgreSQL converts to the session's zone; bookings, holds, call records and messages
  all need the same instant back.
* Tables are created by `create_tables`, safe when several server processes start at once:
  `metadata.create_all` checks first and creates second, so two processes can both decide to
  create, and on PostgreSQL two concurrent `CREATE TABLE IF NOT EXISTS` can still collide on the
  catalogue. Every statement is `IF NOT EXISTS`, and PostgreSQL serialises the whole step.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, MetaData, TypeDecorator, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

# One advisory lock for every schema step of the project (any constant; "rcpt").
_SCHEMA_LOCK_KEY = 0x7263_7074


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC (`timestamptz` on PostgreSQL, ISO text on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime: {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def create_tables(engine: AsyncEngine, metadata: MetaData) -> None:
    """Create the tables and indexes of `metadata` that do not exist yet; idempotent and race-safe."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        for table in metadata.sorted_tables:
            await connection.execute(CreateTable(table, if_not_exists=True))
            for index in sorted(table.indexes, key=lambda index: str(index.name)):
                await connection.execute(CreateIndex(index, if_not_exists=True))
