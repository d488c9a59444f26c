"""The embedded calendar's SQL: every method is one query or one transaction, and knows no rules.

local.py decides what may be booked; this module records it so that the database has the last
word. Three habits keep that true on both databases and across processes:

- Every write transaction starts with a write statement. On SQLite that takes the single writer
  lock at once, where the busy timeout applies, instead of upgrading a read snapshot later, which
  SQLite refuses outright when another writer committed in between.
- Cells are inserted in ascending order in one statement, so PostgreSQL transactions wanting the
  same cells queue instead of deadlocking. Deadlocks are still possible when one transaction also
  deletes cells (a move); PostgreSQL then aborts one side, and it is simply run again.
- A unique violation is the answer "already taken" (`Conflict`); any other database failure is
  `CalendarUnavailable`, which the caller may retry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import ColumnElement, Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from booking.calendars._local_schema import bookings, occupancy
from booking.errors import CalendarUnavailable
from booking.models import Attendee, BookingStatus

P = ParamSpec("P")
T = TypeVar("T")

ACTIVE: tuple[BookingStatus, ...] = ("accepted", "pending")
_RUN_AGAIN_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected
_ATTEMPTS = 3


class Conflict(Exception):
    """Strictly private: a cell (or an attempt id) is already someone else's; nothing was written."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The cells one owner takes from one staff member: a booking (no expiry) or a hold."""

    staff: str
    cells: Sequence[int]
    owner: str
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewBooking:
    """One booking row as it will be written."""

    uid: str
    service_key: str
    staff: str
    start: datetime
    end: datetime
    status: BookingStatus
    attendee: Attendee
    notes: str | None
    attempt_id: str | None = None
    rescheduled_from: str | None = None
    reason: str | None = None


