"""A durable outbox for text messages: written in the same database as everything else, sent once.

Why a table and not a task queue: a confirmation must survive a restart between "the booking
happened" and "the text went out", and a reminder is due hours later, so every message is a row
before anything is sent. How "once" holds:

* **Enqueued once.** Each message carries an idempotency key (`confirm:<booking uid>`,
  `reminder:<booking uid>`, ...) with a unique constraint; the same notice enqueued twice (a
  duplicated webhook, the reconciler finding what a webhook already told us) is one row.
* **Claimed by one worker.** A worker claims due rows with a lease: on PostgreSQL with
  `SELECT ... FOR UPDATE SKIP LOCKED` then an `UPDATE` in one transaction, so concurrent workers
  in any number of processes take disjoint rows; on SQLite with one `UPDATE ... RETURNING`
  statement, which takes the database's write lock before it reads, so it is atomic too.
* **Recovered after a crash.** A claim is a lease (`leased_until`); a worker that dies after
  claiming leaves the row to be claimed again once the lease has passed, never earlier. Marking a
  row sent or failed checks the claim token, so a worker whose lease was taken over cannot
  overwrite the new owner's result.
* **Retried, then given up.** A transient failure puts the row back with exponential backoff; a
  permanent one (or too many attempts, or a message that is no longer worth sending after its
  `expires_at`) ends it as `failed` or `skipped`, with the reason.

The one window this cannot close: a worker that crashes after the provider accepted the message
but before the row is marked sent will, after the lease, send it again (Twilio's Messages API
takes no idempotency key). The window is one HTTP response long.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from loguru import logger
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent.logs import mask_phone
from booking.clock import Clock
from booking.sql import UTCDateTime, create_tables

__all__ = [
    "Delivery",
    "NewMessage",
    "Outbox",
    "OutboxMessage",
    "OutboxSender",
    "PermanentFailure",
    "Skip",
    "TransientFailure",
    "create_schema",
    "metadata",
    "outbox_messages",
]

MessageStatus = Literal["pending", "sending", "sent", "failed", "skipped", "cancelled"]

metadata = MetaData()

outbox_messages = Table(
    "outbox_messages",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("business_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("booking_uid", String(128)),
    Column("to_number", String(32), nullable=False),
    Column("from_number", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("send_after", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("leased_until", UTCDateTime()),
    Column("claim_token", String(64)),
    Column("sent_at", UTCDateTime()),
    Column("provider_id", String(64)),
    Column("last_error", Text),
    Index("ix_outbox_due", "status", "next_attempt_at"),
    Index("ix_outbox_booking", "booking_uid"),
)


async def create_schema(engine: AsyncEngine) -> None:
    """Create the outbox table if it does not exist (idempotent; runs at every start-up)."""
    await create_tables(engine, metadata)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A text to send: who to, from which of the business's numbers, and when it is worth sending."""

    idempotency_key: str
    business_id: str
    kind: str
    to_number: str
    from_number: str
    body: str
    send_after: datetime
    booking_uid: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A stored message as a worker or a test sees it."""

    id: int
    idempotency_key: str
    business_id: str
    kind: str
    booking_uid: str | None
    to_number: str
    from_number: str
    body: str
    status: MessageStatus
    send_after: datetime
    expires_at: datetime | None
    attempts: int
    sent_at: datetime | None
    provider_id: str | None
    last_error: str | None
    claim_token: str | None


class TransientFailure(Exception):
    """The provider may accept the message later (5xx, 429, network): retry with backoff."""


class PermanentFailure(Exception):
    """The message can never be delivered as it is (invalid number, opted out): stop trying."""


class Skip(Exception):
    """The message is no longer wanted (the booking was cancelled, the caller opted out)."""


Delivery = Callable[[OutboxMessage], Awaitable[str]]
"""Sends one message and returns the provider's id; raises one of the three failures above."""


