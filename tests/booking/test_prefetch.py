"""The first availability question of a call is answered from the prefetch, not from Cal.com."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from agent.loopback.calcom_api import FakeCalcom, FakeEventType
from booking.calendars.calcom import DEFAULT_API_URL, CalcomCalendar
from booking.calendars.prefetch import PrefetchingCalendar
from booking.clock import FixedClock
from booking.models import Window

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def slot_requests(fake: FakeCalcom) -> int:
    return sum(1 for r in fake.requests if r.url.path.endswith("/slots"))


async def test_question_inside_the_prefetched_days_costs_no_request() -> None:
    """After the call-start prefetch, 'Tuesday afternoon' needs no further Cal.com request."""
    clock = FixedClock(NOW)
    fake = FakeCalcom(clock, event_types=[FakeEventType(7, "cleaning", "Cleaning", 30)])
    async with httpx.AsyncClient(base_url=DEFAULT_API_URL, transport=httpx.MockTransport(fake)) as client:
        inner = CalcomCalendar(client, api_key=fake.api_key, clock=clock, time_zone="America/New_York")
        [service] = await inner.services()
        calendar = PrefetchingCalendar(inner, clock)
        calendar.prefetch(service, Window(NOW, NOW + timedelta(days=14)))
        tuesday = Window(datetime(2026, 11, 24, 18, 0, tzinfo=UTC), datetime(2026, 11, 24, 22, 0, tzinfo=UTC))
        found = await calendar.slots(service, tuesday)
        assert found and all(tuesday.contains(s.start) for s in found)
        assert slot_requests(fake) == 1
        assert found == await inner.slots(service, tuesday)


async def test_a_write_or_staleness_drops_the_prefetch() -> None:
    """After a hold, or once the list is a minute old, availability is asked afresh."""
    clock = FixedClock(NOW)
    fake = FakeCalcom(clock, event_types=[FakeEventType(7, "cleaning", "Cleaning", 30)])
    async with httpx.AsyncClient(base_url=DEFAULT_API_URL, transport=httpx.MockTransport(fake)) as client:
        inner = CalcomCalendar(
            client, api_key=fake.api_key, clock=clock, time_zone="America/New_York", slot_ttl=timedelta(0)
        )
        [service] = await inner.services()
        calendar = PrefetchingCalendar(inner, clock)
        window = Window(NOW, NOW + timedelta(days=14))
        calendar.prefetch(service, window)
        first = await calendar.slots(service, window)
        hold = await calendar.hold(first[0])
        after_hold = await calendar.slots(service, window)
        assert first[0] not in after_hold
        await calendar.release(hold)
        calendar.prefetch(service, window)
        await calendar.slots(service, window)
        clock.advance(timedelta(minutes=2))
        before = slot_requests(fake)
        await calendar.slots(service, window)
        assert slot_requests(fake) == before + 1
        await calendar.close()
