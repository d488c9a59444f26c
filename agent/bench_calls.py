"""Whole calls for the benchmark: fake Twilio callers streaming real speech, measured from both ends.

The caller measures what a person would feel: from its last speech frame to the first voiced agent
audio it receives (`FakeTwilioCaller.latencies`). The server tells how long turn detection held the
turn: Pipecat's `UserBotLatencyObserver` breakdown, whose `setting`-owned contributions are the VAD
silence wait and Smart-Turn's verdict (or its 1.2 s "incomplete" wait). That wait is not fixed, so
it is subtracted per turn rather than assumed: overhead = latency - service delays - that wait.

Our path runs through `loopback_line` (the real server, signature checks, tools, session, call
record) or, for the multi-process capacity rows, through `python -m agent serve --workers N` itself
(`served_line`); the baseline through `agent.bench_bare`. Our server writes each turn's breakdown
into the call record, so the bench reads it from the database, whichever process served the call.

The callers run in a process of their own (`agent.bench_callers`): in the server's loop they would
share its one core and bill it for their own JSON and base64, which at 10 calls doubled the measured
latency. CPU is the server's: this process's CPU time minus the fake services' threads (the fake
OpenAI and Twilio REST servers) when it serves in process, else the `serve` process tree's.
"""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import wave
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import numpy as np
import openai
import psutil
from pipecat.observers.user_bot_latency_observer import (
    LatencyBreakdown,
    LatencyOwnerKind,
    MeasuredFrom,
)

from agent.bench_bare import GREETING, bare_line
from agent.bench_callers import AUDIO, CALLERS_NICE, CallerRecord, CallerSpec, callers_process, record_of
from agent.calls import CallStore
from agent.database import make_engine
from agent.llm import AssistantTurn, PlannedTurn, ToolCall
from agent.loopback.calcom_api import FakeCalcom, FakeEventType
from agent.loopback.line import Dialer, loopback_line
from agent.loopback.openai_api import Delays, FakeOpenAI
from agent.loopback.serving import ServedApp, free_port
from agent.loopback.twilio_rest import FakeTwilio
from agent.phone import TurnSettings
from booking.clock import SystemClock

REPO_ROOT = Path(__file__).resolve().parent.parent
PLAIN_WAVS = ("hello.wav", "book_cleaning.wav")
PLAIN_TRANSCRIPTS = ("Hello?", "Hi, I'd like to book a cleaning next Tuesday morning.")
# A gap between two agent audio messages longer than this is the caller's turn, not an underrun.
UTTERANCE_BOUNDARY_SECS = 0.5
FAKE_THREADS = ("served-app",)
# One business for every bench call: a short greeting (the same the bare pipeline says) keeps calls
# short; the event type id is the fake Cal.com's, for the tool turn.
BUSINESS_YAML = f"""\
businesses:
  - id: bench-dental
    name: Bench Dental
    phone_numbers: ["+15550100100"]
    time_zone: America/New_York
    greeting: "{GREETING}"
    transfer_number: "+15550100199"
    services:
      - key: cleaning
        name: teeth cleaning
        synonyms: [cleaning, checkup]
        duration_minutes: 30
        event_type_id: 7
    hours:
      monday: ["08:00-17:00"]
      tuesday: ["08:00-17:00"]
      wednesday: ["08:00-17:00"]
      thursday: ["08:00-17:00"]
      friday: ["08:00-17:00"]
"""

# "ours" in this process; "ours_workers": `serve --workers N` in processes of its own.
CallPath = Literal["ours", "bare", "ours_workers"]


@dataclass
class TurnSample:
    """One answered caller turn."""

    latency_ms: float
    turn_wait_ms: float | None  # VAD silence + Smart-Turn, from the server's breakdown
    overhead_ms: float | None  # latency - service delays - turn wait, split into the three below
    vad_lag_ms: float | None  # caller's speech end -> where the VAD placed it (latency - server total)
    # Service time on the critical path beyond the fakes' fixed delays (clients, HTTP); negative
    # when a service ran while the turn was still being decided (an early transcript).
    service_excess_ms: float | None
    pipeline_ms: float | None  # Pipecat's own frame passing, as the breakdown names it