class Store:
    """The `cal_` tables of one calendar (`calendar_id`) on one engine."""

    def __init__(self, engine: AsyncEngine, calendar_id: str) -> None:
        self._engine = engine
        self._calendar_id = calendar_id

    # -- reads -------------------------------------------------------------------------------

    async def booking(self, uid: str) -> Row[Any] | None:
        return await self._first("get", select(bookings).where(self._ours(bookings), bookings.c.uid == uid))

    async def booking_for_attempt(self, attempt_id: str) -> Row[Any] | None:
        query = select(bookings).where(self._ours(bookings), bookings.c.attempt_id == attempt_id)
        return await self._first("create", query)

    async def find(
        self, email: str | None, phone: str | None, start: datetime, end: datetime
    ) -> list[Row[Any]]:
        """Live bookings of a caller (by email or phone) starting in `[start, end)`, in time order.

        `start == end` asks for bookings starting at exactly that instant.
        """
        who = [bookings.c.attendee_email_key == email_key(email)] if email else []
        who += [bookings.c.attendee_phone == phone] if phone else []
        starts = bookings.c.start_at
        during = starts == start if start == end else and_(starts >= start, starts < end)
        query = (
            select(bookings)
            .where(self._ours(bookings), bookings.c.status.in_(ACTIVE), during, or_(*who))
            .order_by(starts, bookings.c.id)
        )
        try:
            async with self._engine.connect() as connection:
                return list((await connection.execute(query)).all())
        except (DBAPIError, OSError) as exc:
            raise _unavailable("find", exc) from exc

    async def busy_cells(self, first: int, last: int, now: datetime) -> set[tuple[str, int]]:
        """`(staff, cell)` pairs between `first` and `last` held by a booking or a live hold."""
        query = select(occupancy.c.staff, occupancy.c.cell).where(
            self._ours(occupancy),
            occupancy.c.cell.between(first, last),
            or_(occupancy.c.expires_at.is_(None), occupancy.c.expires_at > now),
        )
        try:
            async with self._engine.connect() as connection:
                return {(row.staff, row.cell) for row in await connection.execute(query)}
        except (DBAPIError, OSError) as exc:
            raise _unavailable("slots", exc) from exc

    async def last_booked(self) -> dict[str, int]:
        """Per staff member, the id of their newest booking: higher means booked more recently."""
        query = (
            select(bookings.c.staff, func.max(bookings.c.id))
            .where(self._ours(bookings))
            .group_by(bookings.c.staff)
        )
        try:
            async with self._engine.connect() as connection:
                return {row[0]: row[1] for row in await connection.execute(query)}
        except (DBAPIError, OSError) as exc:
            raise _unavailable("assign staff", exc) from exc

    # -- writes, one transaction each ----------------------------------------------------------

    async def hold(self, claim: Claim, now: datetime) -> None:
        await self._write("hold", self._claim, claim, now)

    async def book(self, claim: Claim, booking: NewBooking, now: datetime) -> None:
        await self._write("create", self._book, claim, booking, now)

    async def book_from_hold(self, hold_uid: str, booking: NewBooking, now: datetime) -> bool:
        """Hand a live hold's cells to the booking; False when the hold lapsed or was released."""
        return await self._write("create", self._book_from_hold, hold_uid, booking, now)

    async def move(self, old_uid: str, claim: Claim, booking: NewBooking, now: datetime) -> bool:
        """Replace a live booking by `booking` in one step; False when it was no longer live."""
        return await self._write("reschedule", self._move, old_uid, claim, booking, now)

    async def cancel(self, uid: str, reason: str | None, now: datetime) -> None:
        await self._write("cancel", self._cancel, uid, reason, now)

    async def release(self, hold_uid: str) -> None:
        await self._write("release", self._release, hold_uid)

    # -- transaction bodies --------------------------------------------------------------------

    async def _claim(self, connection: AsyncConnection, claim: Claim, now: datetime) -> None:
        needed = sorted(claim.cells)
        lapsed = and_(
            self._ours(occupancy),
            occupancy.c.staff == claim.staff,
            occupancy.c.cell.between(needed[0], needed[-1]),
            occupancy.c.expires_at <= now,
        )
        await connection.execute(delete(occupancy).where(lapsed))
        rows = [
            {
                "calendar_id": self._calendar_id,
                "staff": claim.staff,
                "cell": cell,
                "owner": claim.owner,
                "expires_at": claim.expires_at,
            }
            for cell in needed
        ]
        await connection.execute(insert(occupancy), rows)

    async def _book(
        self, connection: AsyncConnection, claim: Claim, booking: NewBooking, now: datetime
    ) -> None:
        await self._claim(connection, claim, now)
        await self._insert(connection, booking, now)

    async def _book_from_hold(
        self, connection: AsyncConnection, hold_uid: str, booking: NewBooking, now: datetime
    ) -> bool:
        taken = await connection.execute(
            update(occupancy)
            .where(self._ours(occupancy), occupancy.c.owner == hold_uid, occupancy.c.expires_at > now)
            .values(owner=booking.uid, expires_at=None)
        )
        if taken.rowcount == 0:
            return False
        await self._insert(connection, booking, now)
        return True

    async def _move(
        self, connection: AsyncConnection, old_uid: str, claim: Claim, booking: NewBooking, now: datetime
    ) -> bool:
        moved = await connection.execute(
            update(bookings)
            .where(self._ours(bookings), bookings.c.uid == old_uid, bookings.c.status.in_(ACTIVE))
            .values(status="cancelled", rescheduled_to=booking.uid, reason=booking.reason, updated_at=now)
        )
        if moved.rowcount != 1:
            return False
        await connection.execute(delete(occupancy).where(self._ours(occupancy), occupancy.c.owner == old_uid))
        await self._book(connection, claim, booking, now)
        return True

    async def _cancel(self, connection: AsyncConnection, uid: str, reason: str | None, now: datetime) -> None:
        await connection.execute(
            update(bookings)
            .where(self._ours(bookings), bookings.c.uid == uid, bookings.c.status.in_(ACTIVE))
            .values(status="cancelled", reason=reason, updated_at=now)
        )
        await connection.execute(delete(occupancy).where(self._ours(occupancy), occupancy.c.owner == uid))

    async def _release(self, connection: AsyncConnection, hold_uid: str) -> None:
        await connection.execute(
            delete(occupancy).where(
                self._ours(occupancy), occupancy.c.owner == hold_uid, occupancy.c.expires_at.is_not(None)
            )
        )

    async def _insert(self, connection: AsyncConnection, booking: NewBooking, now: datetime) -> None:
        attendee = booking.attendee
        await connection.execute(
            insert(bookings).values(
                uid=booking.uid,
                calendar_id=self._calendar_id,
                service_key=booking.service_key,
                staff=booking.staff,
                start_at=booking.start,
                end_at=booking.end,
                status=booking.status,
                attendee_name=attendee.name,
                attendee_email=attendee.email,
                attendee_email_key=email_key(attendee.email),
                attendee_phone=attendee.phone,
                attendee_time_zone=attendee.time_zone,
                notes=booking.notes,
                attempt_id=booking.attempt_id,
                rescheduled_from=booking.rescheduled_from,
                reason=booking.reason,
                created_at=now,
                updated_at=now,
            )
        )

    # -- plumbing ------------------------------------------------------------------------------

    async def _write(
        self,
        operation: str,
        work: Callable[Concatenate[AsyncConnection, P], Awaitable[T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `work` in one transaction; run it again if PostgreSQL picked it as a deadlock victim."""
        attempt = 1
        while True:
            try:
                async with self._engine.begin() as connection:
                    return await work(connection, *args, **kwargs)
            except IntegrityError as exc:
                raise Conflict(str(exc.orig)) from exc
            except DBAPIError as exc:
                if attempt < _ATTEMPTS and getattr(exc.orig, "sqlstate", None) in _RUN_AGAIN_SQLSTATES:
                    attempt += 1
                    continue
                raise _unavailable(operation, exc) from exc
            except OSError as exc:
                raise _unavailable(operation, exc) from exc

    async def _first(self, operation: str, query: Any) -> Row[Any] | None:
        try:
            async with self._engine.connect() as connection:
                return (await connection.execute(query)).first()
        except (DBAPIError, OSError) as exc:
            raise _unavailable(operation, exc) from exc

    def _ours(self, table: Any) -> ColumnElement[bool]:
        column: ColumnElement[bool] = table.c.calendar_id == self._calendar_id
        return column


def email_key(email: str) -> str:
    """How emails are compared: `Jane@Example.com` and `jane@example.com` are one caller."""
    return email.strip().casefold()


def _unavailable(operation: str, exc: BaseException) -> CalendarUnavailable:
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return CalendarUnavailable(
        "the calendar database failed",
        operation=operation,
        error=lines[0] if lines else type(original).__name__,
    )