class Outbox:
    """Enqueue, claim and settle messages; every method is one short transaction."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        lease: timedelta = timedelta(minutes=2),
        max_attempts: int = 8,
        backoff_initial: timedelta = timedelta(seconds=30),
        backoff_max: timedelta = timedelta(hours=1),
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._lease = lease
        self._max_attempts = max_attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._postgres = engine.dialect.name == "postgresql"
        self.enqueued = asyncio.Event()
        """Set whenever this process enqueues a message, so its sender need not wait for the next poll."""

    async def enqueue(self, message: NewMessage) -> bool:
        """Store `message` once; False when a message with its idempotency key already exists."""
        now = self._clock.now()
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(outbox_messages).values(
                        idempotency_key=message.idempotency_key,
                        business_id=message.business_id,
                        kind=message.kind,
                        booking_uid=message.booking_uid,
                        to_number=message.to_number,
                        from_number=message.from_number,
                        body=message.body,
                        status="pending",
                        created_at=now,
                        send_after=message.send_after,
                        expires_at=message.expires_at,
                        next_attempt_at=message.send_after,
                        attempts=0,
                    )
                )
        except IntegrityError:
            return False
        self.enqueued.set()
        logger.bind(key=message.idempotency_key, to=mask_phone(message.to_number)).debug("text enqueued")
        return True

    async def cancel_unsent(self, booking_uid: str, kinds: Sequence[str]) -> int:
        """Withdraw the messages about a booking that have not gone out yet (e.g. its reminder)."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(outbox_messages)
                .where(
                    outbox_messages.c.booking_uid == booking_uid,
                    outbox_messages.c.kind.in_(list(kinds)),
                    outbox_messages.c.status == "pending",
                )
                .values(status="cancelled", last_error="withdrawn: the booking changed")
            )
            return int(result.rowcount)

    async def claim(self, limit: int = 10) -> list[OutboxMessage]:
        """Lease up to `limit` due messages to the caller; no other worker gets them until the lease ends."""
        now = self._clock.now()
        token = secrets.token_hex(16)
        due = or_(
            and_(outbox_messages.c.status == "pending", outbox_messages.c.next_attempt_at <= now),
            and_(outbox_messages.c.status == "sending", outbox_messages.c.leased_until <= now),
        )
        values: dict[str, Any] = {
            "status": "sending",
            "claim_token": token,
            "leased_until": now + self._lease,
            "attempts": outbox_messages.c.attempts + 1,
        }
        async with self._engine.begin() as connection:
            if self._postgres:
                ids = (
                    (
                        await connection.execute(
                            select(outbox_messages.c.id)
                            .where(due)
                            .order_by(outbox_messages.c.next_attempt_at, outbox_messages.c.id)
                            .limit(limit)
                            .with_for_update(skip_locked=True)
                        )
                    )
                    .scalars()
                    .all()
                )
                if not ids:
                    return []
                statement = update(outbox_messages).where(outbox_messages.c.id.in_(ids))
            else:
                chosen = (
                    select(outbox_messages.c.id)
                    .where(due)
                    .order_by(outbox_messages.c.next_attempt_at, outbox_messages.c.id)
                    .limit(limit)
                    .scalar_subquery()
                )
                statement = update(outbox_messages).where(outbox_messages.c.id.in_(chosen))
            rows = await connection.execute(statement.values(values).returning(*outbox_messages.c))
            claimed = [_message(row._mapping) for row in rows]
        return sorted(claimed, key=lambda m: m.id)

    async def mark_sent(self, message: OutboxMessage, provider_id: str) -> bool:
        """Record the send; False if this worker's lease had already been taken over."""
        return await self._settle(
            message, status="sent", sent_at=self._clock.now(), provider_id=provider_id, last_error=None
        )

    async def mark_failed(self, message: OutboxMessage, error: str, *, permanent: bool) -> MessageStatus:
        """A failed attempt: back to `pending` with backoff, or `failed` for good."""
        if permanent or message.attempts >= self._max_attempts:
            await self._settle(message, status="failed", last_error=error)
            return "failed"
        delay = min(self._backoff_initial * 2 ** (message.attempts - 1), self._backoff_max)
        await self._settle(
            message, status="pending", next_attempt_at=self._clock.now() + delay, last_error=error
        )
        return "pending"

    async def mark_skipped(self, message: OutboxMessage, reason: str) -> None:
        await self._settle(message, status="skipped", last_error=reason)

    async def _settle(self, message: OutboxMessage, **values: Any) -> bool:
        async with self._engine.begin() as connection:
            result = await connection.execute(
                update(outbox_messages)
                .where(
                    outbox_messages.c.id == message.id,
                    outbox_messages.c.claim_token == message.claim_token,
                    outbox_messages.c.status == "sending",
                )
                .values(leased_until=None, **values)
            )
        if result.rowcount == 0:
            logger.bind(key=message.idempotency_key).warning("outbox lease was lost before settling")
            return False
        return True

    async def messages(self, **filters: Any) -> list[OutboxMessage]:
        """Stored messages, oldest first, optionally filtered by column values (for tests and doctor)."""
        async with self._engine.connect() as connection:
            return await _select(connection, filters)


