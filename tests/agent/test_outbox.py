"""The outbox: every text is sent once, across workers and crashes, retried when Twilio stumbles."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from agent.database import make_engine
from agent.outbox import NewMessage, Outbox, OutboxMessage, OutboxSender
from tests.agent.messaging_stage import BUSINESS_NUMBER, NOW, stage


def _text(n: int, *, delay: timedelta = timedelta(0), expires: timedelta | None = None) -> NewMessage:
    return NewMessage(
        idempotency_key=f"confirmed:booking-{n}",
        business_id="bright-smile",
        kind="confirmed",
        to_number=f"+1415555{n:04d}",
        from_number=BUSINESS_NUMBER,
        body=f"Hi caller {n}, you're booked.",
        send_after=NOW + delay,
        booking_uid=f"booking-{n}",
        expires_at=NOW + expires if expires is not None else None,
    )


async def test_the_same_notice_is_enqueued_once(database_url: str) -> None:
    """However often a booking is reported, its confirmation is one row and one text."""
    async with stage(database_url) as s:
        assert await s.outbox.enqueue(_text(1))
        assert not await s.outbox.enqueue(_text(1))
        assert await s.send_due() == 1
        assert await s.send_due() == 0
        [message] = await s.queued()
        assert message.status == "sent" and message.provider_id == s.twilio.messages[0].sid
        assert message.sent_at == NOW


async def test_a_reminder_waits_for_its_time(database_url: str) -> None:
    """A reminder due tomorrow is not sent today."""
    async with stage(database_url) as s:
        await s.outbox.enqueue(_text(1, delay=timedelta(hours=20)))
        assert await s.send_due() == 0
        s.later(timedelta(hours=20))
        assert await s.send_due() == 1


async def test_twilio_outages_are_retried_with_backoff(database_url: str) -> None:
    """Twilio failing for a while delays the text; it still goes out once."""
    async with stage(database_url) as s:
        await s.outbox.enqueue(_text(1))
        s.twilio.fail_next(1, status=503)
        s.twilio.rate_limit_next(1)
        assert await s.send_due() == 0
        [message] = await s.queued()
        assert (message.status, message.attempts) == ("pending", 1) and "503" in (message.last_error or "")
        assert await s.send_due() == 0  # backing off: not due yet
        s.later(timedelta(seconds=30))
        assert await s.send_due() == 0  # 429 this time
        s.later(timedelta(seconds=60))
        assert await s.send_due() == 1
        assert len(s.twilio.messages) == 1


async def test_a_bad_number_fails_for_good(database_url: str) -> None:
    """A number Twilio cannot text is given up on at once, not retried for hours."""
    async with stage(database_url) as s:
        await s.outbox.enqueue(
            NewMessage("confirmed:x", "bright-smile", "confirmed", "+1", BUSINESS_NUMBER, "hi", NOW)
        )
        await s.send_due()
        [message] = await s.queued()
        assert message.status == "failed" and "21211" in (message.last_error or "")


async def test_a_text_that_is_too_late_is_not_sent(database_url: str) -> None:
    """A confirmation stuck until after the appointment began is dropped, not sent late."""
    async with stage(database_url) as s:
        await s.outbox.enqueue(_text(1, expires=timedelta(hours=1)))
        s.later(timedelta(hours=2))
        await s.send_due()
        assert s.twilio.messages == []
        assert (await s.queued())[0].status == "skipped"


class _Killed(BaseException):
    """The worker process is killed: nothing after this point runs."""


async def test_a_worker_killed_after_claiming_is_replaced_and_the_text_goes_once(database_url: str) -> None:
    """A server dying mid-send delays the text until its lease ends; then another sends it, once."""
    async with stage(database_url) as s:
        await s.outbox.enqueue(_text(1))

        async def die(message: OutboxMessage) -> str:
            raise _Killed

        with pytest.raises(_Killed):
            await OutboxSender(s.outbox, die, s.clock).run_once()
        [claimed] = await s.queued()
        assert claimed.status == "sending"

        survivor = Outbox(s.engine, s.clock)
        assert await s.sender(survivor).run_once() == 0  # the lease still holds
        s.later(timedelta(minutes=3))
        assert await s.sender(survivor).run_once() == 1
        assert await s.sender(survivor).run_once() == 0
        assert len(s.twilio.messages) == 1
        # The dead worker's stale claim can no longer settle the row.
        assert not await s.outbox.mark_sent(claimed, "SMstale")
        assert (await s.queued())[0].provider_id == s.twilio.messages[0].sid


async def test_two_workers_on_one_outbox_never_send_twice(database_url: str) -> None:
    """Two server processes sharing the database split the texts; no caller gets one twice."""
    async with stage(database_url) as s:
        for n in range(60):
            await s.outbox.enqueue(_text(n))
        engines = [make_engine(database_url), make_engine(database_url)]
        try:
            senders = [s.sender(Outbox(engine, s.clock)) for engine in engines]
            sent_by = [0, 0]

            async def drain(index: int) -> None:
                while True:
                    sent = await senders[index].run_once()
                    if not sent and not await s.outbox.messages(status="pending"):
                        return
                    sent_by[index] += sent
                    await asyncio.sleep(0)

            await asyncio.gather(drain(0), drain(1))
        finally:
            for engine in engines:
                await engine.dispose()
        recipients = [m.to for m in s.twilio.messages]
        assert len(recipients) == 60 and len(set(recipients)) == 60
        assert sum(sent_by) == 60
        assert {m.status for m in await s.queued()} == {"sent"}
