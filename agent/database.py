"""The project's database: one async SQLAlchemy engine from `DATABASE_URL`.

SQLite is the embedded default (one machine, one file under `./var/`); PostgreSQL is the path for
several server processes or machines. Both are driven through the same engine API; SQLite gets
WAL mode and a busy timeout so concurrent writers in one process or several wait their turn
instead of failing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agent.errors import DatabaseUnavailable

CONNECT_TIMEOUT_SECONDS = 5.0
SQLITE_BUSY_TIMEOUT_MS = 10_000


def describe(url: str) -> str:
    """The URL with any password masked, for logs and `doctor`."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def make_engine(url: str) -> AsyncEngine:
    """Create the engine; for a SQLite file, create its folder first."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailable(f"DATABASE_URL {url!r} is not a database URL.") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The busy timeout first: switching a new file to WAL takes a lock other processes may hold.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


async def check_connection(engine: AsyncEngine) -> None:
    """Open one connection and run `SELECT 1`; failure is one `DatabaseUnavailable` sentence."""
    where = describe(engine.url.render_as_string(hide_password=False))
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS + 1):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except TimeoutError as exc:
        raise DatabaseUnavailable(
            f"The database at {where} did not answer within {CONNECT_TIMEOUT_SECONDS:.0f} seconds."
        ) from exc
    except (OperationalError, DBAPIError, OSError) as exc:
        reason = _first_line(exc)
        raise DatabaseUnavailable(f"Cannot connect to the database at {where}: {reason}.") from exc


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    message = str(original).strip().splitlines()
    return (message[0] if message else type(original).__name__).rstrip(".")
