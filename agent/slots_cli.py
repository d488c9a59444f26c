"""`python -m agent slots`: what the active calendar would offer, without a call.

Useful to check a business profile (hours, notice, buffers) or a Cal.com connection: the same
`Calendar.slots` the agent asks, on whichever backend is active.
"""

from __future__ import annotations

import json
from datetime import datetime

from rich.console import Console
from rich.table import Table

from agent.businesses import BusinessProfile
from agent.errors import ConfigError
from agent.wiring import Runtime, calendar_for
from booking.clock import SystemClock
from booking.errors import BookingError
from booking.models import Window
from booking.phrasing import speak_slot


def parse_moment(text: str, business: BusinessProfile, flag: str) -> datetime:
    """An ISO date or date-time; without an offset it is read in the business's time zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(
            f"{flag} {text!r} is not an ISO date or date-time such as 2026-11-24T09:00."
        ) from exc
    return moment.replace(tzinfo=business.zone) if moment.tzinfo is None else moment


async def print_slots(
    runtime: Runtime,
    business: BusinessProfile,
    service_key: str,
    start: str,
    end: str,
    as_json: bool,
    console: Console,
) -> int:
    services = {s.key: s for s in business.booking_services()}
    service = services.get(service_key)
    if service is None:
        raise ConfigError(f"{business.id} has no service {service_key!r}; it offers {', '.join(services)}.")
    window_start, window_end = parse_moment(start, business, "--from"), parse_moment(end, business, "--to")
    if window_end <= window_start:
        raise ConfigError("--to must be after --from.")
    clock = SystemClock()
    calendar = calendar_for(runtime, business, clock)
    try:
        slots = await calendar.slots(service, Window(window_start, window_end))
    except BookingError as error:
        console.print(f"The calendar did not answer ({error.code}): {error.message}.", markup=False)
        return 1
    now = clock.now().astimezone(business.zone)
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "service": s.service_key,
                        "start": s.start.isoformat(),
                        "end": s.end.isoformat(),
                        "spoken": speak_slot(s.start, now),
                    }
                    for s in slots
                ]
            )
        )
        return 0
    table = Table(title=f"{service.name} at {business.name} ({len(slots)} free)")
    for column in ("start", "end", "as spoken"):
        table.add_column(column)
    for slot in slots:
        local_start, local_end = slot.start.astimezone(business.zone), slot.end.astimezone(business.zone)
        table.add_row(f"{local_start:%a %Y-%m-%d %H:%M}", f"{local_end:%H:%M}", speak_slot(slot.start, now))
    console.print(table)
    return 0
