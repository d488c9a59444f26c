"""Build the embedded calendar for tests: on a fresh SQLite file, or a fresh PostgreSQL schema.

`local_backend(scenario)` is the factory the backend-neutral contract suite calls (listed in
`BACKENDS` in backends.py). The database helpers serve the local calendar's own tests, which run on
both databases: PostgreSQL only when `TEST_DATABASE_URL` is set, each test in a schema of its own
so that parallel runs cannot collide.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.database import make_engine
from booking.calendar import Calendar
from booking.calendars.local import LocalCalendar, LocalCalendarConfig, LocalService, create_schema
from booking.clock import FixedClock

if TYPE_CHECKING:
    # Only for the annotation: backends.py lists this factory, so importing it here would be circular.
    from tests.booking.backends import Scenario

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
DatabaseKind = Literal["sqlite", "postgres"]

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgres",
        id="postgres",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(POSTGRES_URL is None, reason="TEST_DATABASE_URL is not set"),
        ],
    ),
]


class CalendarDatabase:
    """One empty database for one test; every `engine()` is a separate pool, like a separate process."""

    def __init__(self, url: str, schema: str | None) -> None:
        self._url = url
        self._schema = schema
        self._engines: list[AsyncEngine] = []

    def engine(self) -> AsyncEngine:
        engine = make_engine(self._url)
        self._engines.append(engine)
        if self._schema is None:
            return engine
        return engine.execution_options(schema_translate_map={None: self._schema})

    async def dispose(self) -> None:
        for engine in self._engines:
            await engine.dispose()


@asynccontextmanager
async def open_database(
    kind: DatabaseKind, directory: Path, *, with_schema: bool = True
) -> AsyncIterator[CalendarDatabase]:
    """An empty database, with the calendar schema unless told otherwise; removed afterwards."""
    if kind == "sqlite":
        url, schema = f"sqlite+aiosqlite:///{directory / 'calendar.db'}", None
    else:
        assert POSTGRES_URL is not None
        url, schema = POSTGRES_URL, f"cal_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    database = CalendarDatabase(url, schema)
    try:
        async with admin.begin() as connection:
            if schema is None:
                # Creates the file and turns on WAL once, before any test races connections at it.
                await connection.execute(text("SELECT 1"))
            else:
                await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        if with_schema:
            await create_schema(database.engine())
        yield database
    finally:
        await database.dispose()
        if schema is not None:
            async with admin.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


def config_for(scenario: Scenario) -> LocalCalendarConfig:
    """The scenario as embedded-calendar rules: no buffers or notice beyond what it states."""
    return LocalCalendarConfig(
        time_zone=scenario.time_zone,
        services=tuple(LocalService(service) for service in scenario.services),
        weekly_hours={day: tuple(spans) for day, spans in scenario.weekly_hours.items()},
        closed_dates=scenario.closed_dates,
        staff=scenario.staff,
    )


@asynccontextmanager
async def local_backend(scenario: Scenario) -> AsyncIterator[Calendar]:
    """The embedded calendar for `scenario`, on a fresh SQLite file deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="local-calendar-") as directory:
        async with open_database("sqlite", Path(directory)) as database:
            yield LocalCalendar(database.engine(), config_for(scenario), FixedClock(scenario.now))
