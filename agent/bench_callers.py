"""The bench's fake callers, in a process of their own: what crosses into it and what comes back.

This module imports only the fake caller (websockets, numpy), not the server, Pipecat or the
fakes: spawning the callers' process takes 0.3 s and ~40 MiB instead of 3.8 s and ~160 MiB, and
there is less heap for a collection to walk while the calls run (see `callers_process`).
"""

from __future__ import annotations

import asyncio
import gc
import os
from dataclasses import dataclass, field
from pathlib import Path

from agent.loopback.twilio_caller import FakeTwilioCaller

AUDIO = Path(__file__).resolve().parent.parent / "fixtures" / "audio"
# The fake callers' and fake services' scheduling priority: below the server's (0), see `callers_process`.
CALLERS_NICE = 10


@dataclass(frozen=True)
class CallerSpec:
    """Where and how one fake caller dials in; crosses into the callers' process."""

    url: str
    headers: dict[str, str]
    call_sid: str
    account_sid: str
    start_after_secs: float


@dataclass
class CallerRecord:
    """What one caller measured (monotonic times are system-wide, so they compare across processes)."""

    call_sid: str
    turns: list[tuple[float, float]] = field(default_factory=list)  # (speech end, latency)
    media: list[tuple[float, int]] = field(default_factory=list)  # (arrival, μ-law bytes)
    send_lateness: list[float] = field(default_factory=list)  # seconds each media frame left late
    error: str | None = None


def record_of(caller: FakeTwilioCaller) -> CallerRecord:
    return CallerRecord(
        caller.call_sid,
        [(t.speech_ended_at, t.latency) for t in caller.turns if t.speech_ended_at and t.latency is not None],
        [(m.at, len(m.audio)) for m in caller.received("media")],
        caller.send_lateness,
    )


async def talk(spec: CallerSpec, wavs: tuple[str, ...]) -> CallerRecord:
    await asyncio.sleep(spec.start_after_secs)
    caller = FakeTwilioCaller(
        spec.url, headers=spec.headers, call_sid=spec.call_sid, account_sid=spec.account_sid
    )
    try:
        async with caller:
            await caller.wait_until_silent(timeout_seconds=30)
            for wav in wavs:
                await caller.say(AUDIO / wav)
                await caller.wait_until_silent(timeout_seconds=30)
    except Exception as error:
        return CallerRecord(spec.call_sid, error=f"{type(error).__name__}: {error}"[:200])
    return record_of(caller)


def callers_process(specs: list[CallerSpec], wavs: tuple[str, ...]) -> list[CallerRecord]:
    """In a process of their own, so the server's CPU and loop are the server's alone.

    They stand for Twilio, whose media servers keep time whatever our server does, and are not on
    its cores. Two things here keep them closer to that:
    - No garbage collection during the calls: a full collection paused every caller at once for
      ~130 ms at 30 calls (when this process still imported the whole bench), so their audio
      reached the server late and the agent's audio was stamped late, a gap and a latency the
      server did not cause. The process lives for one run; what it would have collected waits.
    - A lower scheduling priority (`CALLERS_NICE`): at equal priority the scheduler shares the
      two cores among the workers and the callers (~0.23 of a core at 40 calls), and a turn's
      work waits behind the load generator's sends. Now they take the CPU the server leaves.
      What they lose is still counted against the server: a caller that falls behind hears the
      agent late (`caller_late_p99_ms` says how far behind they were).
    """
    os.setpriority(os.PRIO_PROCESS, 0, CALLERS_NICE)

    async def all_calls() -> list[CallerRecord]:
        return list(await asyncio.gather(*(talk(spec, wavs) for spec in specs)))

    gc.disable()
    try:
        return asyncio.run(all_calls())
    finally:
        gc.enable()