@dataclass
class CallRun:
    """N concurrent calls on one path: per-turn samples, audio gaps, CPU and memory."""

    path: CallPath
    calls: int
    processes: int = 1
    turns: list[TurnSample] = field(default_factory=list)
    max_gap_ms: float = 0.0
    gaps_over_40ms: int = 0
    # How late the fake callers sent their 20 ms frames (p99 over all frames): callers that fall
    # behind also hear the agent late, which counts against the server in this run's latencies.
    caller_late_p99_ms: float = 0.0
    failed_calls: int = 0
    stt_uploads: int = 0  # transcription requests the fake served, early ones talked past included
    errors: list[str] = field(default_factory=list)  # distinct reasons calls failed
    cpu_core_fraction: float = 0.0  # CPU seconds of the server (fakes excluded) per wall second
    # The whole machine meanwhile, in cores: left idle, and taken by the hypervisor (a VM's steal).
    idle_cores: float = 0.0
    steal_cores: float = 0.0
    rss_mib_start: float = 0.0
    rss_mib_peak: float = 0.0
    wall_secs: float = 0.0
    # Set when this is several runs of the same N pooled (`pooled`): each run's overhead p95.
    overhead_p95_each_ms: list[float | None] = field(default_factory=list)
    # Runs of this N set aside because the hypervisor took too much of the machine (`bench`'s
    # STEAL_LIMIT_CORES), each as its steal and overhead p95: reported, not judged.
    disturbed: list[dict[str, float | None]] = field(default_factory=list)


def turn_wait_ms(breakdown: LatencyBreakdown) -> float:
    """Milliseconds turn detection held the turn: the setting-owned parts (VAD stop, Smart-Turn wait)."""
    return 1000 * sum(
        c.duration_secs for c in breakdown.contributions if c.owner_kind == LatencyOwnerKind.SETTING
    )


def delays_ms(delays: Delays) -> float:
    return 1000 * (delays.stt + delays.llm_first_token + delays.tts_first_byte)


def overhead_ms(latency_ms: float, delays: Delays, wait_ms: float) -> float:
    """The runtime's own share of a turn: what the caller felt minus the services and the turn wait."""
    return latency_ms - delays_ms(delays) - wait_ms


def sample(latency_secs: float, breakdown: LatencyBreakdown | None, delays: Delays) -> TurnSample:
    """One turn's numbers; without a server breakdown only the caller's latency is known."""
    latency = 1000 * latency_secs
    if breakdown is None:
        return TurnSample(round(latency, 1), None, None, None, None, None)

    def owned(kind: LatencyOwnerKind) -> float:
        return 1000 * sum(c.duration_secs for c in breakdown.contributions if c.owner_kind == kind)

    wait = turn_wait_ms(breakdown)
    return TurnSample(
        latency_ms=round(latency, 1),
        turn_wait_ms=round(wait, 1),
        overhead_ms=round(overhead_ms(latency, delays, wait), 1),
        vad_lag_ms=round(latency - 1000 * breakdown.total_secs, 1),
        service_excess_ms=round(owned(LatencyOwnerKind.SERVICE) - delays_ms(delays), 1),
        pipeline_ms=round(owned(LatencyOwnerKind.PIPELINE) + owned(LatencyOwnerKind.BOT), 1),
    )


def audio_gaps_ms(media: list[tuple[float, int]], sample_rate: int = 8000) -> list[float]:
    """Underruns the caller would hear: arrivals after the audio received so far had finished playing.

    `media` is (arrival, μ-law bytes) per message. Playback is simulated like Twilio's buffer (each
    message plays after the previous one); a pause
    longer than `UTTERANCE_BOUNDARY_SECS` is the end of an utterance, not a gap.
    """
    gaps: list[float] = []
    playing_until: float | None = None
    for at, size in media:
        if playing_until is not None and at > playing_until:
            gap = at - playing_until
            if gap < UTTERANCE_BOUNDARY_SECS:
                gaps.append(1000 * gap)
        start = at if playing_until is None else max(playing_until, at)
        playing_until = start + size / sample_rate
    return gaps


