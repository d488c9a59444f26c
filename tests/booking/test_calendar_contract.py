"""One behavioural suite for every `Calendar` backend: the same assertions, whatever is behind it.

The conversation layer only ever sees the `Calendar` Protocol, so a caller must get the same answers
from Cal.com (here through `FakeCalcom`) and from the embedded calendar. Backends are listed in
`tests/booking/backends.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.calendar import Calendar
from booking.errors import NotFound, SlotTaken
from booking.models import Attendee, BookingRequest, Service, Slot, Window, minutes
from tests.booking.backends import BACKENDS, BackendFactory, Scenario

ZONE = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 10, 10, 7, tzinfo=ZONE)
"""A Tuesday morning, two days after the US clocks went forward."""

SCENARIO = Scenario(
    time_zone="America/New_York",
    services=(
        Service("cleaning", "Teeth cleaning", minutes(30)),
        Service("consult", "New patient consultation", minutes(60), requires_confirmation=True),
    ),
    weekly_hours={weekday: ((time(9), time(17)),) for weekday in range(5)},
    now=NOW,
)
JANE = Attendee("Jane Doe", "jane@example.com", "America/New_York", phone="+15551234567")
OMAR = Attendee("Omar Haddad", "omar@example.com", "America/Chicago", phone="+13125550199")


@pytest.fixture(params=BACKENDS, ids=lambda factory: factory.__name__)
async def calendar(request: pytest.FixtureRequest) -> AsyncIterator[Calendar]:
    factory: BackendFactory = request.param
    async with factory(SCENARIO) as backend:
        yield backend


def day(offset: int) -> Window:
    """The whole local day `offset` days after NOW's date."""
    start = datetime.combine(NOW.date() + timedelta(days=offset), time(0), tzinfo=ZONE)
    return Window(start, datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=ZONE))


async def service(calendar: Calendar, key: str) -> Service:
    return next(s for s in await calendar.services() if s.key == key)


async def starts(calendar: Calendar, key: str, window: Window) -> list[datetime]:
    return [slot.start for slot in await calendar.slots(await service(calendar, key), window)]


async def slot_at(calendar: Calendar, key: str, hour: int, offset: int = 1) -> Slot:
    wanted = datetime.combine(NOW.date() + timedelta(days=offset), time(hour), tzinfo=ZONE)
    slots = await calendar.slots(await service(calendar, key), day(offset))
    return next(slot for slot in slots if slot.start == wanted)


def request_for(slot: Slot, attendee: Attendee = JANE, attempt: str = "call-1-attempt-1") -> BookingRequest:
    return BookingRequest(slot=slot, attendee=attendee, attempt_id=attempt)


async def test_lists_the_business_services(calendar: Calendar) -> None:
    """Both services are bookable, with their durations and confirmation policy."""
    services = {s.key: s for s in await calendar.services()}
    assert services["cleaning"].duration == minutes(30)
    assert services["consult"].requires_confirmation
    assert (await calendar.time_zone()).key == "America/New_York"


async def test_offers_slots_inside_the_window_and_never_in_the_past(calendar: Calendar) -> None:
    """Today's offer starts after now, stays inside opening hours and the window, earliest first."""
    window = day(0)
    offered = await calendar.slots(await service(calendar, "cleaning"), window)
    assert offered
    assert [s.start for s in offered] == sorted(s.start for s in offered)
    for slot in offered:
        local = slot.start.astimezone(ZONE)
        assert window.contains(slot.start)
        assert slot.start >= NOW
        assert slot.end - slot.start == minutes(30)
        assert time(9) <= local.time() and slot.end.astimezone(ZONE).time() <= time(17)


async def test_offers_nothing_when_closed_or_already_past(calendar: Calendar) -> None:
    """Saturday is closed, and yesterday is gone."""
    assert await starts(calendar, "cleaning", day(4)) == []
    assert await starts(calendar, "cleaning", day(-1)) == []


