"""The composition root: from `Settings` to the running parts (businesses, database, call records).

Every entry point (serve, chat, simulate, doctor) opens the runtime here, so start-up problems are
found the same way everywhere and reported as one sentence (`RuntimeFailure`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from agent.businesses import DEMO_BUSINESSES_FILE, Directory, load_directory
from agent.calls import CallStore
from agent.database import check_connection, make_engine
from agent.errors import ConfigError
from agent.settings import Settings


@dataclass(frozen=True)
class Runtime:
    """What a running process shares between calls."""

    settings: Settings
    directory: Directory
    engine: AsyncEngine
    calls: CallStore


def load_businesses(settings: Settings) -> Directory:
    """The configured profiles; with no file, the demo business in embedded mode."""
    if settings.businesses_file is not None:
        return load_directory(settings.businesses_file)
    if settings.calendar_backend == "embedded":
        return load_directory(DEMO_BUSINESSES_FILE)
    raise ConfigError(
        "BUSINESSES_FILE is not set; with CALCOM_API_KEY set, list your businesses and their "
        "Cal.com event type ids in a profile file."
    )


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Load profiles, connect to the database and prepare its schema; close it all on exit."""
    directory = load_businesses(settings)
    engine = make_engine(settings.database_url)
    try:
        await check_connection(engine)
        calls = CallStore(engine)
        await calls.create_schema()
        yield Runtime(settings=settings, directory=directory, engine=engine, calls=calls)
    finally:
        await engine.dispose()