def match_breakdowns(
    record: CallerRecord, breakdowns: list[LatencyBreakdown], clock_offset: float
) -> list[LatencyBreakdown | None]:
    """For each answered caller turn, the server breakdown that started nearest its speech end.

    `clock_offset` converts the caller's `time.monotonic()` to the observer's `time.time()`.
    """
    turns = [b for b in breakdowns if b.measured_from == MeasuredFrom.USER_SILENCE and b.user_turn_start_time]
    matched: list[LatencyBreakdown | None] = []
    for speech_ended_at, _ in record.turns:
        ended = speech_ended_at + clock_offset
        best = min(turns, key=lambda b: abs((b.user_turn_start_time or 0) - ended), default=None)
        close = best is not None and abs((best.user_turn_start_time or 0) - ended) < 1.0
        matched.append(best if close else None)
    return matched


async def recorded_breakdowns(store: CallStore, calls: int) -> dict[str, list[LatencyBreakdown]]:
    """Each of the last `calls` calls' turn breakdowns, by CallSid, from the server's call records."""
    found: dict[str, list[LatencyBreakdown]] = {}
    for summary in await store.recent_calls(limit=calls):
        record = await store.get_call(summary.id)
        found[record.call_sid] = [
            LatencyBreakdown.model_validate(event.data["breakdown"])
            for event in record.events
            if event.kind == "turn_latency" and "breakdown" in event.data
        ]
    return found


@dataclass(frozen=True)
class ServerMeter:
    """The server's CPU seconds so far and its resident memory, wherever it runs."""

    cpu_secs: Callable[[], float]
    rss_bytes: Callable[[], int]


def this_process() -> ServerMeter:
    """This process, leaving out the fake services' threads."""
    process = psutil.Process()
    return ServerMeter(lambda: _server_cpu_secs(process), lambda: int(process.memory_info().rss))


def process_tree(pid: int) -> ServerMeter:
    """A process and all its children (the workers of `serve --workers`)."""
    root = psutil.Process(pid)

    def members() -> list[psutil.Process]:
        return [root, *root.children(recursive=True)]

    def cpu() -> float:
        return float(sum(sum(p.cpu_times()[:2]) for p in members()))

    def rss() -> int:
        return int(sum(p.memory_info().rss for p in members()))

    return ServerMeter(cpu, rss)


def _server_cpu_secs(process: psutil.Process) -> float:
    """CPU seconds of this process, leaving out the fake services' threads."""
    fakes = {t.native_id for t in threading.enumerate() if t.name in FAKE_THREADS}
    return float(sum(t.user_time + t.system_time for t in process.threads() if t.id not in fakes))


def _fakes_yield_cpu() -> None:
    """The fake services' threads (OpenAI, Twilio REST) at the callers' priority.

    They stand for OpenAI's and Twilio's machines, as the callers stand for Twilio's media servers
    (`callers_process`); a fake that waits for a core answers late, which counts against us.
    Linux gives each thread a nice value of its own; elsewhere they keep the process's.
    """
    if sys.platform != "linux":
        return
    for thread in threading.enumerate():
        if thread.name in FAKE_THREADS and thread.native_id is not None:
            os.setpriority(os.PRIO_PROCESS, thread.native_id, CALLERS_NICE)


async def _run_calls(
    specs: list[CallerSpec], run: CallRun, wavs: tuple[str, ...], meter: ServerMeter
) -> list[CallerRecord]:
    """The calls of `specs` from a separate callers' process; CPU, memory and audio gaps into `run`."""
    rss_peak = rss_start = meter.rss_bytes()

    async def sample_memory() -> None:
        nonlocal rss_peak
        while True:
            rss_peak = max(rss_peak, meter.rss_bytes())
            await asyncio.sleep(0.25)

    _fakes_yield_cpu()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        # Start the process (imports) before the clock starts.
        await asyncio.get_running_loop().run_in_executor(pool, callers_process, [], wavs)
        sampler = asyncio.create_task(sample_memory())
        cpu_start, wall_start, machine_start = meter.cpu_secs(), time.monotonic(), psutil.cpu_times()
        records = await asyncio.get_running_loop().run_in_executor(pool, callers_process, specs, wavs)
        run.wall_secs = time.monotonic() - wall_start
        run.cpu_core_fraction = (meter.cpu_secs() - cpu_start) / run.wall_secs
        machine = psutil.cpu_times()
        run.idle_cores = (machine.idle - machine_start.idle) / run.wall_secs
        stolen = getattr(machine, "steal", 0.0) - getattr(machine_start, "steal", 0.0)  # Linux only
        run.steal_cores = stolen / run.wall_secs
        sampler.cancel()
    run.rss_mib_start, run.rss_mib_peak = rss_start / 2**20, rss_peak / 2**20
    run.failed_calls = sum(r.error is not None for r in records)
    run.errors = sorted({r.error for r in records if r.error is not None})
    gaps = [gap for record in records for gap in audio_gaps_ms(record.media)]
    run.max_gap_ms = round(max(gaps, default=0.0), 1)
    run.gaps_over_40ms = sum(g > 40 for g in gaps)
    lateness = [late for record in records for late in record.send_lateness]
    run.caller_late_p99_ms = round(1000 * (percentile(lateness, 99) or 0.0), 1)
    return records