async def test_hold_then_create_gives_an_accepted_booking_seen_by_get_and_find(calendar: Calendar) -> None:
    """A confirmed booking is visible by uid and by the caller's email and phone."""
    slot = await slot_at(calendar, "cleaning", 11)
    hold = await calendar.hold(slot)
    booking = await calendar.create(request_for(slot), hold)

    assert booking.status == "accepted"
    assert booking.start == slot.start and booking.end == slot.end
    assert booking.service_key == "cleaning"
    fetched = await calendar.get(booking.uid)
    assert (fetched.start, fetched.status, fetched.attendee.name) == (slot.start, "accepted", "Jane Doe")
    by_email = await calendar.find(email=JANE.email, window=day(1))
    by_phone = await calendar.find(phone=JANE.phone, window=day(1))
    assert [b.uid for b in by_email] == [booking.uid] == [b.uid for b in by_phone]
    assert await calendar.find(email=OMAR.email, window=day(1)) == []


async def test_a_held_slot_is_not_offered_again_until_released(calendar: Calendar) -> None:
    """While one caller decides, nobody else is offered that time; releasing gives it back."""
    slot = await slot_at(calendar, "cleaning", 11)
    hold = await calendar.hold(slot)
    assert slot.start not in await starts(calendar, "cleaning", day(1))
    await calendar.release(hold)
    assert slot.start in await starts(calendar, "cleaning", day(1))


async def test_a_booked_slot_is_not_offered_again(calendar: Calendar) -> None:
    """Once booked, the time disappears from the offer for every service."""
    slot = await slot_at(calendar, "cleaning", 11)
    await calendar.create(request_for(slot), None)
    assert slot.start not in await starts(calendar, "cleaning", day(1))
    assert slot.start not in await starts(calendar, "consult", day(1))


async def test_create_on_a_taken_slot_raises_slot_taken(calendar: Calendar) -> None:
    """A second caller cannot get the same time."""
    slot = await slot_at(calendar, "cleaning", 11)
    await calendar.create(request_for(slot), None)
    with pytest.raises(SlotTaken):
        await calendar.create(request_for(slot, OMAR, attempt="call-2-attempt-1"), None)


async def test_reschedule_moves_the_booking(calendar: Calendar) -> None:
    """The new time is booked and shown by get; the old time is free again."""
    old_slot = await slot_at(calendar, "cleaning", 11)
    new_slot = await slot_at(calendar, "cleaning", 14)
    booking = await calendar.create(request_for(old_slot), None)

    moved = await calendar.reschedule(booking.uid, new_slot.start, reason="school run")

    assert moved.start == new_slot.start
    assert moved.status == "accepted"
    assert (await calendar.get(moved.uid)).start == new_slot.start
    offered = await starts(calendar, "cleaning", day(1))
    assert old_slot.start in offered
    assert new_slot.start not in offered
    assert [b.start for b in await calendar.find(email=JANE.email, window=day(1))] == [new_slot.start]


async def test_cancel_frees_the_slot(calendar: Calendar) -> None:
    """A cancelled booking says so and its time is offered again."""
    slot = await slot_at(calendar, "cleaning", 11)
    booking = await calendar.create(request_for(slot), None)

    cancelled = await calendar.cancel(booking.uid, reason="feeling better")

    assert cancelled.status == "cancelled"
    assert (await calendar.get(booking.uid)).status == "cancelled"
    assert slot.start in await starts(calendar, "cleaning", day(1))
    assert await calendar.find(email=JANE.email, window=day(1)) == []


async def test_a_service_needing_confirmation_books_as_pending(calendar: Calendar) -> None:
    """The caller is told "requested", not "booked"."""
    slot = await slot_at(calendar, "consult", 10)
    booking = await calendar.create(request_for(slot), await calendar.hold(slot))
    assert booking.status == "pending"
    assert (await calendar.get(booking.uid)).status == "pending"


async def test_unknown_uid_raises_not_found(calendar: Calendar) -> None:
    """Asking for a booking that does not exist is a clear NotFound, for reads and writes."""
    with pytest.raises(NotFound):
        await calendar.get("no-such-booking")
    with pytest.raises(NotFound):
        await calendar.cancel("no-such-booking", reason="test")
    with pytest.raises(NotFound):
        await calendar.reschedule("no-such-booking", NOW + timedelta(days=1))
