"""The composition root: from `Settings` to the running parts (businesses, database, call records).

Every entry point (serve, chat, simulate, doctor) opens the runtime here, so start-up problems are
found the same way everywhere and reported as one sentence (`RuntimeFailure`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.businesses import (
    DEMO_BUSINESSES_FILE,
    WEEKDAYS,
    BusinessProfile,
    Directory,
    ServiceProfile,
    load_directory,
)
from agent.calls import CallStore
from agent.conversation import Conversation, Recorder, no_record
from agent.database import check_connection, make_engine
from agent.errors import ConfigError
from agent.llm import LLM
from agent.prompting import Prompts, load_prompts
from agent.settings import Settings
from agent.tools import ReceptionistTools
from booking.calendar import Calendar
from booking.calendars.calcom import DEFAULT_TIMEOUT as CALCOM_TIMEOUT
from booking.calendars.calcom import CalcomCalendar
from booking.calendars.local import LocalCalendar, LocalCalendarConfig, LocalService, create_schema
from booking.clock import Clock, SystemClock
from booking.errors import BookingError
from booking.session import CallerId, CallSession, CodeSender


@dataclass(frozen=True)
class Runtime:
    """What a running process shares between calls."""

    settings: Settings
    directory: Directory
    engine: AsyncEngine
    calls: CallStore
    prompts: Prompts
    calcom_http: httpx.AsyncClient | None = None


async def load_businesses(settings: Settings, calcom_http: httpx.AsyncClient | None) -> Directory:
    """The configured profiles; with no file, the demo business (embedded) or the Cal.com account."""
    if settings.businesses_file is not None:
        directory = load_directory(settings.businesses_file)
    elif calcom_http is None:
        return load_directory(DEMO_BUSINESSES_FILE)
    else:
        return await business_from_calcom(settings, calcom_http)
    if calcom_http is not None:
        for business in directory:
            missing = [s.key for s in business.services if s.event_type_id is None]
            if missing:
                raise ConfigError(
                    f"BUSINESSES_FILE: with CALCOM_API_KEY set, every service needs event_type_id; "
                    f"{business.id} lacks it for {', '.join(missing)}."
                )
    return directory


async def business_from_calcom(settings: Settings, client: httpx.AsyncClient) -> Directory:
    """One business from the Cal.com account: its event types are the services, its zone the zone."""
    assert settings.calcom_api_key is not None
    calendar = CalcomCalendar(client, api_key=settings.calcom_api_key.get_secret_value(), clock=SystemClock())
    try:
        name = await calendar.account_name()
        zone = await calendar.time_zone()
        services = await calendar.services()
    except BookingError as error:
        raise ConfigError(
            f"Cal.com did not give the account's details ({error.code}): {error.message}."
        ) from error
    if not services:
        raise ConfigError("The Cal.com account has no visible event types to offer as services.")
    profile = BusinessProfile(
        id="calcom",
        name=name,
        time_zone=zone.key,
        services=tuple(
            ServiceProfile(
                key=_slug(service.key),
                name=service.name,
                duration_minutes=max(1, int(service.duration.total_seconds() // 60)),
                event_type_id=service.event_type_id,
                requires_confirmation=service.requires_confirmation,
                synonyms=service.synonyms,
            )
            for service in services
        ),
    )
    return Directory((profile,))


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return slug or "service"


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, calcom_transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Runtime]:
    """Load profiles, connect to the database and prepare its schema; close it all on exit.

    `calcom_transport` lets tests put a fake Cal.com behind the real HTTP client.
    """
    prompts = load_prompts()
    calcom_http = (
        httpx.AsyncClient(
            base_url=str(settings.calcom_api_url), timeout=CALCOM_TIMEOUT, transport=calcom_transport
        )
        if settings.calendar_backend == "calcom"
        else None
    )
    engine = make_engine(settings.database_url)
    try:
        directory = await load_businesses(settings, calcom_http)
        await check_connection(engine)
        calls = CallStore(engine)
        await calls.create_schema()
        if calcom_http is None:
            await create_schema(engine)
        yield Runtime(
            settings=settings,
            directory=directory,
            engine=engine,
            calls=calls,
            prompts=prompts,
            calcom_http=calcom_http,
        )
    finally:
        await engine.dispose()
        if calcom_http is not None:
            await calcom_http.aclose()


def local_calendar_config(business: BusinessProfile) -> LocalCalendarConfig:
    """The embedded calendar's rules for one business, from its profile."""
    return LocalCalendarConfig(
        time_zone=business.time_zone,
        services=tuple(
            LocalService(
                service=profile.to_service(),
                buffer_before=timedelta(minutes=profile.buffer_before_minutes),
                buffer_after=timedelta(minutes=profile.buffer_after_minutes),
                min_notice=timedelta(minutes=profile.min_notice_minutes),
                horizon=timedelta(days=profile.horizon_days),
                slot_interval=(
                    timedelta(minutes=profile.slot_interval_minutes)
                    if profile.slot_interval_minutes
                    else None
                ),
            )
            for profile in business.services
        ),
        weekly_hours={
            WEEKDAYS.index(day): tuple((span.opens, span.closes) for span in spans)
            for day, spans in business.hours.items()
        },
        closed_dates=business.closed_dates,
        staff=business.staff,
        calendar_id=business.id,
    )