def add_turns(
    run: CallRun,
    records: list[CallerRecord],
    breakdowns: dict[str, list[LatencyBreakdown]],
    delays: Delays,
) -> None:
    """Each answered turn the callers measured, beside the server's breakdown of it."""
    clock_offset = time.time() - time.monotonic()
    for record in records:
        matched = match_breakdowns(record, breakdowns.get(record.call_sid, []), clock_offset)
        run.turns += [
            sample(latency, breakdown, delays)
            for (_, latency), breakdown in zip(record.turns, matched, strict=True)
        ]


def _pace_voice(fake: FakeOpenAI, secs_per_char: float | None) -> None:
    """The fake voice at `secs_per_char` a character if given, else at the fake's own (a person's)."""
    if secs_per_char is not None:
        fake.speech_seconds_per_char = secs_per_char


def _sid(index: int) -> str:
    return f"CA{index:032x}"


async def run_ours(
    calls: int,
    delays: Delays,
    turn: TurnSettings,
    stagger_secs: float,
    wavs: int = len(PLAIN_WAVS),
    voice_secs_per_char: float | None = None,
) -> CallRun:
    """`calls` calls through our phone path, started `stagger_secs` apart, each saying `wavs` WAVs.

    The fake voice speaks `voice_secs_per_char` a character if given, else at the fake's own pace
    (a person's, so a call's agent audio and the work of sending it are a real call's).
    """
    run = CallRun("ours", calls)
    transcripts = list(PLAIN_TRANSCRIPTS[:wavs]) * calls
    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        workdir = Path(name)
        (workdir / "business.yaml").write_text(BUSINESS_YAML)
        async with loopback_line(workdir, [], transcripts, turn, delays, workdir / "business.yaml") as line:
            _pace_voice(line.openai, voice_secs_per_char)
            specs = await _dial(line, calls, stagger_secs)
            records = await _run_calls(specs, run, PLAIN_WAVS[:wavs], this_process())
            await line.calls_finished()
            run.stt_uploads = len(line.openai.transcriptions)
            add_turns(run, records, await recorded_breakdowns(line.runtime.calls, calls), delays)
    return run


async def _dial(dialer: Dialer, calls: int, stagger_secs: float) -> list[CallerSpec]:
    """Ring the server `calls` times; each caller starts streaming `stagger_secs` after the last."""
    specs = []
    for index in range(calls):
        caller = dialer.caller(await dialer.ring(_sid(index)), _sid(index))
        specs.append(
            CallerSpec(caller.url, caller.headers, caller.call_sid, caller.account_sid, index * stagger_secs)
        )
    return specs


@dataclass
class ServedLine(Dialer):
    """`python -m agent serve` in processes of its own, with the fakes in this one."""

    pid: int
    store: CallStore
    openai: FakeOpenAI


