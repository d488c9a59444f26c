"""Fixtures shared by the whole suite: databases (SQLite always, PostgreSQL when CI provides one), and
retries that never wait (stamina's test mode)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import stamina
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.calls import metadata as calls_metadata
from agent.database import make_engine

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_retry_backoff() -> Iterator[None]:
    """Retries still happen, as many as the code asks for (at most 3), but never wait."""
    with stamina.set_testing(True, attempts=3, cap=True):
        yield


def _database_params() -> list[object]:
    params: list[object] = [pytest.param("sqlite", id="sqlite")]
    params.append(
        pytest.param(
            "postgres",
            id="postgres",
            marks=pytest.mark.skipif(POSTGRES_URL is None, reason="TEST_DATABASE_URL is not set"),
        )
    )
    return params


@pytest.fixture(params=_database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL: a SQLite file per test, or the CI PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    assert POSTGRES_URL is not None
    return POSTGRES_URL


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty call-record schema (PostgreSQL tables are dropped first)."""
    engine = make_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(calls_metadata.drop_all)
    try:
        yield engine
    finally:
        await engine.dispose()
