"""The embedded calendar: a real scheduler on the project's own database, used without Cal.com.

It follows the business profile (services, buffers, notice, horizon, opening hours, closed dates,
staff) and keeps its bookings in the `cal_` tables. Double booking is prevented by the database,
not by checking first in Python: every booking and hold claims its time cells under a unique key
in the same transaction that records it (`_local_schema`), so two callers racing for one slot, in
one process or in several, end with exactly one booking and one `SlotTaken`.

This module holds the rules (what may be booked, by whom, and in which order staff are tried);
`_local_store` holds the SQL; `_local_hours` turns opening hours into instants, DST included.
All arithmetic is on UTC instants; slots and bookings are handed out in the business's zone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from booking.calendars._local_config import LocalCalendarConfig, LocalService, OpeningHours
from booking.calendars._local_hours import local_dates, opening_periods, start_times, within_hours
from booking.calendars._local_schema import cells, create_schema
from booking.calendars._local_store import ACTIVE, Claim, Conflict, NewBooking, Store
from booking.clock import Clock
from booking.errors import InvalidRequest, NotFound, OutsideHours, SlotTaken, TooSoon
from booking.models import Attendee, Booking, BookingRequest, BookingStatus, Hold, Service, Slot, Window

__all__ = [
    "LocalCalendar",
    "LocalCalendarConfig",
    "LocalService",
    "OpeningHours",
    "create_schema",
]

NO_STAFF = ""
"""The staff key of a business that books as one resource."""

_STATUSES: dict[str, BookingStatus] = {
    "accepted": "accepted",
    "pending": "pending",
    "cancelled": "cancelled",
    "rejected": "rejected",
}


@dataclass(frozen=True, slots=True)
class _Placement:
    """A slot that passed the business's rules: its service and the UTC instants it covers."""

    rules: LocalService
    start: datetime
    end: datetime

    @property
    def cells(self) -> list[int]:
        """The cells this appointment needs, buffers included."""
        return cells(self.start - self.rules.buffer_before, self.end + self.rules.buffer_after)

    def claim(self, staff: str, owner: str, expires_at: datetime | None = None) -> Claim:
        return Claim(staff=staff, cells=self.cells, owner=owner, expires_at=expires_at)

    @property
    def status(self) -> BookingStatus:
        return "pending" if self.rules.service.requires_confirmation else "accepted"