@asynccontextmanager
async def served_line(
    workdir: Path, transcripts: list[str], delays: Delays, workers: int
) -> AsyncIterator[ServedLine]:
    """`serve --workers N` on a free port, configured by its environment as a deployment would be.

    The environment is only what is set here (no provider keys of the machine leak in).
    """
    twilio = FakeTwilio()
    port = free_port()
    database = f"sqlite+aiosqlite:///{workdir / 'phone.db'}"
    async with (
        FakeOpenAI([], transcripts, delays=delays) as openai_fake,
        ServedApp(twilio.app) as twilio_server,
    ):
        environment = {
            "DATABASE_URL": database,
            "BUSINESSES_FILE": str(workdir / "business.yaml"),
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": openai_fake.base_url,
            "TWILIO_ACCOUNT_SID": twilio.account_sid,
            "TWILIO_AUTH_TOKEN": twilio.auth_token,
            "TWILIO_API_BASE_URL": twilio_server.url(),
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "LOG_LEVEL": "WARNING",
        }
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            env=environment,
            stdout=asyncio.subprocess.DEVNULL,
        )
        engine = make_engine(database)
        try:
            await _until_healthy(port, server)
            yield ServedLine(
                port=port, twilio=twilio, pid=server.pid, store=CallStore(engine), openai=openai_fake
            )
        finally:
            if server.returncode is None:
                server.send_signal(signal.SIGTERM)
                await asyncio.wait_for(server.wait(), timeout=60)
            await engine.dispose()


async def _until_healthy(port: int, server: asyncio.subprocess.Process, limit_secs: float = 60) -> None:
    deadline = time.monotonic() + limit_secs
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if server.returncode is not None:
                raise RuntimeError(f"serve exited with {server.returncode} before answering")
            try:
                if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"serve did not answer within {limit_secs} s")


async def _calls_ended(store: CallStore, calls: int, limit_secs: float = 30) -> None:
    """Until the server has closed the record of each of the last `calls` calls."""
    deadline = time.monotonic() + limit_secs
    while time.monotonic() < deadline:
        if all(r.ended_at is not None for r in await store.recent_calls(limit=calls)):
            return
        await asyncio.sleep(0.2)


async def run_workers(
    calls: int,
    delays: Delays,
    stagger_secs: float,
    workers: int,
    wavs: int = len(PLAIN_WAVS),
    voice_secs_per_char: float | None = None,
) -> CallRun:
    """`calls` calls to `serve --workers N`, each saying `wavs` WAVs; the workers' CPU and memory.

    The fake voice's pace is as `run_ours` takes it.
    """
    run = CallRun("ours_workers", calls, processes=workers)
    transcripts = list(PLAIN_TRANSCRIPTS[:wavs]) * calls
    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        workdir = Path(name)
        (workdir / "business.yaml").write_text(BUSINESS_YAML)
        async with served_line(workdir, transcripts, delays, workers) as line:
            _pace_voice(line.openai, voice_secs_per_char)
            specs = await _dial(line, calls, stagger_secs)
            records = await _run_calls(specs, run, PLAIN_WAVS[:wavs], process_tree(line.pid))
            await _calls_ended(line.store, calls)
            run.stt_uploads = len(line.openai.transcriptions)
            add_turns(run, records, await recorded_breakdowns(line.store, calls), delays)
    return run


