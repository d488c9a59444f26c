"""The embedded calendar, as a caller and the business experience it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from booking.calendars._local_hours import opening_periods
from booking.calendars._local_store import Store
from booking.calendars.local import LocalCalendar, LocalCalendarConfig, LocalService, create_schema
from booking.clock import FixedClock
from booking.errors import CalendarUnavailable, InvalidRequest, NotFound, OutsideHours, SlotTaken, TooSoon
from booking.models import Attendee, Booking, BookingRequest, Service, Slot, Window, minutes
from tests.booking.backends import Scenario
from tests.booking.local_backend import (
    DATABASES,
    CalendarDatabase,
    DatabaseKind,
    local_backend,
    open_database,
)

NY = ZoneInfo("America/New_York")
CLEANING = Service("cleaning", "teeth cleaning", minutes(45))
CONSULT = Service("consultation", "consultation", minutes(30))
WHITENING = Service("whitening", "whitening", minutes(60), requires_confirmation=True)
WORKDAY = ((time(8), time(12)), (time(13), time(17)))
CLOSED_WEDNESDAY = date(2026, 3, 4)
ANN = Attendee("Ann Lee", "Ann.Lee@example.com", "America/New_York", "+15550100001")
BOB = Attendee("Bob Roy", "bob@example.com", "America/New_York", "+15550100002")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in March 2026, New York."""
    return datetime(2026, 3, day, hour, minute, tzinfo=NY)


def config(*, staff: tuple[str, ...] = (), calendar_id: str = "bright-smile") -> LocalCalendarConfig:
    return LocalCalendarConfig(
        time_zone="America/New_York",
        services=(
            LocalService(
                CLEANING, buffer_after=minutes(15), min_notice=timedelta(hours=2), slot_interval=minutes(30)
            ),
            LocalService(CONSULT, slot_interval=minutes(30), horizon=timedelta(days=7)),
            LocalService(WHITENING),
        ),
        weekly_hours={weekday: WORKDAY for weekday in range(5)},
        closed_dates=frozenset({CLOSED_WEDNESDAY}),
        staff=staff,
        calendar_id=calendar_id,
    )


def slot(service: Service, start: datetime) -> Slot:
    return Slot(service.key, start, (start.astimezone(UTC) + service.duration).astimezone(start.tzinfo))


def request(chosen: Slot, who: Attendee = ANN, attempt: str | None = None) -> BookingRequest:
    return BookingRequest(chosen, who, attempt or uuid.uuid4().hex)


def day_of(day: int) -> Window:
    return Window(at(day, 0), at(day + 1, 0))


def starts(slots: list[Slot]) -> list[str]:
    return [s.start.strftime("%H:%M") for s in slots]


