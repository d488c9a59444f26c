"""A business on Cal.com with a Twilio number, a pinned clock and both fakes: the stage for texts tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from agent import mirror as mirror_module
from agent import outbox as outbox_module
from agent import reconcile as reconcile_module
from agent import sms as sms_module
from agent.businesses import BusinessProfile, Directory, ServiceProfile
from agent.calls import CallStore
from agent.calls import metadata as calls_metadata
from agent.database import make_engine
from agent.loopback.calcom_api import DEFAULT_API_KEY, FakeCalcom, WebhookDelivery
from agent.loopback.twilio_rest import FakeTwilio
from agent.mirror import BookingMirror
from agent.outbox import Outbox, OutboxMessage, OutboxSender
from agent.reconcile import Reconciler
from agent.reminders import Notifier
from agent.sms import OptOuts, TwilioMessages, deliver_with, load_sms_templates, twilio_sms_router
from agent.webhooks import CalcomEvents, calcom_webhook_router, register_webhook
from booking.clock import FixedClock

ZONE = ZoneInfo("America/New_York")
# Monday 23 November 2026, 9:00 in the morning.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)
WEDNESDAY_2PM = datetime(2026, 11, 25, 14, 0, tzinfo=ZONE)
FRIDAY_10AM = datetime(2026, 11, 27, 10, 0, tzinfo=ZONE)
CALLER = "+14155550101"
OTHER_CALLER = "+14155550102"
BUSINESS_NUMBER = "+15550100100"
SECRET = "whsec_receptionist_test_secret"
PUBLIC_BASE_URL = "https://receptionist.example.com"
CALCOM_API = "https://api.cal.com/v2"

BUSINESS = BusinessProfile(
    id="bright-smile",
    name="Bright Smile Dental",
    phone_numbers=(BUSINESS_NUMBER,),
    time_zone="America/New_York",
    services=(
        ServiceProfile(key="consultation", name="consultation", duration_minutes=30, event_type_id=456),
    ),
    reminder_hours_before=24,
)

ALL_METADATA = (
    calls_metadata,
    outbox_module.metadata,
    mirror_module.metadata,
    sms_module.metadata,
    reconcile_module.metadata,
)


async def fresh_schema(engine: AsyncEngine) -> None:
    """Every table this feature touches, dropped (PostgreSQL keeps them between tests) and created."""
    async with engine.begin() as connection:
        for metadata in ALL_METADATA:
            await connection.run_sync(metadata.drop_all)
        for metadata in ALL_METADATA:
            await connection.run_sync(metadata.create_all)


@dataclass
class Stage:
    engine: AsyncEngine
    clock: FixedClock
    calcom: FakeCalcom
    calcom_http: httpx.AsyncClient
    twilio: FakeTwilio
    twilio_http: httpx.AsyncClient
    outbox: Outbox
    mirror: BookingMirror
    opt_outs: OptOuts
    notifier: Notifier
    events: CalcomEvents
    messages: TwilioMessages
    app: FastAPI
    client: httpx.AsyncClient

    def sender(self, outbox: Outbox | None = None) -> OutboxSender:
        deliver = deliver_with(self.messages, self.opt_outs, self.notifier.still_wanted)
        return OutboxSender(outbox or self.outbox, deliver, self.clock)

    def reconciler(self) -> Reconciler:
        return Reconciler(
            client=self.calcom_http,
            api_key=DEFAULT_API_KEY,
            engine=self.engine,
            directory=Directory((BUSINESS,)),
            notifier=self.notifier,
            clock=self.clock,
            events=self.events,
        )

    async def subscribe(self, secret: str | None = SECRET) -> None:
        """The business ran `python -m agent webhooks register`."""
        await register_webhook(
            self.calcom_http,
            api_key=DEFAULT_API_KEY,
            subscriber_url=f"{PUBLIC_BASE_URL}/webhooks/calcom",
            secret=secret or "",
        )
        if secret is None:
            for webhook in self.calcom.webhooks.values():
                webhook["secret"] = None

    def take_deliveries(self) -> list[WebhookDelivery]:
        taken, self.calcom.deliveries[:] = list(self.calcom.deliveries), []
        return taken

    async def deliver(self, delivery: WebhookDelivery) -> httpx.Response:
        return await self.client.post("/webhooks/calcom", content=delivery.body, headers=delivery.headers)

    async def deliver_all(self) -> list[httpx.Response]:
        return [await self.deliver(d) for d in self.take_deliveries()]

    async def book(self, start: datetime, *, name: str = "Jane Doe", phone: str | None = CALLER) -> str:
        """A booking made on Cal.com's web booker (not on the phone)."""
        attendee: dict[str, Any] = {"name": name, "email": "jane@example.com", "timeZone": "America/New_York"}
        if phone:
            attendee["phoneNumber"] = phone
        response = await self.calcom_http.post(
            "/bookings",
            json={
                "start": start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventTypeId": 456,
                "attendee": attendee,
            },
            headers={"cal-api-version": "2024-08-13"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["uid"])

    async def cancel(self, uid: str) -> None:
        response = await self.calcom_http.post(
            f"/bookings/{uid}/cancel",
            json={"cancellationReason": "office closed"},
            headers={"cal-api-version": "2024-08-13", "Authorization": f"Bearer {DEFAULT_API_KEY}"},
        )
        assert response.status_code == 200, response.text

    async def reschedule(self, uid: str, start: datetime) -> str:
        response = await self.calcom_http.post(
            f"/bookings/{uid}/reschedule",
            json={"start": start.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")},
            headers={"cal-api-version": "2024-08-13"},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["uid"])

    async def queued(self, **filters: Any) -> list[OutboxMessage]:
        return await self.outbox.messages(**filters)

    async def send_due(self) -> int:
        return await self.sender().run_once()

    def later(self, by: timedelta) -> None:
        self.clock.advance(by)


@asynccontextmanager
async def stage(database_url: str, *, notifier_class: type[Notifier] = Notifier) -> AsyncIterator[Stage]:
    engine = make_engine(database_url)
    await fresh_schema(engine)
    clock = FixedClock(NOW)
    calcom = FakeCalcom(clock)
    twilio = FakeTwilio(clock=clock)
    calcom_http = httpx.AsyncClient(base_url=CALCOM_API, transport=httpx.MockTransport(calcom))
    twilio_http = httpx.AsyncClient(base_url="https://api.twilio.com", transport=twilio.transport())
    outbox = Outbox(engine, clock)
    mirror = BookingMirror(engine)
    opt_outs = OptOuts(engine, clock)
    templates = load_sms_templates()
    notifier = notifier_class(mirror=mirror, outbox=outbox, templates=templates, clock=clock)
    directory = Directory((BUSINESS,))
    events = CalcomEvents(
        engine=engine, calls=CallStore(engine), directory=directory, notifier=notifier, clock=clock
    )
    messages = TwilioMessages(twilio_http, account_sid=twilio.account_sid, auth_token=twilio.auth_token)
    app = FastAPI()
    app.include_router(calcom_webhook_router(secret=SECRET, events=events))
    app.include_router(
        twilio_sms_router(
            auth_token=twilio.auth_token,
            public_base_url=PUBLIC_BASE_URL,
            directory=directory,
            opt_outs=opt_outs,
            templates=templates,
        )
    )
    client = httpx.AsyncClient(base_url="http://internal:8000", transport=httpx.ASGITransport(app=app))
    try:
        yield Stage(
            engine=engine,
            clock=clock,
            calcom=calcom,
            calcom_http=calcom_http,
            twilio=twilio,
            twilio_http=twilio_http,
            outbox=outbox,
            mirror=mirror,
            opt_outs=opt_outs,
            notifier=notifier,
            events=events,
            messages=messages,
            app=app,
            client=client,
        )
    finally:
        await client.aclose()
        await calcom_http.aclose()
        await twilio_http.aclose()
        await engine.dispose()
