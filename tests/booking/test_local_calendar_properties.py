"""Properties of the embedded calendar under random businesses, clocks and call sequences.

Hypothesis draws a business (zone, hours, services, staff), a "now" near a daylight-saving change,
and a script of calls (book an offered slot, book near one or at any time, hold, cancel, move,
let time pass).
Whatever happens, what a caller or the business would notice must hold: no two live bookings of
one person overlap (buffers included), nothing is booked or offered in the past, inside the notice
period or outside opening hours, and `SlotTaken` is said only when the time really is taken.

The checks below recompute "inside opening hours" from wall-clock times, independently of the
calendar's own UTC arithmetic, so a DST mistake in either shows up as a disagreement. All times are
on the five-minute grid, where the calendar's occupancy cells are exact.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import event, given, settings
from hypothesis import strategies as st

from agent.database import make_engine
from booking.calendars.local import LocalCalendar, LocalCalendarConfig, LocalService, create_schema
from booking.clock import FixedClock
from booking.errors import OutsideHours, SlotTaken, TooSoon
from booking.models import Attendee, Booking, BookingRequest, Hold, Service, Slot, Window, minutes

MIDNIGHT = time(0)
ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu")
# Local noon a day or two before each 2026 clock change in those zones.
NEAR_CLOCK_CHANGES = tuple(
    datetime(2026, month, day, 12) for month, day in ((3, 6), (3, 27), (4, 3), (10, 2), (10, 23), (10, 30))
)
HOURS = (
    {day: ((time(8), time(12)), (time(13), time(17))) for day in range(5)},
    # Open through the night: the spans contain the clock changes, and one closes at midnight.
    {day: ((time(0), time(4)), (time(18), MIDNIGHT)) for day in range(7)},
    {day: ((time(9, 15), time(11, 40)),) for day in (0, 2, 4, 5, 6)},
)
PEOPLE = tuple(Attendee(f"Caller {n}", f"caller{n}@example.com", "UTC", f"+1555010000{n}") for n in range(3))

five_minutes = st.integers(min_value=0, max_value=4).map(lambda n: minutes(5 * n))


def services(index: int) -> st.SearchStrategy[LocalService]:
    return st.builds(
        lambda duration, before, after, notice, horizon, interval, confirm: LocalService(
            Service(f"service-{index}", f"service {index}", minutes(duration), requires_confirmation=confirm),
            buffer_before=before,
            buffer_after=after,
            min_notice=minutes(notice),
            horizon=timedelta(days=horizon),
            slot_interval=None if interval is None else minutes(interval),
        ),
        st.sampled_from([15, 20, 30, 45, 60, 90]),
        five_minutes,
        five_minutes,
        st.sampled_from([0, 30, 120, 1440]),
        st.sampled_from([1, 3, 14]),
        st.sampled_from([None, 15, 20, 30]),
        st.booleans(),
    )


@st.composite
def configs(draw: st.DrawFn) -> LocalCalendarConfig:
    closed = draw(st.sets(st.integers(0, 6), max_size=2))
    base = draw(st.sampled_from(NEAR_CLOCK_CHANGES)).date()
    return LocalCalendarConfig(
        time_zone=draw(st.sampled_from(ZONES)),
        services=(draw(services(0)), draw(services(1))),
        weekly_hours=draw(st.sampled_from(HOURS)),
        closed_dates=frozenset(base + timedelta(days=n) for n in closed),
        staff=draw(st.sampled_from([(), ("Ann",), ("Ann", "Raj")])),
    )


calls = st.lists(
    st.one_of(
        st.tuples(st.just("book-offered"), st.integers(0, 1), st.integers(0, 200), st.integers(0, 2)),
        st.tuples(
            st.just("book-any"), st.integers(0, 1), st.integers(-24 * 12, 4 * 24 * 12), st.integers(0, 2)
        ),
        st.tuples(st.just("book-near"), st.integers(0, 1), st.integers(0, 200), st.integers(-12, 12)),
        st.tuples(st.just("hold"), st.integers(0, 1), st.integers(0, 200), st.just(0)),
        st.tuples(st.just("cancel"), st.integers(0, 20), st.just(0), st.just(0)),
        st.tuples(st.just("move"), st.integers(0, 20), st.integers(0, 200), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 600), st.just(0), st.just(0)),
    ),
    max_size=14,
)


def inside_hours(config: LocalCalendarConfig, start: datetime, end: datetime) -> bool:
    """Whether a wall clock in the business shows the whole appointment inside one opening span."""
    local_start, local_end = start.astimezone(config.zone), end.astimezone(config.zone)
    day = local_start.date()
    if day in config.closed_dates:
        return False
    for opens, closes in config.weekly_hours.get(day.weekday(), ()):
        if local_start.time() < opens:
            continue
        if closes == MIDNIGHT:
            next_midnight = (local_end.date(), local_end.time()) == (day + timedelta(days=1), MIDNIGHT)
            if local_end.date() == day or next_midnight:
                return True
        elif local_end.date() == day and local_end.time() <= closes:
            return True
    return False


@dataclass
class Ledger:
    """What the test knows was booked and held, to judge every answer the calendar gives."""

    config: LocalCalendarConfig
    clock: FixedClock
    bookings: dict[str, Booking] = field(default_factory=dict)
    holds: list[Hold] = field(default_factory=list)

    def rules(self, key: str) -> LocalService:
        rules = self.config.service(key)
        assert rules is not None
        return rules

    def now(self) -> datetime:
        return utc(self.clock.now())

    def span(self, key: str, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        rules = self.rules(key)
        return utc(start) - rules.buffer_before, utc(end) + rules.buffer_after

    def claims(self) -> list[tuple[str, tuple[datetime, datetime]]]:
        """Who holds which time, buffers included: live bookings and unexpired holds."""
        now = self.now()
        taken = [
            (b.metadata.get("staff", ""), self.span(b.service_key, b.start, b.end))
            for b in self.bookings.values()
            if b.status in ("accepted", "pending")
        ]
        taken += [
            (h.slot.staff or "", self.span(h.slot.service_key, h.slot.start, h.slot.end))
            for h in self.holds
            if h.expires_at > now
        ]
        return taken

    def free_for_someone(self, key: str, start: datetime, end: datetime) -> bool:
        wanted = self.span(key, start, end)
        for staff in self.config.staff or ("",):
            if not any(who == staff and _overlap(wanted, span) for who, span in self.claims()):
                return True
        return False

    def check_allowed(self, key: str, start: datetime, end: datetime) -> None:
        rules, now = self.rules(key), self.now()
        assert utc(end) - utc(start) == rules.service.duration
        assert utc(start) >= now + rules.min_notice, "in the past or inside the notice period"
        assert utc(start) <= now + rules.horizon, "beyond the horizon"
        assert inside_hours(self.config, start, end), f"outside hours: {start.isoformat()}"

    def check_no_overlap(self) -> None:
        taken = [(who, span) for who, span in self.claims()]
        for n, (who, span) in enumerate(taken):
            assert not any(who == other and _overlap(span, theirs) for other, theirs in taken[n + 1 :])


def utc(moment: datetime) -> datetime:
    """Arithmetic on zoned datetimes moves the wall clock; the checks work on instants."""
    return moment.astimezone(UTC)


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


async def play(config: LocalCalendarConfig, now: datetime, script: list[tuple[str, int, int, int]]) -> None:
    clock = FixedClock(now)
    ledger = Ledger(config, clock)
    engine = make_engine("sqlite+aiosqlite:///:memory:")
    try:
        await create_schema(engine)
        calendar = LocalCalendar(engine, config, clock)
        for n, (call, a, b, who) in enumerate(script):
            await step(calendar, ledger, n, call, a, b, who)
            ledger.check_no_overlap()
    finally:
        await engine.dispose()


async def offered(calendar: LocalCalendar, ledger: Ledger, service: LocalService) -> list[Slot]:
    now = ledger.now()
    slots = await calendar.slots(service.service, Window(now - timedelta(days=1), now + timedelta(days=4)))
    assert [utc(s.start) for s in slots] == sorted(utc(s.start) for s in slots)
    for slot in slots:
        ledger.check_allowed(slot.service_key, slot.start, slot.end)
        assert ledger.free_for_someone(slot.service_key, slot.start, slot.end)
    return slots


async def step(calendar: LocalCalendar, ledger: Ledger, n: int, call: str, a: int, b: int, who: int) -> None:
    config, clock = ledger.config, ledger.clock
    if call == "wait":
        clock.advance(minutes(a))
    elif call in ("book-offered", "hold"):
        slots = await offered(calendar, ledger, config.services[a])
        event(f"{call}: {'something' if slots else 'nothing'} offered")
        if slots:
            chosen = slots[b % len(slots)]
            if call == "hold":
                ledger.holds.append(await calendar.hold(chosen))
            else:
                booking = await calendar.create(BookingRequest(chosen, PEOPLE[who], f"attempt-{n}"), None)
                ledger.bookings[booking.uid] = booking
    elif call == "book-near":
        rules = config.services[a]
        slots = await offered(calendar, ledger, rules)
        if slots:
            near = utc(slots[b % len(slots)].start) + minutes(5 * who)
            await book_anytime(calendar, ledger, n, rules, near.astimezone(config.zone), PEOPLE[0])
    elif call == "book-any":
        rules = config.services[a]
        hour = ledger.now().replace(minute=0, second=0, microsecond=0)
        start = (hour + minutes(5 * b)).astimezone(config.zone)
        await book_anytime(calendar, ledger, n, rules, start, PEOPLE[who])
    elif ledger.bookings:
        uid = sorted(ledger.bookings)[a % len(ledger.bookings)]
        booking = ledger.bookings[uid]
        if call == "cancel":
            ledger.bookings[uid] = await calendar.cancel(uid)
        elif booking.status in ("accepted", "pending"):
            slots = await offered(calendar, ledger, ledger.rules(booking.service_key))
            if slots:
                moved = await calendar.reschedule(uid, slots[b % len(slots)].start)
                ledger.bookings[uid] = await calendar.get(uid)
                ledger.bookings[moved.uid] = moved
                ledger.check_allowed(moved.service_key, moved.start, moved.end)


async def book_anytime(
    calendar: LocalCalendar, ledger: Ledger, n: int, rules: LocalService, start: datetime, attendee: Attendee
) -> None:
    """Book a time that may not be offered: it is booked legally, or the refusal names the true reason."""
    now = ledger.now()
    end = (utc(start) + rules.service.duration).astimezone(start.tzinfo)
    slot = Slot(rules.key, start, end)
    try:
        booking = await calendar.create(BookingRequest(slot, attendee, f"attempt-{n}"), None)
    except TooSoon:
        event("any time: too soon")
        assert utc(start) < now + rules.min_notice
    except OutsideHours:
        event("any time: outside hours")
        assert utc(start) > now + rules.horizon or not inside_hours(ledger.config, start, end)
    except SlotTaken:
        event("any time: taken")
        assert not ledger.free_for_someone(rules.key, start, end)
    else:
        event("any time: booked")
        ledger.check_allowed(rules.key, booking.start, booking.end)
        ledger.bookings[booking.uid] = booking


@settings(max_examples=60, deadline=None)
@given(configs(), st.sampled_from(NEAR_CLOCK_CHANGES), st.integers(0, 3 * 24 * 12), calls)
def test_bookings_never_overlap_and_follow_the_rules(
    config: LocalCalendarConfig, base: datetime, offset: int, script: list[tuple[str, int, int, int]]
) -> None:
    """Any sequence of calls leaves no overlapping, past, too-soon or out-of-hours booking."""
    now = (utc(base.replace(tzinfo=config.zone)) + minutes(5 * offset)).astimezone(config.zone)
    asyncio.run(play(config, now, script))


async def race(config: LocalCalendarConfig, now: datetime, callers: int, directory: Path) -> list[object]:
    engine = make_engine(f"sqlite+aiosqlite:///{directory / 'race.db'}")
    try:
        await create_schema(engine)
        calendar = LocalCalendar(engine, config, FixedClock(now))
        window = Window(now, utc(now) + timedelta(days=4))
        slots = await calendar.slots(config.services[0].service, window)
        if not slots:
            return []
        requests = [BookingRequest(slots[0], PEOPLE[n % 3], f"caller-{n}") for n in range(callers)]
        return await asyncio.gather(*(calendar.create(r, None) for r in requests), return_exceptions=True)
    finally:
        await engine.dispose()


@settings(max_examples=15, deadline=None)
@given(configs(), st.sampled_from(NEAR_CLOCK_CHANGES), st.integers(2, 12))
def test_callers_racing_for_one_slot_get_one_booking_per_staff(
    config: LocalCalendarConfig, base: datetime, callers: int
) -> None:
    """N simultaneous creates for one slot book it once per staff member; the rest hear SlotTaken."""
    now = base.replace(tzinfo=config.zone)
    with tempfile.TemporaryDirectory() as directory:
        results = asyncio.run(race(config, now, callers, Path(directory)))
    if not results:
        return
    booked = [r for r in results if isinstance(r, Booking)]
    assert len(booked) == min(callers, len(config.staff) or 1)
    assert len({b.metadata.get("staff") for b in booked}) == len(booked)
    assert all(isinstance(r, SlotTaken) for r in results if not isinstance(r, Booking))


def test_the_oracle_reads_wall_clock_hours() -> None:
    """The test's own hours check agrees with a plain reading of a timetable, midnight close included."""
    config = LocalCalendarConfig("Europe/London", (LocalService(Service("s", "s", minutes(30))),), HOURS[1])
    london = ZoneInfo("Europe/London")
    assert inside_hours(
        config, datetime(2026, 3, 29, 3, 30, tzinfo=london), datetime(2026, 3, 29, 4, tzinfo=london)
    )
    assert inside_hours(
        config, datetime(2026, 3, 29, 23, 30, tzinfo=london), datetime(2026, 3, 30, tzinfo=london)
    )
    assert not inside_hours(
        config, datetime(2026, 3, 29, 4, tzinfo=london), datetime(2026, 3, 29, 4, 30, tzinfo=london)
    )
    assert not inside_hours(
        config, datetime(2026, 3, 29, 12, tzinfo=london), datetime(2026, 3, 29, 12, 30, tzinfo=london)
    )
