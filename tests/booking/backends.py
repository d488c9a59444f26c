"""The `Calendar` backends the behavioural suite runs against, each built from one neutral `Scenario`.

A factory is an async context manager: it takes the scenario (business time zone, services, weekly
opening hours, a pinned "now") and yields a ready `Calendar`. Each backend turns the scenario into
its own configuration; the suite in test_calendar_contract.py never sees how.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time

import httpx

from agent.loopback.calcom_api import FakeCalcom, FakeEventType
from booking.calendar import Calendar
from booking.calendars.calcom import DEFAULT_API_URL, CalcomCalendar
from booking.clock import FixedClock
from booking.models import Service
from tests.booking.local_backend import local_backend


@dataclass(frozen=True)
class Scenario:
    """What a business looks like, in words every backend understands.

    `weekly_hours` maps a weekday (0 = Monday) to its opening spans in the business's wall-clock
    time; `closed_dates` are local dates it is shut all day; `staff` is ignored by single-host backends.
    """

    time_zone: str
    services: tuple[Service, ...]
    weekly_hours: Mapping[int, Sequence[tuple[time, time]]]
    now: datetime
    closed_dates: frozenset[date] = frozenset()
    staff: tuple[str, ...] = ()


BackendFactory = Callable[[Scenario], AbstractAsyncContextManager[Calendar]]


@asynccontextmanager
async def calcom_over_fake(scenario: Scenario) -> AsyncIterator[Calendar]:
    """`CalcomCalendar` over `FakeCalcom`; services and time zone come from the API, as in production."""
    clock = FixedClock(scenario.now)
    fake = FakeCalcom(
        clock,
        time_zone=scenario.time_zone,
        weekly_hours=scenario.weekly_hours,
        closed_dates=scenario.closed_dates,
        event_types=[
            FakeEventType(
                id=100 + index,
                slug=service.key,
                title=service.name,
                length_minutes=int(service.duration.total_seconds() // 60),
                requires_confirmation=service.requires_confirmation,
            )
            for index, service in enumerate(scenario.services, start=1)
        ],
    )
    async with httpx.AsyncClient(base_url=DEFAULT_API_URL, transport=httpx.MockTransport(fake)) as client:
        yield CalcomCalendar(client, api_key=fake.api_key, clock=clock)


BACKENDS: list[BackendFactory] = [calcom_over_fake, local_backend]