def calendar_for(runtime: Runtime, business: BusinessProfile, clock: Clock) -> Calendar:
    """The calendar this business books into: the embedded one, or Cal.com when a key is set."""
    settings = runtime.settings
    if runtime.calcom_http is None or settings.calcom_api_key is None:
        return LocalCalendar(runtime.engine, local_calendar_config(business), clock)
    return CalcomCalendar(
        runtime.calcom_http,
        api_key=settings.calcom_api_key.get_secret_value(),
        clock=clock,
        time_zone=business.time_zone,
        services=business.booking_services(),
    )


def describe_hours(business: BusinessProfile) -> str:
    """Opening hours as the system prompt states them: "Monday 8:00-12:00 and 13:00-17:00; ..."."""
    if not business.hours:
        return "as the calendar shows (check_availability only offers open times)"
    days = []
    for day in WEEKDAYS:
        spans = business.hours.get(day, ())
        text = " and ".join(
            f"{s.opens:%H:%M}-{'24:00' if s.closes.hour == 0 else f'{s.closes:%H:%M}'}" for s in spans
        )
        days.append(f"{day.capitalize()} {text or 'closed'}")
    return "; ".join(days)


def system_prompt_for(prompts: Prompts, business: BusinessProfile, clock: Clock) -> str:
    """The system prompt for one call: the business, its services and hours, and today's date."""
    return prompts.system(
        business_name=business.name,
        today=clock.now().astimezone(business.zone),
        time_zone=business.time_zone,
        services=", ".join(f"{s.name} ({s.duration_minutes} minutes)" for s in business.services),
        hours=describe_hours(business),
    )


def open_conversation(
    *,
    business: BusinessProfile,
    calendar: Calendar,
    prompts: Prompts,
    llm: LLM,
    clock: Clock,
    caller: CallerId,
    codes: CodeSender | None = None,
    record: Recorder = no_record,
) -> Conversation:
    """One call's conversation: its booking session, tools, system prompt and model."""
    session = CallSession(
        calendar=calendar,
        clock=clock,
        time_zone=business.zone,
        services=business.booking_services(),
        caller=caller,
        codes=codes,
    )
    return Conversation(
        tools=ReceptionistTools(session, business, prompts.phrases),
        llm=llm,
        phrases=prompts.phrases,
        system_prompt=system_prompt_for(prompts, business, clock),
        business_name=business.name,
        can_transfer=business.transfer_number is not None,
        record=record,
    )
