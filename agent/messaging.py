"""Texts and booking sync, assembled: what the server mounts and which workers it runs.

The pieces live in their own modules (`webhooks`, `sms`, `outbox`, `mirror`, `reminders`,
`reconcile`); this module only connects them from a `Runtime`, so the server does three things:

    messaging = Messaging.build(runtime, clock=clock, twilio_http=twilio_http)
    await messaging.create_schema()              # in the lifespan, before serving
    for router in messaging.routers(): app.include_router(router)
    await messaging.start() ... await messaging.stop()

Every server process may run the workers: the outbox is claimed with row locks, the mirror is
written with conditional upserts, and webhook events are stored once, so nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from fastapi import APIRouter
from loguru import logger

from agent import mirror as mirror_module
from agent import outbox as outbox_module
from agent import reconcile as reconcile_module
from agent import sms as sms_module
from agent.businesses import BusinessProfile
from agent.mirror import BookingMirror
from agent.outbox import Outbox, OutboxSender
from agent.reconcile import Reconciler
from agent.reminders import Notifier, ReminderSweep
from agent.sms import (
    OptOuts,
    SmsTemplates,
    TwilioCodeSender,
    TwilioMessages,
    deliver_with,
    load_sms_templates,
    twilio_sms_router,
)
from agent.webhooks import CalcomEvents, calcom_webhook_router
from agent.wiring import Runtime
from booking.clock import Clock

__all__ = ["Messaging", "MessagingOptions"]


@dataclass(frozen=True, slots=True)
class MessagingOptions:
    """How often the workers run, and per-business review links (business id -> URL)."""

    outbox_poll: timedelta = timedelta(seconds=5)
    reconcile_every: timedelta = timedelta(minutes=5)
    reminder_sweep_every: timedelta = timedelta(minutes=10)
    review_delay: timedelta = timedelta(hours=1)
    review_urls: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Messaging:
    """The connected parts; `twilio` is None without Twilio credentials (nothing is sent then)."""

    runtime: Runtime
    clock: Clock
    options: MessagingOptions
    templates: SmsTemplates
    outbox: Outbox
    mirror: BookingMirror
    opt_outs: OptOuts
    notifier: Notifier
    events: CalcomEvents
    twilio: TwilioMessages | None
    reconciler: Reconciler | None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        runtime: Runtime,
        *,
        clock: Clock,
        twilio_http: httpx.AsyncClient,
        options: MessagingOptions | None = None,
    ) -> Messaging:
        """Connect everything from the runtime's settings; `twilio_http` is any client (tests: the fake)."""
        options = options or MessagingOptions()
        settings = runtime.settings
        templates = load_sms_templates()
        outbox = Outbox(runtime.engine, clock)
        mirror = BookingMirror(runtime.engine)
        notifier = Notifier(
            mirror=mirror,
            outbox=outbox,
            templates=templates,
            clock=clock,
            review_delay=options.review_delay,
            review_urls=options.review_urls,
        )
        events = CalcomEvents(
            engine=runtime.engine,
            calls=runtime.calls,
            directory=runtime.directory,
            notifier=notifier,
            clock=clock,
        )
        twilio = None
        if settings.twilio_account_sid and settings.twilio_auth_token:
            twilio = TwilioMessages(
                twilio_http,
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token.get_secret_value(),
                base_url=str(settings.twilio_api_base_url),
            )
        reconciler = None
        if runtime.calcom_http is not None and settings.calcom_api_key is not None:
            reconciler = Reconciler(
                client=runtime.calcom_http,
                api_key=settings.calcom_api_key.get_secret_value(),
                engine=runtime.engine,
                directory=runtime.directory,
                notifier=notifier,
                clock=clock,
                events=events,
            )
        return cls(
            runtime=runtime,
            clock=clock,
            options=options,
            templates=templates,
            outbox=outbox,
            mirror=mirror,
            opt_outs=OptOuts(runtime.engine, clock),
            notifier=notifier,
            events=events,
            twilio=twilio,
            reconciler=reconciler,
        )

    async def create_schema(self) -> None:
        """The outbox, mirror, opt-out and reconcile tables (idempotent)."""
        for module in (outbox_module, mirror_module, sms_module, reconcile_module):
            await module.create_schema(self.runtime.engine)

    def routers(self) -> list[APIRouter]:
        """`POST /webhooks/calcom` when its secret is set; `POST /twilio/sms` when Twilio is configured."""
        settings = self.runtime.settings
        routers: list[APIRouter] = []
        if settings.calcom_webhook_secret is not None:
            routers.append(
                calcom_webhook_router(
                    secret=settings.calcom_webhook_secret.get_secret_value(), events=self.events
                )
            )
        if settings.twilio_auth_token is not None and settings.public_base_url is not None:
            routers.append(
                twilio_sms_router(
                    auth_token=settings.twilio_auth_token.get_secret_value(),
                    public_base_url=str(settings.public_base_url),
                    directory=self.runtime.directory,
                    opt_outs=self.opt_outs,
                    templates=self.templates,
                )
            )
        return routers

    def code_sender(self, business: BusinessProfile) -> TwilioCodeSender | None:
        """The verification-code sender for calls to `business`; None when it cannot text."""
        if self.twilio is None or not business.phone_numbers:
            return None
        return TwilioCodeSender(self.twilio, self.templates, business)

    def sender(self) -> OutboxSender:
        if self.twilio is None:
            raise RuntimeError("no Twilio credentials: the outbox cannot send")
        deliver = deliver_with(self.twilio, self.opt_outs, self.notifier.still_wanted)
        return OutboxSender(self.outbox, deliver, self.clock, poll_interval=self.options.outbox_poll)

    async def start(self) -> None:
        """Start the workers: outbox sender (with Twilio), reconciler (with Cal.com), reminder sweep."""
        sweep = ReminderSweep(notifier=self.notifier, directory=self.runtime.directory, clock=self.clock)
        workers: list[Coroutine[Any, Any, None]] = [sweep.run(self.options.reminder_sweep_every)]
        if self.twilio is not None:
            workers.append(self.sender().run())
        else:
            logger.warning("TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN unset: texts are queued but not sent")
        if self.reconciler is not None:
            workers.append(self.reconciler.run(self.options.reconcile_every))
        self._tasks = [asyncio.create_task(worker) for worker in workers]

    async def stop(self) -> None:
        """Cancel the workers; a message being sent is left to its lease and sent by a later worker."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
