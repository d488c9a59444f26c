"""`python -m agent chat`: talk to the receptionist as text, with the real model, on the active calendar.

It is the same conversation a phone call has (same tools, same rules, same call record), minus the
audio: useful to try a business profile or a prompt change before pointing a phone number at it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from rich.console import Console

from agent.businesses import BusinessProfile
from agent.conversation import Reply
from agent.llm import OpenAIChat
from agent.wiring import Runtime, calendar_for, open_conversation
from booking.clock import SystemClock
from booking.session import CallerId

NO_KEY = (
    "chat needs a language model: set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server). "
    "Without a key, `python -m agent simulate` replays scripted calls."
)


async def run_chat(
    runtime: Runtime, business: BusinessProfile, console: Console, read_line: Callable[[], str]
) -> int:
    """Run one text conversation until the caller quits or the agent ends or transfers the call."""
    settings = runtime.settings
    if settings.openai_api_key is None:
        console.print(NO_KEY, markup=False)
        return 1
    clock = SystemClock()
    llm = OpenAIChat(
        api_key=settings.openai_api_key.get_secret_value(),
        model=settings.openai_model,
        base_url=str(settings.openai_base_url) if settings.openai_base_url else None,
    )
    call_id = await runtime.calls.start_call(
        call_sid=f"CHAT-{uuid.uuid4().hex[:12]}",
        business_id=business.id,
        from_number=None,
        to_number=business.phone_numbers[0],
        started_at=clock.now(),
    )

    async def record(kind: str, data: dict[str, Any]) -> None:
        await runtime.calls.add_event(call_id, kind, data, clock.now())  # type: ignore[arg-type]

    conversation = open_conversation(
        business=business,
        calendar=calendar_for(runtime, business, clock),
        prompts=runtime.prompts,
        llm=llm,
        clock=clock,
        caller=CallerId(None),
        record=record,
    )
    console.print(f"[bold]agent[/bold]: {await conversation.greet()}")
    outcome = "no_booking"
    try:
        while True:
            try:
                line = read_line().strip()
            except EOFError:
                break
            if line.lower() in ("quit", "exit", "/quit"):
                break
            if not line:
                continue
            reply = await conversation.hear(line)
            _show(console, reply)
            outcome = _outcome(reply, outcome)
            if reply.action is not None:
                break
    finally:
        await conversation.end()
        await runtime.calls.end_call(call_id, outcome, clock.now())  # type: ignore[arg-type]
    return 0


def _show(console: Console, reply: Reply) -> None:
    for event in reply.tools:
        status = event.result.get("error") or event.result.get("status") or "ok"
        console.print(f"  [dim]· {event.name} → {status}[/dim]")
    for sentence in reply.spoken:
        console.print(f"[bold]agent[/bold]: {sentence}", markup=True, highlight=False)
    if reply.action == "transfer":
        console.print("[dim](the call would be transferred to the office now)[/dim]")


def _outcome(reply: Reply, current: str) -> str:
    for event in reply.tools:
        if event.name == "confirm_proposal" and event.result.get("status"):
            return str(event.result["status"])
    if reply.action == "transfer":
        return "transferred"
    return current