async def _select(connection: AsyncConnection, filters: dict[str, Any]) -> list[OutboxMessage]:
    query = select(outbox_messages).order_by(outbox_messages.c.id)
    for name, value in filters.items():
        query = query.where(outbox_messages.c[name] == value)
    return [_message(row._mapping) for row in await connection.execute(query)]


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        idempotency_key=row["idempotency_key"],
        business_id=row["business_id"],
        kind=row["kind"],
        booking_uid=row["booking_uid"],
        to_number=row["to_number"],
        from_number=row["from_number"],
        body=row["body"],
        status=row["status"],
        send_after=row["send_after"],
        expires_at=row["expires_at"],
        attempts=row["attempts"],
        sent_at=row["sent_at"],
        provider_id=row["provider_id"],
        last_error=row["last_error"],
        claim_token=row["claim_token"],
    )


class OutboxSender:
    """The worker: claims due messages and hands each to `deliver`, then records what happened.

    Run `run_once()` from a test, or `run()` as a background task in every server process; any
    number of them may share one database.
    """

    def __init__(
        self,
        outbox: Outbox,
        deliver: Delivery,
        clock: Clock,
        *,
        batch: int = 10,
        poll_interval: timedelta = timedelta(seconds=5),
    ) -> None:
        self._outbox = outbox
        self._deliver = deliver
        self._clock = clock
        self._batch = batch
        self._poll = poll_interval.total_seconds()

    async def run_once(self) -> int:
        """Send what is due now; the number of messages settled as sent."""
        sent = 0
        for message in await self._outbox.claim(self._batch):
            sent += await self._send(message)
        return sent

    async def _send(self, message: OutboxMessage) -> int:
        log = logger.bind(key=message.idempotency_key, to=mask_phone(message.to_number))
        if message.expires_at is not None and self._clock.now() >= message.expires_at:
            await self._outbox.mark_skipped(message, "expired: no longer worth sending")
            log.info("text skipped: expired")
            return 0
        try:
            provider_id = await self._deliver(message)
        except Skip as reason:
            await self._outbox.mark_skipped(message, str(reason))
            log.info("text skipped: {}", reason)
            return 0
        except PermanentFailure as error:
            await self._outbox.mark_failed(message, str(error), permanent=True)
            log.warning("text failed for good: {}", error)
            return 0
        except TransientFailure as error:
            status = await self._outbox.mark_failed(message, str(error), permanent=False)
            log.warning("text attempt {} failed ({}): {}", message.attempts, status, error)
            return 0
        settled = await self._outbox.mark_sent(message, provider_id)
        log.bind(sid=provider_id).info("text sent")
        return int(settled)

    async def run(self) -> None:
        """Send forever: after each batch, wait for the poll interval or for a new message."""
        while True:
            try:
                while await self.run_once():
                    pass
            except Exception:
                logger.exception("outbox sender failed; retrying after the poll interval")
            self._outbox.enqueued.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.enqueued.wait(), timeout=self._poll)
