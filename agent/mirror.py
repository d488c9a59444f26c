"""A local mirror of each business's bookings, kept from Cal.com's webhooks and the reconciler.

Why: at the first ring the receptionist should know a returning caller ("Hi Jane, you already have
a cleaning on Thursday") without a round-trip to Cal.com, and the notices we text must follow the
booking's real state. Bookings change outside the phone line (the web booker, the office), and
webhooks arrive late, twice or out of order, so every write here is one conditional upsert:

* a snapshot carries the instant it describes (`as_of`: the webhook's `createdAt`, or the
  booking's `updatedAt` from `GET /v2/bookings`); an older snapshot never overwrites a newer one;
* cancelled and rejected are final: nothing brings such a booking back (Cal.com gives a
  rescheduled booking a new uid, so a uid never comes back to life);
* the upsert reports whether anything changed, so a notice is sent for a change and not for a
  repeat. Concurrent writers (several processes) are serialised by the database on the row.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Column, Index, MetaData, String, Table, and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from booking.models import BookingStatus
from booking.sql import UTCDateTime, create_tables

__all__ = [
    "LIVE_STATUSES",
    "BookingMirror",
    "KnownCaller",
    "MirroredBooking",
    "booking_mirror",
    "create_schema",
    "metadata",
]

LIVE_STATUSES: tuple[BookingStatus, ...] = ("accepted", "pending")
FINAL_STATUSES: tuple[BookingStatus, ...] = ("cancelled", "rejected")

metadata = MetaData()

booking_mirror = Table(
    "booking_mirror",
    metadata,
    Column("uid", String(128), primary_key=True),
    Column("business_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start", UTCDateTime(), nullable=False),
    Column("end", UTCDateTime(), nullable=False),
    Column("service", String(200), nullable=False),
    Column("attendee_name", String(200), nullable=False),
    Column("attendee_phone", String(32)),
    Column("attendee_email", String(320)),
    Column("rescheduled_from", String(128)),
    Column("rescheduled_to", String(128)),
    Column("as_of", UTCDateTime(), nullable=False),
    Index("ix_booking_mirror_phone", "business_id", "attendee_phone", "start"),
)

_COMPARED = (
    "status",
    "start",
    "end",
    "service",
    "attendee_name",
    "attendee_phone",
    "attendee_email",
    "rescheduled_from",
    "rescheduled_to",
)


async def create_schema(engine: AsyncEngine) -> None:
    await create_tables(engine, metadata)


@dataclass(frozen=True, slots=True)
class MirroredBooking:
    """What we know of one booking. `service` is the business's word for it ("teeth cleaning")."""

    uid: str
    business_id: str
    status: BookingStatus
    start: datetime
    end: datetime
    service: str
    attendee_name: str
    attendee_phone: str | None = None
    attendee_email: str | None = None
    rescheduled_from: str | None = None
    rescheduled_to: str | None = None

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def moved(self) -> bool:
        """Cancelled because it was rescheduled (the new booking has its own uid)."""
        return self.rescheduled_to is not None


@dataclass(frozen=True, slots=True)
class KnownCaller:
    """A caller the business has seen before: the name they booked under, and what is still ahead."""

    name: str
    upcoming: tuple[MirroredBooking, ...]

    @property
    def next_booking(self) -> MirroredBooking | None:
        return self.upcoming[0] if self.upcoming else None


Applied = Literal["changed", "unchanged"]


class BookingMirror:
    """Reads and conditional writes of the mirror; safe to share between processes."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = postgres_insert if engine.dialect.name == "postgresql" else sqlite_insert

    async def apply(self, booking: MirroredBooking, as_of: datetime) -> Applied:
        """Store `booking` as of `as_of` unless the mirror already knows something newer or final.

        "changed" means this snapshot is now the mirror's state and differs from what was there.
        """
        values: dict[str, Any] = {f.name: getattr(booking, f.name) for f in fields(booking)}
        statement = self._insert(booking_mirror).values(**values, as_of=as_of)
        new = statement.excluded
        current = booking_mirror.c
        upsert = statement.on_conflict_do_update(
            index_elements=[current.uid],
            set_={name: new[name] for name in (*_COMPARED, "business_id", "as_of")},
            where=and_(
                current.as_of <= new.as_of,
                or_(current.status.not_in(FINAL_STATUSES), new.status.in_(FINAL_STATUSES)),
                or_(*(current[name].is_distinct_from(new[name]) for name in _COMPARED)),
            ),
        ).returning(current.uid)
        async with self._engine.begin() as connection:
            changed = (await connection.execute(upsert)).first() is not None
        return "changed" if changed else "unchanged"

    async def get(self, uid: str) -> MirroredBooking | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(select(booking_mirror).where(booking_mirror.c.uid == uid))
            ).first()
        return _booking(row._mapping) if row is not None else None

    async def upcoming(
        self, business_id: str, now: datetime, *, phone: str | None = None
    ) -> list[MirroredBooking]:
        """Live bookings that have not ended, earliest first; only this caller's when `phone` is given."""
        query = (
            select(booking_mirror)
            .where(
                booking_mirror.c.business_id == business_id,
                booking_mirror.c.status.in_(LIVE_STATUSES),
                booking_mirror.c.end > now,
            )
            .order_by(booking_mirror.c.start, booking_mirror.c.uid)
        )
        if phone is not None:
            query = query.where(booking_mirror.c.attendee_phone == phone)
        async with self._engine.connect() as connection:
            return [_booking(row._mapping) for row in await connection.execute(query)]

    async def next_booking_for(self, business_id: str, phone: str, now: datetime) -> MirroredBooking | None:
        """The caller's next live booking with this business, for the greeting; None if there is none."""
        upcoming = await self.upcoming(business_id, now, phone=phone)
        return upcoming[0] if upcoming else None

    async def known_caller(self, business_id: str, phone: str, now: datetime) -> KnownCaller | None:
        """The name this number last booked under and its upcoming bookings; None for a stranger."""
        async with self._engine.connect() as connection:
            latest = (
                await connection.execute(
                    select(booking_mirror.c.attendee_name)
                    .where(
                        booking_mirror.c.business_id == business_id,
                        booking_mirror.c.attendee_phone == phone,
                    )
                    .order_by(booking_mirror.c.as_of.desc(), booking_mirror.c.start.desc())
                    .limit(1)
                )
            ).first()
        if latest is None:
            return None
        return KnownCaller(
            name=str(latest.attendee_name), upcoming=tuple(await self.upcoming(business_id, now, phone=phone))
        )

    async def prune(self, ended_before: datetime) -> int:
        """Forget bookings that ended before `ended_before` (the mirror is about what is ahead)."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(booking_mirror).where(booking_mirror.c.end < ended_before)
            )
            return int(result.rowcount)


def _booking(row: Any) -> MirroredBooking:
    return MirroredBooking(**{f.name: row[f.name] for f in fields(MirroredBooking)})