@pytest.fixture(params=DATABASES)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CalendarDatabase]:
    async with open_database(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(at(2, 7))  # Monday 07:00


@pytest.fixture
def calendar(database: CalendarDatabase, clock: FixedClock) -> LocalCalendar:
    return LocalCalendar(database.engine(), config(), clock)


async def test_lists_services_and_zone_as_configured(calendar: LocalCalendar) -> None:
    """The business's services come back in profile order, with its time zone."""
    assert [s.key for s in await calendar.services()] == ["cleaning", "consultation", "whitening"]
    assert await calendar.time_zone() == NY


async def test_offers_starts_inside_hours_after_notice(calendar: LocalCalendar) -> None:
    """Cleanings start 2 h from now at the earliest, every 30 min, and end before lunch and closing."""
    offered = await calendar.slots(CLEANING, day_of(2))
    morning, afternoon = "09:00 09:30 10:00 10:30 11:00", "13:00 13:30 14:00 14:30 15:00 15:30 16:00"
    assert " ".join(starts(offered)) == f"{morning} {afternoon}"
    assert all(s.start.tzinfo == NY and s.end - s.start == minutes(45) for s in offered)


async def test_offers_nothing_on_closed_days_or_beyond_the_horizon(calendar: LocalCalendar) -> None:
    """A closed date, a weekend and a day past the horizon have no slots."""
    assert await calendar.slots(CLEANING, day_of(CLOSED_WEDNESDAY.day)) == []
    assert await calendar.slots(CLEANING, day_of(7)) == []
    assert await calendar.slots(CONSULT, day_of(10)) == []
    assert await calendar.slots(CONSULT, day_of(6)) != []


async def test_an_instant_window_offers_that_start_only(calendar: LocalCalendar) -> None:
    """Asking about exactly 10:00 returns the 10:00 slot and nothing else."""
    assert starts(await calendar.slots(CLEANING, Window(at(3, 10), at(3, 10)))) == ["10:00"]


async def test_booking_removes_the_slot_and_its_buffer(calendar: LocalCalendar) -> None:
    """A 13:00 cleaning with 15 min after it also takes 13:30 away; 14:00 stays free."""
    booking = await calendar.create(request(slot(CLEANING, at(3, 13))), None)
    assert booking.status == "accepted"
    assert booking.start == at(3, 13) and booking.end == at(3, 13, 45)
    remaining = starts(await calendar.slots(CLEANING, Window(at(3, 12), at(3, 15))))
    assert remaining == ["14:00", "14:30"]
    assert await calendar.get(booking.uid) == booking


async def test_buffers_stop_a_booking_that_would_touch_them(calendar: LocalCalendar) -> None:
    """A consultation inside a cleaning's buffer is refused by the database as taken."""
    await calendar.create(request(slot(CLEANING, at(3, 13))), None)
    with pytest.raises(SlotTaken):
        await calendar.create(request(slot(CONSULT, at(3, 13, 50)), BOB), None)
    assert (await calendar.create(request(slot(CONSULT, at(3, 14)), BOB), None)).start == at(3, 14)


async def test_confirmation_services_book_pending_and_still_block(calendar: LocalCalendar) -> None:
    """Whitening needs the business's confirmation: the booking is pending, and the slot is gone."""
    booking = await calendar.create(request(slot(WHITENING, at(3, 9))), None)
    assert booking.status == "pending"
    with pytest.raises(SlotTaken):
        await calendar.create(request(slot(WHITENING, at(3, 9)), BOB), None)


async def test_a_repeated_attempt_returns_the_first_booking(calendar: LocalCalendar) -> None:
    """Retrying a create with the same attempt id never books twice."""
    first = await calendar.create(request(slot(CLEANING, at(3, 9)), attempt="attempt-1"), None)
    again = await calendar.create(request(slot(CLEANING, at(3, 9)), attempt="attempt-1"), None)
    assert again == first
    assert await calendar.find(email=ANN.email, window=day_of(3)) == [first]


@pytest.mark.parametrize(
    ("start", "error", "message"),
    [
        (at(2, 6), TooSoon, "in the past"),
        (at(2, 8, 30), TooSoon, "minimum notice"),
        (at(3, 12), OutsideHours, "opening hours"),
        (at(3, 11, 30), OutsideHours, "opening hours"),
        (at(7, 9), OutsideHours, "opening hours"),
        (at(4, 9), OutsideHours, "closed on that date"),
        (datetime(2026, 6, 1, 9, tzinfo=NY), OutsideHours, "horizon"),
    ],
    ids=["past", "inside-notice", "lunch", "runs-into-lunch", "saturday", "closed-date", "beyond-horizon"],
)
async def test_refuses_times_the_rules_forbid(
    calendar: LocalCalendar, start: datetime, error: type[Exception], message: str
) -> None:
    """Past, too-soon, closed and too-far times fail with the matching error and the slot in context."""
    with pytest.raises(error, match=message) as raised:
        await calendar.create(request(slot(CLEANING, start)), None)
    assert isinstance(raised.value, TooSoon | OutsideHours)
    assert raised.value.context["start"] == start.isoformat()
    assert raised.value.context["service_key"] == "cleaning"


async def test_refuses_malformed_requests(calendar: LocalCalendar) -> None:
    """An unknown service, a wrong length or an unknown staff member is an invalid request."""
    with pytest.raises(InvalidRequest, match="no such service"):
        await calendar.create(request(Slot("massage", at(3, 9), at(3, 10))), None)
    with pytest.raises(InvalidRequest, match="length"):
        await calendar.create(request(Slot("cleaning", at(3, 9), at(3, 10))), None)
    with pytest.raises(InvalidRequest, match="staff"):
        await calendar.hold(Slot("cleaning", at(3, 9), at(3, 9, 45), staff="Dr. Who"))


async def test_a_hold_keeps_the_slot_from_other_callers(calendar: LocalCalendar) -> None:
    """While Ann decides, Bob can neither see nor book her slot; she books it through the hold."""
    held = await calendar.hold(slot(CLEANING, at(3, 9)))
    assert "09:00" not in starts(await calendar.slots(CLEANING, day_of(3)))
    with pytest.raises(SlotTaken):
        await calendar.create(request(slot(CLEANING, at(3, 9)), BOB), None)
    booking = await calendar.create(request(slot(CLEANING, at(3, 9))), held)
    assert booking.attendee == ANN
    assert "09:00" not in starts(await calendar.slots(CLEANING, day_of(3)))


async def test_a_hold_lapses_after_its_ttl(calendar: LocalCalendar, clock: FixedClock) -> None:
    """Five minutes after a hold the slot is offered again and another caller can book it."""
    held = await calendar.hold(slot(CLEANING, at(3, 9)))
    assert held.expires_at == at(2, 7, 5)
    clock.advance(minutes(5))
    assert "09:00" in starts(await calendar.slots(CLEANING, day_of(3)))
    assert (await calendar.create(request(slot(CLEANING, at(3, 9)), BOB), None)).attendee == BOB


async def test_a_lapsed_hold_still_books_a_free_slot(calendar: LocalCalendar, clock: FixedClock) -> None:
    """A slow yes after the hold lapsed still books, if nobody took the time meanwhile."""
    held = await calendar.hold(slot(CLEANING, at(3, 9)))
    clock.advance(minutes(10))
    assert (await calendar.create(request(slot(CLEANING, at(3, 9))), held)).start == at(3, 9)


async def test_a_lapsed_hold_loses_to_a_later_booking(calendar: LocalCalendar, clock: FixedClock) -> None:
    """Once a hold lapsed and someone else booked, the slow caller is told the slot is taken."""
    held = await calendar.hold(slot(CLEANING, at(3, 9)))
    clock.advance(minutes(6))
    await calendar.create(request(slot(CLEANING, at(3, 9)), BOB), None)
    with pytest.raises(SlotTaken):
        await calendar.create(request(slot(CLEANING, at(3, 9))), held)


async def test_release_gives_the_slot_back(calendar: LocalCalendar) -> None:
    """A released hold frees the slot at once; releasing it again is harmless."""
    held = await calendar.hold(slot(CLEANING, at(3, 9)))
    await calendar.release(held)
    await calendar.release(held)
    assert "09:00" in starts(await calendar.slots(CLEANING, day_of(3)))


async def test_a_hold_for_another_slot_is_refused(calendar: LocalCalendar) -> None:
    """Booking 10:00 with the hold of 09:00 is a mistake, not a booking."""
    held = await calendar.hold(slot(CLEANING, at(3, 9)))
    with pytest.raises(InvalidRequest, match="different slot"):
        await calendar.create(request(slot(CLEANING, at(3, 10))), held)


async def test_find_by_email_or_phone_inside_the_window(calendar: LocalCalendar) -> None:
    """A caller's bookings are found by email (any case) or phone, in time order, cancelled ones left out."""
    later = await calendar.create(request(slot(CLEANING, at(5, 10))), None)
    earlier = await calendar.create(request(slot(CONSULT, at(3, 9))), None)
    cancelled = await calendar.create(request(slot(CONSULT, at(3, 14))), None)
    await calendar.create(request(slot(CONSULT, at(3, 10)), BOB), None)
    await calendar.cancel(cancelled.uid)
    week = Window(at(2, 0), at(9, 0))
    assert await calendar.find(email="ann.lee@EXAMPLE.com", window=week) == [earlier, later]
    assert await calendar.find(phone=ANN.phone, window=week) == [earlier, later]
    assert await calendar.find(phone=ANN.phone, window=day_of(5)) == [later]
    with pytest.raises(InvalidRequest):
        await calendar.find(window=week)


async def test_cancel_frees_the_slot(calendar: LocalCalendar) -> None:
    """A cancelled booking says so, keeps the reason, and its time can be booked again."""
    booking = await calendar.create(request(slot(CLEANING, at(3, 9))), None)
    cancelled = await calendar.cancel(booking.uid, "feeling better")
    assert cancelled.status == "cancelled" and cancelled.metadata["reason"] == "feeling better"
    assert await calendar.cancel(booking.uid) == cancelled
    assert (await calendar.create(request(slot(CLEANING, at(3, 9)), BOB), None)).attendee == BOB


async def test_unknown_uids_are_not_found(calendar: LocalCalendar) -> None:
    """Getting, cancelling or moving a booking that does not exist raises NotFound with the uid."""
    with pytest.raises(NotFound) as raised:
        await calendar.get("nope")
    assert raised.value.context == {"uid": "nope"}
    with pytest.raises(NotFound):
        await calendar.cancel("nope")
    with pytest.raises(NotFound):
        await calendar.reschedule("nope", at(3, 9))


async def test_reschedule_moves_the_booking_in_one_step(calendar: LocalCalendar) -> None:
    """The new time is booked, the old one is free again, and both records point at each other."""
    old = await calendar.create(request(slot(CLEANING, at(3, 9))), None)
    new = await calendar.reschedule(old.uid, at(3, 14), "school run")
    assert (new.start, new.status, new.attendee, new.rescheduled_from) == (
        at(3, 14),
        "accepted",
        ANN,
        old.uid,
    )
    before = await calendar.get(old.uid)
    assert before.status == "cancelled" and before.metadata["rescheduled_to"] == new.uid
    free = starts(await calendar.slots(CLEANING, day_of(3)))
    assert "09:00" in free and "14:00" not in free


async def test_reschedule_may_overlap_its_own_old_time(calendar: LocalCalendar) -> None:
    """Moving 09:00 to 09:30 works although the two times overlap: the booking never blocks itself."""
    old = await calendar.create(request(slot(CLEANING, at(3, 9))), None)
    assert (await calendar.reschedule(old.uid, at(3, 9, 30))).start == at(3, 9, 30)


async def test_reschedule_into_a_taken_time_changes_nothing(calendar: LocalCalendar) -> None:
    """If the new time is taken the caller keeps the old booking, untouched."""
    old = await calendar.create(request(slot(CLEANING, at(3, 9))), None)
    await calendar.create(request(slot(CLEANING, at(3, 14)), BOB), None)
    with pytest.raises(SlotTaken):
        await calendar.reschedule(old.uid, at(3, 14))
    assert await calendar.get(old.uid) == old
    with pytest.raises(SlotTaken):
        await calendar.create(request(slot(CLEANING, at(3, 9)), BOB), None)


async def test_reschedule_checks_the_rules_for_the_new_time(calendar: LocalCalendar) -> None:
    """Moving into lunch or inside the notice period is refused like a new booking would be."""
    old = await calendar.create(request(slot(CLEANING, at(3, 9))), None)
    with pytest.raises(OutsideHours):
        await calendar.reschedule(old.uid, at(3, 12))
    with pytest.raises(TooSoon):
        await calendar.reschedule(old.uid, at(2, 8))


async def test_a_repeated_reschedule_returns_the_moved_booking(calendar: LocalCalendar) -> None:
    """A retried reschedule to the same time returns the booking it made; a cancelled one cannot move."""
    old = await calendar.create(request(slot(CLEANING, at(3, 9))), None)
    new = await calendar.reschedule(old.uid, at(3, 14))
    assert await calendar.reschedule(old.uid, at(3, 14)) == new
    await calendar.cancel(new.uid)
    with pytest.raises(InvalidRequest, match="accepted or pending"):
        await calendar.reschedule(new.uid, at(3, 15))


async def test_staff_take_turns(database: CalendarDatabase, clock: FixedClock) -> None:
    """Bookings go to the least recently booked dentist; a slot holds one booking per dentist."""
    calendar = LocalCalendar(database.engine(), config(staff=("Dr. Lee", "Dr. Patel")), clock)
    assigned = [
        (await calendar.create(request(slot(CONSULT, at(3, h))), None)).metadata["staff"] for h in (9, 10, 11)
    ]
    assert assigned == ["Dr. Lee", "Dr. Patel", "Dr. Lee"]
    second = await calendar.create(request(slot(CONSULT, at(3, 11)), BOB), None)
    assert second.metadata["staff"] == "Dr. Patel"
    assert "11:00" not in starts(await calendar.slots(CONSULT, day_of(3)))
    with pytest.raises(SlotTaken):
        await calendar.create(request(slot(CONSULT, at(3, 11))), None)


async def test_reschedule_keeps_the_dentist_when_free(database: CalendarDatabase, clock: FixedClock) -> None:
    """A moved booking stays with its dentist, and goes to the other one only if that one is busy."""
    calendar = LocalCalendar(database.engine(), config(staff=("Dr. Lee", "Dr. Patel")), clock)
    ann = await calendar.create(request(slot(CONSULT, at(3, 9))), None)
    await calendar.create(request(slot(CONSULT, at(3, 10)), BOB), None)
    await calendar.create(request(slot(CONSULT, at(3, 11)), BOB), None)
    moved = await calendar.reschedule(ann.uid, at(3, 14))
    assert (ann.metadata["staff"], moved.metadata["staff"]) == ("Dr. Lee", "Dr. Lee")
    await calendar.hold(Slot(CONSULT.key, at(3, 15), at(3, 15, 30), staff="Dr. Lee"))
    assert (await calendar.reschedule(moved.uid, at(3, 15))).metadata["staff"] == "Dr. Patel"


async def test_fifty_callers_racing_for_one_slot_get_one_booking(calendar: LocalCalendar) -> None:
    """50 simultaneous creates for the same time: exactly one booking, 49 told the slot is taken."""
    chosen = slot(CLEANING, at(3, 9))
    results = await asyncio.gather(
        *(calendar.create(request(chosen, BOB, f"caller-{n}"), None) for n in range(50)),
        return_exceptions=True,
    )
    booked = [r for r in results if isinstance(r, Booking)]
    assert len(booked) == 1
    assert all(isinstance(r, SlotTaken) for r in results if not isinstance(r, Booking))
    assert await calendar.find(email=BOB.email, window=day_of(3)) == booked


async def test_two_processes_racing_for_one_slot_get_one_booking(
    database: CalendarDatabase, clock: FixedClock
) -> None:
    """Two servers with their own connection pools on one database still book a time only once."""
    servers = [LocalCalendar(database.engine(), config(), clock) for _ in range(2)]
    chosen = slot(CLEANING, at(3, 9))
    results = await asyncio.gather(
        *(servers[n % 2].create(request(chosen, BOB, f"caller-{n}"), None) for n in range(20)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Booking) for r in results) == 1
    assert sum(isinstance(r, SlotTaken) for r in results) == 19


async def test_racing_retries_of_one_attempt_book_once(calendar: LocalCalendar) -> None:
    """The same attempt sent ten times at once yields one booking, returned to every sender."""
    chosen = slot(CLEANING, at(3, 9))
    results = await asyncio.gather(
        *(calendar.create(request(chosen, attempt="same"), None) for _ in range(10))
    )
    assert len({b.uid for b in results}) == 1


async def test_moves_and_bookings_at_once_never_overlap_or_fail(
    database: CalendarDatabase, clock: FixedClock
) -> None:
    """Concurrent moves into each other's times and new bookings end booked or taken, never overlapping."""
    servers = [LocalCalendar(database.engine(), config(), clock) for _ in range(2)]
    times = [at(3, 9) + minutes(10 * n) for n in range(15)]
    booked = [await servers[0].create(request(slot(CONSULT, t), BOB), None) for t in times[::3]]
    moves = [servers[n % 2].reschedule(b.uid, b.start + minutes(15)) for n, b in enumerate(booked)]
    creates = [servers[n % 2].create(request(slot(CONSULT, t), BOB), None) for n, t in enumerate(times)]
    results = await asyncio.gather(*moves, *creates, return_exceptions=True)
    assert all(isinstance(r, Booking | SlotTaken) for r in results), results
    live = await servers[0].find(email=BOB.email, window=day_of(3))
    assert all(a.end <= b.start for a, b in pairwise(live))


async def test_businesses_sharing_a_database_do_not_block_each_other(
    database: CalendarDatabase, clock: FixedClock
) -> None:
    """Two businesses on one database each book 09:00 and see only their own bookings."""
    engine = database.engine()
    dentist = LocalCalendar(engine, config(calendar_id="dentist"), clock)
    salon = LocalCalendar(engine, config(calendar_id="salon"), clock)
    at_dentist = await dentist.create(request(slot(CLEANING, at(3, 9))), None)
    at_salon = await salon.create(request(slot(CLEANING, at(3, 9))), None)
    assert await salon.find(email=ANN.email, window=day_of(3)) == [at_salon]
    assert await dentist.find(email=ANN.email, window=day_of(3)) == [at_dentist]
    with pytest.raises(NotFound):
        await salon.get(at_dentist.uid)


async def test_create_schema_is_idempotent(database: CalendarDatabase, calendar: LocalCalendar) -> None:
    """Starting a second process re-runs create_schema without harm to existing bookings."""
    booking = await calendar.create(request(slot(CLEANING, at(3, 9))), None)
    await create_schema(database.engine())
    assert await calendar.get(booking.uid) == booking


@pytest.mark.parametrize("kind", DATABASES)
async def test_processes_starting_together_share_one_schema(
    kind: DatabaseKind, tmp_path: Path, clock: FixedClock
) -> None:
    """Four servers creating the tables at the same moment all start, and see each other's bookings."""
    async with open_database(kind, tmp_path, with_schema=False) as database:
        engines = [database.engine() for _ in range(4)]
        await asyncio.gather(*(create_schema(engine) for engine in engines))
        first, last = (LocalCalendar(engine, config(), clock) for engine in (engines[0], engines[-1]))
        booking = await first.create(request(slot(CLEANING, at(3, 9))), None)
        assert await last.get(booking.uid) == booking


async def test_a_missing_database_is_unavailable_not_a_crash(tmp_path: Path, clock: FixedClock) -> None:
    """Without its tables the calendar reports itself unavailable (retryable), naming the operation."""
    async with open_database("sqlite", tmp_path) as database:
        bare = LocalCalendar(
            database.engine().execution_options(schema_translate_map={None: "absent"}), config(), clock
        )
        with pytest.raises(CalendarUnavailable) as raised:
            await bare.slots(CLEANING, day_of(3))
    assert raised.value.retryable and raised.value.context["operation"] == "slots"


class _DeadlockDetected(Exception):
    """What asyncpg reports when PostgreSQL aborts a transaction to break a deadlock."""

    sqlstate = "40P01"


async def test_a_deadlock_victim_is_run_again(tmp_path: Path) -> None:
    """A write PostgreSQL aborted to break a deadlock is run again; only a persistent one surfaces."""
    async with open_database("sqlite", tmp_path) as database:
        store = Store(database.engine(), "bright-smile")
        attempts: list[int] = []

        async def deadlocked_once(connection: AsyncConnection) -> str:
            attempts.append(len(attempts))
            if len(attempts) == 1:
                raise DBAPIError(
                    "INSERT INTO cal_occupancy ...", None, _DeadlockDetected("deadlock detected")
                )
            return "written"

        async def always_deadlocked(connection: AsyncConnection) -> str:
            raise DBAPIError("INSERT INTO cal_occupancy ...", None, _DeadlockDetected("deadlock detected"))

        assert await store._write("create", deadlocked_once) == "written"
        assert len(attempts) == 2
        with pytest.raises(CalendarUnavailable, match="deadlock detected"):
            await store._write("create", always_deadlocked)


async def test_spring_forward_day_keeps_wall_clock_hours(tmp_path: Path) -> None:
    """On the day clocks go forward, a 9-to-5 business still opens at 09:00 local (now UTC-4)."""
    sunday_open = Scenario("America/New_York", (CONSULT,), {6: [(time(9), time(11))]}, at(7, 12))
    async with local_backend(sunday_open) as calendar:
        offered = await calendar.slots(CONSULT, day_of(8))
    assert starts(offered) == ["09:00", "09:30", "10:00", "10:30"]
    assert {s.start.utcoffset() for s in offered} == {timedelta(hours=-4)}


def test_night_spans_follow_the_clock_change() -> None:
    """00:00-04:00 lasts 3 real hours on the spring-forward night and 5 on the fall-back night."""
    night = LocalCalendarConfig("America/New_York", (LocalService(CONSULT),), {6: ((time(0), time(4)),)})
    [(spring_open, spring_close)] = opening_periods(night, date(2026, 3, 8), date(2026, 3, 8))
    [(fall_open, fall_close)] = opening_periods(night, date(2026, 11, 1), date(2026, 11, 1))
    assert spring_close - spring_open == timedelta(hours=3)
    assert fall_close - fall_open == timedelta(hours=5)


def test_skipped_and_repeated_wall_times_resolve_forward() -> None:
    """Opening at 02:30 on the skipped hour means opening at 03:00; at 01:30 twice, the first one."""
    config = LocalCalendarConfig(
        "America/New_York", (LocalService(CONSULT),), {6: ((time(2, 30), time(5)), (time(5, 30), time(6)))}
    )
    [(opens, _), _] = opening_periods(config, date(2026, 3, 8), date(2026, 3, 8))
    assert opens.astimezone(NY) == datetime(2026, 3, 8, 3, tzinfo=NY)
    repeated = LocalCalendarConfig(
        "America/New_York", (LocalService(CONSULT),), {6: ((time(1, 30), time(3)),)}
    )
    [(opens, closes)] = opening_periods(repeated, date(2026, 11, 1), date(2026, 11, 1))
    assert opens.astimezone(NY).utcoffset() == timedelta(hours=-4)
    assert closes - opens == timedelta(hours=2, minutes=30)


def test_closing_at_midnight_runs_to_the_end_of_the_day() -> None:
    """A close of 00:00 means midnight after the opening, not before it."""
    late = LocalCalendarConfig("America/New_York", (LocalService(CONSULT),), {0: ((time(18), time(0)),)})
    [(opens, closes)] = opening_periods(late, date(2026, 3, 2), date(2026, 3, 2))
    assert (opens.astimezone(NY), closes.astimezone(NY)) == (at(2, 18), at(3, 0))


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({0: ((time(12), time(9)),)}, "closes before it opens"),
        ({0: ((time(9), time(12)), (time(11), time(13)))}, "must not overlap"),
        ({7: ((time(9), time(12)),)}, "weekday"),
    ],
)
def test_rejects_opening_hours_that_make_no_sense(
    hours: dict[int, tuple[tuple[time, time], ...]], message: str
) -> None:
    """Backwards, overlapping or impossible-weekday hours stop the calendar from starting."""
    with pytest.raises(ValueError, match=message):
        LocalCalendarConfig("America/New_York", (LocalService(CONSULT),), hours)


def test_rejects_an_unknown_zone_and_repeated_services() -> None:
    """A misspelt time zone or a service listed twice is reported at start-up."""
    with pytest.raises(ValueError, match="IANA"):
        LocalCalendarConfig("America/Nowhere", (LocalService(CONSULT),), {})
    with pytest.raises(ValueError, match="repeated: consultation"):
        LocalCalendarConfig("America/New_York", (LocalService(CONSULT), LocalService(CONSULT)), {})