async def run_bare(
    calls: int,
    delays: Delays,
    turn: TurnSettings,
    stagger_secs: float,
    wavs: int = len(PLAIN_WAVS),
    voice_secs_per_char: float | None = None,
) -> CallRun:
    """The same calls through the bare Pipecat baseline."""
    run = CallRun("bare", calls)
    transcripts = list(PLAIN_TRANSCRIPTS[:wavs]) * calls
    async with bare_line([], transcripts, turn, delays) as line:
        _pace_voice(line.openai, voice_secs_per_char)
        specs = []
        for index in range(calls):
            caller = line.caller(_sid(index))
            specs.append(
                CallerSpec(
                    caller.url, caller.headers, caller.call_sid, caller.account_sid, index * stagger_secs
                )
            )
        records = await _run_calls(specs, run, PLAIN_WAVS[:wavs], this_process())
        run.stt_uploads = len(line.openai.transcriptions)
        add_turns(run, records, line.breakdowns, delays)
    return run


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation; None for no values."""
    return float(np.percentile(values, q)) if values else None


WHEN = "next Tuesday afternoon"


@dataclass
class ToolTurnRun:
    """A plain turn and then "what do you have next Tuesday afternoon?" answered from Cal.com."""

    plain: TurnSample | None
    tool: TurnSample | None
    slots_requests_on_critical_path: int
    slots_requests_total: int


def _last_spoken(messages: Sequence[dict[str, Any]]) -> AssistantTurn:
    tool = next(m for m in reversed(messages) if m.get("role") == "tool")
    return AssistantTurn(text=json.loads(tool["content"])["spoken"])


async def run_tool_turn(
    delays: Delays, turn: TurnSettings, voice_secs_per_char: float | None = None
) -> ToolTurnRun:
    """One call on the Cal.com backend (a fake); counts `/slots` requests between speech end and answer."""
    clock = SystemClock()
    calcom = FakeCalcom(clock, event_types=[FakeEventType(7, "cleaning", "Cleaning", 30)])
    planned: list[PlannedTurn] = [
        AssistantTurn(text="Sure, how can I help?"),
        AssistantTurn(
            tool_calls=(
                ToolCall(
                    "call_1", "check_availability", {"when": "next Tuesday afternoon", "service": "cleaning"}
                ),
            )
        ),
        _last_spoken,
    ]
    transcripts = ["Hello?", "What do you have next Tuesday afternoon?"]

    def slots() -> int:
        return sum(r.method == "GET" and r.url.path == "/v2/slots" for r in calcom.requests)

    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        workdir = Path(name)
        (workdir / "business.yaml").write_text(BUSINESS_YAML)
        async with loopback_line(
            workdir, planned, transcripts, turn, delays, workdir / "business.yaml", clock, calcom
        ) as line:
            _pace_voice(line.openai, voice_secs_per_char)
            clock_offset = time.time() - time.monotonic()
            call_sid = "CA" + "7" * 32
            async with line.caller(await line.ring(call_sid), call_sid) as caller:
                await caller.wait_until_silent(timeout_seconds=30)
                await caller.say(AUDIO / "hello.wav")
                await caller.wait_until_silent(timeout_seconds=30)
                await caller.say(AUDIO / "tuesday_afternoon.wav")
                before = slots()
                await caller.wait_for_agent_audio(timeout_seconds=30)
                critical = slots() - before
                # Measured: hang up rather than hear the times read out (~8 s of the fake's tone).
            await line.calls_finished()
            breakdowns = await recorded_breakdowns(line.runtime.calls, 1)
            record = record_of(caller)
            matched = match_breakdowns(record, breakdowns.get(call_sid, []), clock_offset)
    samples = [sample(latency, b, delays) for (_, latency), b in zip(record.turns, matched, strict=True)]
    return ToolTurnRun(
        plain=samples[0] if samples else None,
        tool=samples[1] if len(samples) > 1 else None,
        slots_requests_on_critical_path=critical,
        slots_requests_total=slots(),
    )


async def service_floor_ms(delays: Delays, rounds: int) -> dict[str, float]:
    """What the OpenAI SDK and the fake cost beyond the configured delays, with no pipeline around them.

    The part of a turn's `service_excess_ms` that any runtime using these clients pays: one
    transcription of a 3 s WAV, one streamed chat completion to its first chunk, one speech stream
    to its first byte, each the median of `rounds`, minus its delay.
    """
    wav = io.BytesIO()
    with wave.open(wav, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"\0\0" * 24_000)
    timings: dict[str, list[float]] = {"stt": [], "llm_first_token": [], "tts_first_byte": []}
    async with (
        FakeOpenAI(delays=delays) as fake,
        openai.AsyncOpenAI(
            api_key="sk-test", base_url=fake.base_url, http_client=openai.DefaultAsyncHttpxClient()
        ) as client,
    ):
        for _ in range(rounds):
            started = time.perf_counter()
            await client.audio.transcriptions.create(
                model="gpt-4o-transcribe", file=("a.wav", wav.getvalue())
            )
            timings["stt"].append(time.perf_counter() - started)
            started = time.perf_counter()
            stream = await client.chat.completions.create(
                model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hello?"}], stream=True
            )
            async for _chunk in stream:
                timings["llm_first_token"].append(time.perf_counter() - started)
                break
            await stream.close()
            started = time.perf_counter()
            async with client.audio.speech.with_streaming_response.create(
                model="gpt-4o-mini-tts", voice="alloy", input="Okay.", response_format="pcm"
            ) as response:
                async for _bytes in response.iter_bytes(1024):
                    timings["tts_first_byte"].append(time.perf_counter() - started)
                    break
    configured = asdict(delays)
    return {
        name: round(1000 * (statistics.median(values) - configured[name]), 1)
        for name, values in timings.items()
    }