class LocalCalendar:
    """`Calendar` on an `AsyncEngine` (SQLite or PostgreSQL); run `create_schema(engine)` once first.

    Holds lapse after `hold_ttl`. A caller who holds a slot must book it through that hold: their
    own hold blocks a plain `create` like anybody else's would.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        config: LocalCalendarConfig,
        clock: Clock,
        hold_ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        if hold_ttl <= timedelta(0):
            raise ValueError(f"hold_ttl must be positive, got {hold_ttl}")
        self._store = Store(engine, config.calendar_id)
        self._config = config
        self._clock = clock
        self._hold_ttl = hold_ttl

    async def services(self) -> list[Service]:
        return [rules.service for rules in self._config.services]

    async def time_zone(self) -> ZoneInfo:
        return self._config.zone

    async def slots(self, service: Service, window: Window) -> list[Slot]:
        rules = self._rules(service.key)
        now = self._now()
        # Compared as UTC: an ambiguous local time never equals an instant in another zone (PEP 495).
        opens, closes = _utc(window.start), _utc(window.end)
        earliest = max(opens, now + rules.min_notice)
        latest = min(closes, now + rules.horizon)
        if earliest > latest:
            return []
        periods = opening_periods(self._config, *local_dates(self._config, earliest, latest))
        duration = rules.service.duration
        placements = [
            _Placement(rules, start, start + duration)
            for start in start_times(periods, duration, rules.interval)
            if earliest <= start <= latest and (start < closes or opens == closes)
        ]
        if not placements:
            return []
        busy = await self._store.busy_cells(placements[0].cells[0], placements[-1].cells[-1], now)
        free: list[Slot] = []
        for placement in placements:
            needed = placement.cells
            if any(busy.isdisjoint((staff, cell) for cell in needed) for staff in self._staff):
                free.append(self._slot(rules, placement.start, None))
        return free

    async def hold(self, slot: Slot) -> Hold:
        now = self._now()
        placement = self._check(slot, now)
        expires_at = now + self._hold_ttl
        for staff in await self._staff_order(slot.staff):
            claim = placement.claim(staff, f"hold_{uuid.uuid4().hex}", expires_at)
            try:
                await self._store.hold(claim, now)
            except Conflict:
                continue
            return Hold(
                uid=claim.owner,
                slot=self._slot(placement.rules, placement.start, staff),
                expires_at=expires_at.astimezone(self._config.zone),
            )
        raise self._taken(placement)

    async def release(self, hold: Hold) -> None:
        await self._store.release(hold.uid)

    async def create(self, request: BookingRequest, hold: Hold | None) -> Booking:
        existing = await self._store.booking_for_attempt(request.attempt_id)
        if existing is not None:
            return self._booking(existing)
        now = self._now()
        placement = self._check(request.slot, now)
        if hold is not None:
            self._check_hold(hold, request.slot)
            new = self._new_booking(placement, hold.slot.staff or NO_STAFF, request)
            try:
                if await self._store.book_from_hold(hold.uid, new, now):
                    return await self.get(new.uid)
            except Conflict:
                return await self._after_conflict(request, placement)
        for staff in await self._staff_order(request.slot.staff):
            new = self._new_booking(placement, staff, request)
            try:
                await self._store.book(placement.claim(staff, new.uid), new, now)
            except Conflict:
                existing = await self._store.booking_for_attempt(request.attempt_id)
                if existing is not None:
                    return self._booking(existing)
                continue
            return await self.get(new.uid)
        raise self._taken(placement)

    async def get(self, uid: str) -> Booking:
        return self._booking(await self._row(uid))

    async def find(
        self, *, email: str | None = None, phone: str | None = None, window: Window
    ) -> list[Booking]:
        if not email and not phone:
            raise InvalidRequest("finding bookings needs an email or a phone number")
        rows = await self._store.find(email, phone, _utc(window.start), _utc(window.end))
        return [self._booking(row) for row in rows]

    async def reschedule(self, uid: str, new_start: datetime, reason: str | None = None) -> Booking:
        old = await self._row(uid)
        if old.status not in ACTIVE:
            return await self._already_moved(old, new_start)
        now = self._now()
        rules = self._rules(old.service_key)
        placement = self._check(self._slot(rules, new_start, None), now)
        attendee = Attendee(
            name=old.attendee_name,
            email=old.attendee_email,
            time_zone=old.attendee_time_zone,
            phone=old.attendee_phone,
        )
        # The same person if they are free then; otherwise whoever is next in turn.
        keep = [old.staff] if old.staff in self._staff else []
        for staff in keep + [s for s in await self._staff_order(None) if s != old.staff]:
            new = NewBooking(
                uid=uuid.uuid4().hex,
                service_key=rules.key,
                staff=staff,
                start=placement.start,
                end=placement.end,
                status=placement.status,
                attendee=attendee,
                notes=old.notes,
                rescheduled_from=uid,
                reason=reason,
            )
            try:
                moved = await self._store.move(uid, placement.claim(staff, new.uid), new, now)
            except Conflict:
                continue
            if not moved:
                return await self._already_moved(await self._row(uid), new_start)
            return await self.get(new.uid)
        raise self._taken(placement)

    async def cancel(self, uid: str, reason: str | None = None) -> Booking:
        await self._store.cancel(uid, reason, self._now())
        return await self.get(uid)

    # -- helpers -------------------------------------------------------------------------------

    @property
    def _staff(self) -> tuple[str, ...]:
        return self._config.staff or (NO_STAFF,)

    async def _staff_order(self, preferred: str | None) -> list[str]:
        """Who to try, in turn: the one asked for, or everyone, least recently booked first."""
        if not self._config.staff:
            return [NO_STAFF]
        if preferred is not None:
            return [preferred]
        last_booked = await self._store.last_booked()
        order = self._config.staff
        return sorted(order, key=lambda name: (last_booked.get(name, 0), order.index(name)))

    async def _row(self, uid: str) -> Any:
        row = await self._store.booking(uid)
        if row is None:
            raise NotFound("no booking with this uid", uid=uid)
        return row

    async def _after_conflict(self, request: BookingRequest, placement: _Placement) -> Booking:
        """A concurrent retry of the same attempt won the race: return its booking."""
        existing = await self._store.booking_for_attempt(request.attempt_id)
        if existing is None:
            raise self._taken(placement)
        return self._booking(existing)

    async def _already_moved(self, old: Any, new_start: datetime) -> Booking:
        """A repeated reschedule returns the booking it already made; anything else is refused."""
        if old.rescheduled_to is not None:
            moved = await self.get(old.rescheduled_to)
            if _utc(moved.start) == _utc(new_start) and moved.status in ACTIVE:
                return moved
        raise InvalidRequest(
            "only an accepted or pending booking can be moved",
            uid=old.uid,
            status=old.status,
            rescheduled_to=old.rescheduled_to,
        )

    def _rules(self, service_key: str) -> LocalService:
        rules = self._config.service(service_key)
        if rules is None:
            raise InvalidRequest(
                "this calendar has no such service",
                service_key=service_key,
                known=[s.key for s in self._config.services],
            )
        return rules

    def _check(self, slot: Slot, now: datetime) -> _Placement:
        """The slot as a placement, if the business's rules allow booking it at `now`."""
        rules = self._rules(slot.service_key)
        start = _utc(slot.start)
        end = start + rules.service.duration
        local = self._local_iso
        context = {"service_key": rules.key, "start": local(start), "time_zone": self._config.time_zone}
        if _utc(slot.end) != end:
            raise InvalidRequest(
                "the slot's length does not match the service",
                end=local(slot.end),
                duration_minutes=rules.service.duration / timedelta(minutes=1),
                **context,
            )
        if slot.staff is not None and slot.staff not in self._config.staff:
            raise InvalidRequest("no such staff member", staff=slot.staff, **context)
        earliest = now + rules.min_notice
        if start < earliest:
            raise TooSoon(
                "the start is in the past or inside the minimum notice",
                now=local(now),
                earliest=local(earliest),
                min_notice_minutes=rules.min_notice / timedelta(minutes=1),
                **context,
            )
        latest = now + rules.horizon
        if start > latest:
            raise OutsideHours(
                "the start is beyond the booking horizon",
                latest=local(latest),
                horizon_days=rules.horizon / timedelta(days=1),
                **context,
            )
        if not within_hours(self._config, start, end):
            closed = start.astimezone(self._config.zone).date() in self._config.closed_dates
            reason = (
                "the business is closed on that date"
                if closed
                else "the appointment is not within opening hours"
            )
            raise OutsideHours(reason, end=local(end), **context)
        return _Placement(rules, start, end)

    def _check_hold(self, hold: Hold, slot: Slot) -> None:
        held = hold.slot
        same = (
            held.service_key == slot.service_key
            and _utc(held.start) == _utc(slot.start)
            and slot.staff in (None, held.staff)
        )
        if not same:
            raise InvalidRequest(
                "the hold is for a different slot than the request",
                hold_uid=hold.uid,
                hold_start=self._local_iso(held.start),
                request_start=self._local_iso(slot.start),
            )

    def _new_booking(self, placement: _Placement, staff: str, request: BookingRequest) -> NewBooking:
        return NewBooking(
            uid=uuid.uuid4().hex,
            service_key=placement.rules.key,
            staff=staff,
            start=placement.start,
            end=placement.end,
            status=placement.status,
            attendee=request.attendee,
            notes=request.notes,
            attempt_id=request.attempt_id,
        )

    def _taken(self, placement: _Placement) -> SlotTaken:
        return SlotTaken(
            "that time is no longer free",
            service_key=placement.rules.key,
            start=self._local_iso(placement.start),
            staff=list(self._config.staff),
        )

    def _slot(self, rules: LocalService, start: datetime, staff: str | None) -> Slot:
        zone, start = self._config.zone, _utc(start)
        return Slot(
            service_key=rules.key,
            start=start.astimezone(zone),
            end=(start + rules.service.duration).astimezone(zone),
            staff=staff or None,
        )

    def _booking(self, row: Any) -> Booking:
        facts = (("staff", row.staff), ("rescheduled_to", row.rescheduled_to), ("reason", row.reason))
        zone = self._config.zone
        return Booking(
            uid=row.uid,
            service_key=row.service_key,
            start=row.start_at.astimezone(zone),
            end=row.end_at.astimezone(zone),
            status=_STATUSES[row.status],
            attendee=Attendee(
                name=row.attendee_name,
                email=row.attendee_email,
                time_zone=row.attendee_time_zone,
                phone=row.attendee_phone,
            ),
            notes=row.notes,
            attempt_id=row.attempt_id,
            rescheduled_from=row.rescheduled_from,
            metadata={key: value for key, value in facts if value},
        )

    def _local_iso(self, moment: datetime) -> str:
        return moment.astimezone(self._config.zone).isoformat()

    def _now(self) -> datetime:
        return _utc(self._clock.now())


def _utc(moment: datetime) -> datetime:
    """Every computation runs in UTC: `+ timedelta` on a zoned datetime moves the wall clock, not time."""
    return moment.astimezone(UTC)
