"""The phone server: Twilio's voice webhook, the media stream WebSocket, and health.

`POST /twilio/voice` answers a call in well under a second with `<Connect><Stream>` TwiML; the
stream URL carries a single-use token bound to the CallSid. `WS /twilio/media/{token}` checks the
handshake signature, redeems the token, checks the stream's `start` against it, and runs the call.
While the server drains for a deploy, new calls are put straight through to the business and
live ones are left to finish.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response, WebSocket
from loguru import logger
from starlette.websockets import WebSocketDisconnect

from agent.businesses import BusinessProfile
from agent.calls import CallStore
from agent.listening import Listening
from agent.logs import mask_phone
from agent.messaging import Messaging
from agent.mirror import BookingMirror
from agent.phone import CallRecorder, PhoneCall, PhoneSerializer, TurnSettings
from agent.prompting import Phrases
from agent.reminders import mirrored
from agent.services import Services, build_services, openai_http_client
from agent.settings import Settings
from agent.tools import ReceptionistTools
from agent.twilio_auth import PhoneLine, StreamGrant, StreamTokens, signature_valid, stream_url, webhook_url
from agent.twilio_rest import TwilioCalls
from agent.twiml import connect_stream, say_then_dial, say_then_hang_up
from agent.wiring import Runtime, calendar_for, system_prompt_for
from booking.calendars.prefetch import PrefetchingCalendar
from booking.clock import Clock, SystemClock
from booking.models import Window
from booking.phrasing import speak_slot
from booking.session import CallerId, CallSession, CodeSender, Outcome

START_TIMEOUT_SECONDS = 5.0
MAX_MESSAGE_BYTES = 64 * 1024
# The main service's availability fetched while the greeting plays.
PREFETCH_AHEAD = timedelta(days=14)
NOT_IN_SERVICE = "Sorry, this number is not in service. Goodbye."
BUSY = "Sorry, we can't take your call right now. Please call back in a few minutes. Goodbye."

ServicesFactory = Callable[[Settings, str, Any], Services]


@dataclass
class LiveCalls:
    """The calls in progress, so a deploy can wait for them."""

    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    draining: bool = False

    async def drain(self, limit_secs: float) -> None:
        self.draining = True
        if self.tasks:
            logger.info("waiting for {} live call(s) to finish", len(self.tasks))
            await self.wait_idle(limit_secs)

    async def wait_idle(self, limit_secs: float) -> None:
        """Until every live call has ended (or the limit passes)."""
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=limit_secs)


def create_app(
    runtime: Runtime,
    *,
    clock: Clock | None = None,
    services: ServicesFactory = build_services,
    codes: CodeSender | None = None,
    turn: TurnSettings | None = None,
    live: LiveCalls | None = None,
) -> FastAPI:
    """The FastAPI app for one runtime. Everything it needs is passed in; nothing is global."""
    settings = runtime.settings
    line = PhoneLine.from_settings(settings)
    clock = clock or SystemClock()
    turn = turn or TurnSettings()
    live = live or LiveCalls()
    tokens = StreamTokens(line.auth_token, runtime.engine, clock)
    twilio_http = httpx.AsyncClient(base_url=str(settings.twilio_api_base_url).rstrip("/"))
    twilio = TwilioCalls(twilio_http, account_sid=line.account_sid, auth_token=line.auth_token)
    messaging = Messaging.build(runtime, clock=clock, twilio_http=twilio_http)
    openai_http = openai_http_client()
    listening = Listening()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await tokens.create_schema()
        await messaging.create_schema()
        await messaging.start()
        try:
            yield
        finally:
            await live.drain(limit_secs=turn.max_call_secs)
            await messaging.stop()
            await twilio_http.aclose()
            await openai_http.aclose()

    app = FastAPI(title="receptionist", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.live = live
    app.state.listening = listening
    for router in messaging.routers():
        app.include_router(router)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "draining" if live.draining else "ok", "calls": len(live.tasks)}

    @app.post("/twilio/voice")
    async def voice(request: Request) -> Response:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        url = webhook_url(line.public_base_url, "/twilio/voice")
        if not signature_valid(line.auth_token, url, params, request.headers.get("x-twilio-signature")):
            logger.warning("refused a voice webhook with a missing or wrong signature")
            return Response(status_code=403)
        business = runtime.directory.by_number(params.get("To", ""))
        if business is None:
            logger.info("call to an unknown number {}", mask_phone(params.get("To", "")))
            return _twiml(say_then_hang_up(NOT_IN_SERVICE))
        if live.draining:
            if business.transfer_number:
                return _twiml(say_then_dial(None, business.transfer_number))
            return _twiml(say_then_hang_up(BUSY))
        token = tokens.mint(
            call_sid=params.get("CallSid", ""),
            business_id=business.id,
            caller=params.get("From"),
            dialled=params.get("To"),
            attestation=params.get("StirVerstat"),
        )
        parameters = {"business": business.id, "call_sid": params.get("CallSid", "")}
        return _twiml(connect_stream(stream_url(line.public_base_url, f"/twilio/media/{token}"), parameters))

    @app.websocket("/twilio/media/{token}")
    async def media(websocket: WebSocket, token: str) -> None:
        url = stream_url(line.public_base_url, f"/twilio/media/{token}")
        if not signature_valid(line.auth_token, url, {}, websocket.headers.get("x-twilio-signature")):
            logger.warning("refused a media stream with a missing or wrong signature")
            await websocket.close(code=1008)
            return
        grant = await tokens.redeem(token)
        if grant is None:
            logger.warning("refused a media stream with an unknown, used or expired token")
            await websocket.close(code=1008)
            return
        await websocket.accept()
        stream_sid = await _read_start(websocket, grant)
        if stream_sid is None:
            await websocket.close(code=1008)
            return
        task = asyncio.current_task()
        assert task is not None
        live.tasks.add(task)
        try:
            await _run_call(websocket, grant, stream_sid)
        finally:
            live.tasks.discard(task)

    async def _run_call(websocket: WebSocket, grant: StreamGrant, stream_sid: str) -> None:
        business = runtime.directory.by_id(grant.business_id)
        if business is None:
            await websocket.close(code=1011)
            return
        store: CallStore = runtime.calls
        call_id = await store.start_call(
            call_sid=grant.call_sid,
            business_id=business.id,
            from_number=grant.caller,
            to_number=grant.dialled,
            started_at=clock.now(),
        )
        calendar = PrefetchingCalendar(calendar_for(runtime, business, clock), clock)
        services_offered = business.booking_services()
        now = clock.now()
        calendar.prefetch(services_offered[0], Window(now, now + PREFETCH_AHEAD))
        session = CallSession(
            calendar=calendar,
            clock=clock,
            time_zone=business.zone,
            services=services_offered,
            caller=CallerId(grant.caller, grant.attestation),
            codes=codes or messaging.code_sender(business),
        )

        greeting, notes = await welcome(
            business, session.caller, messaging.mirror, runtime.prompts.phrases, clock
        )

        async def booking_written(outcome: Outcome) -> None:
            await messaging.notifier.booking_changed(
                business, mirrored(outcome.view.booking, business), clock.now()
            )

        call = PhoneCall(
            websocket=websocket,
            call_sid=grant.call_sid,
            stream_sid=stream_sid,
            business=business,
            session=session,
            tools=ReceptionistTools(session, business, runtime.prompts.phrases, on_outcome=booking_written),
            prompts=runtime.prompts,
            services=services(
                settings, _with_notes(system_prompt_for(runtime.prompts, business, clock), notes), openai_http
            ),
            twilio=twilio,
            serializer=PhoneSerializer(
                stream_sid,
                grant.call_sid,
                line.account_sid,
                line.auth_token,
                base_url=str(settings.twilio_api_base_url).rstrip("/"),
            ),
            record=CallRecorder(store, call_id, clock),
            listening=listening,
            greeting=greeting,
            turn=turn,
        )
        outcome = "failed"
        try:
            outcome = await call.run()
        finally:
            await calendar.close()
            await store.end_call(call_id, outcome, clock.now())  # type: ignore[arg-type]
            logger.info("call ended: {}", outcome)

    return app


async def welcome(
    business: BusinessProfile, caller: CallerId, mirror: BookingMirror, phrases: Phrases, clock: Clock
) -> tuple[str, tuple[str, ...]]:
    """The greeting, and what the model is told about a returning caller.

    Only a trusted caller ID is greeted by name: anyone can spoof a number, and a name (or an
    appointment) is not something to tell whoever claims it.
    """
    plain = phrases.say("call.greeting", business_name=business.name)
    if not caller.trusted or caller.number is None:
        return plain, ()
    now = clock.now()
    known = await mirror.known_caller(business.id, caller.number, now)
    if known is None:
        return plain, ()
    first_name = known.name.split()[0]
    local_now = now.astimezone(business.zone)
    described = [f"{b.service}, {speak_slot(b.start, local_now)}" for b in known.upcoming]
    notes = (
        phrases.say(
            "call.known_caller_context", name=known.name, appointments="; ".join(described) or "none"
        ),
    )
    if not described:
        return phrases.say("call.greeting_known", business_name=business.name, first_name=first_name), notes
    greeting = phrases.say(
        "call.greeting_known_with_booking",
        business_name=business.name,
        first_name=first_name,
        appointment=described[0],
    )
    return greeting, notes


def _with_notes(system_prompt: str, notes: tuple[str, ...]) -> str:
    """The call's instructions with what it knows of the caller: one system message, which the
    model reads the same as several (Pipecat deprecates system messages in the context)."""
    return "\n\n".join((system_prompt, *notes))


def _twiml(body: str) -> Response:
    return Response(content=body, media_type="application/xml")


async def _read_start(websocket: WebSocket, grant: StreamGrant) -> str | None:
    """Read up to Twilio's `start` message; its callSid must be the one the token was minted for."""
    try:
        async with asyncio.timeout(START_TIMEOUT_SECONDS):
            while True:
                raw = await websocket.receive_text()
                if len(raw) > MAX_MESSAGE_BYTES:
                    continue
                try:
                    message = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                if not isinstance(message, dict) or message.get("event") != "start":
                    continue
                start = message.get("start") or {}
                if start.get("callSid") != grant.call_sid:
                    logger.warning("media stream start names another call; refused")
                    return None
                stream_sid = start.get("streamSid") or message.get("streamSid")
                return str(stream_sid) if stream_sid else None
    except (TimeoutError, WebSocketDisconnect):
        return None
