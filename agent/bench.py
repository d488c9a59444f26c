"""`python -m agent bench`: measured numbers, written to `bench/results.json` and `bench/latency.png`.

Benchmarks never fail the test suite; they report. Four sections, each against its target:

1. `turn_latency`: whole calls through the real phone path (`agent.bench_calls`), and the same
   calls through a bare Pipecat pipeline (`agent.bench_bare`), interleaved in one invocation;
   caller-felt latency, the runtime's overhead, and ours / bare.
2. `tool_turn`: "what do you have next Tuesday afternoon" on the Cal.com backend; Cal.com requests
   on the critical path and the latency beside a plain turn.
3. `capacity`: N concurrent calls on both paths in one process, and on `serve --workers` with one
   worker per core; overhead, outgoing-audio gaps, CPU and memory per call, and the largest N with
   overhead p95 <= 100 ms and no gap over 40 ms. Each N runs in a fresh process (`_fresh_run`).
4. `dates`: microseconds per phrase of date resolution.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from agent.bench_calls import (
    CallPath,
    CallRun,
    TurnSample,
    percentile,
    run_bare,
    run_ours,
    run_tool_turn,
    run_workers,
    service_floor_ms,
)
from agent.logs import setup_logging
from agent.loopback.openai_api import Delays
from agent.phone import TurnSettings
from agent.serve import settle_heap
from agent.simulate_audio import AGENT_SECONDS_PER_CHAR
from booking.dates import resolve

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "dates" / "dev.jsonl"
OWN_PHRASES = REPO_ROOT / "fixtures" / "dates" / "phrases.txt"
RESULTS = REPO_ROOT / "bench" / "results.json"
CHART_NAME = "latency.png"
TURN = TurnSettings(idle_secs=30)
# Capacity, the rule: overhead p95 at most this, and no outgoing-audio gap beyond MAX_GAP_MS.
CAPACITY_OVERHEAD_P95_MS = 100.0
MAX_GAP_MS = 40.0
# A stricter rule reported beside it: load adds at most this to the turn latency p95 (vs one call's p50).
CAPACITY_ADDED_P95_MS = 100.0
# Concurrent calls start spread over this many seconds (a call lasts ~12 s, so all overlap).
SPREAD_SECS = 4.0
# Sequential calls for the latency section start this far apart (a call lasts under 12 s).
SEQUENTIAL_SECS = 13.0
ONE_PROCESS_CALLS = (1, 5, 10, 20, 40)
WORKERS_CALLS = (10, 20, 30, 40, 50)
# Runs pooled into each `serve --workers` row, the rows that answer the capacity target (`pooled`).
WORKERS_REPEATS = 3
# A capacity run during which the hypervisor took more than this (cores, averaged over the run) did
# not have the machine's two cores, and is run again, at most DISTURBED_RETRIES times (`_capacity_run`).
STEAL_LIMIT_CORES = 0.15
DISTURBED_RETRIES = 2
PINNED_NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))


@dataclass(frozen=True)
class DateBench:
    corpus: str
    phrases: int
    rounds: int
    p50_us: float
    p99_us: float
    max_us: float


@dataclass(frozen=True)
class Machine:
    """What ran the bench: capacity scales with it, and machines of one name differ day to day."""

    cpu: str
    cores: int
    python: str
    # `_reference_loop`, median and best of 11 runs: this machine's pure-Python speed today (the
    # same kind of machine has measured from 27 to 50 ms a few seconds apart).
    reference_loop_ms: float
    reference_loop_best_ms: float


def _reference_loop() -> int:
    """A fixed pure-Python workload (dict stores, int-to-str), the kind of work the runtime's loop does."""
    table: dict[int, str] = {}
    for i in range(200_000):
        table[i % 1000] = str(i)
    return len(table)


def machine() -> Machine:
    """This machine's CPU model, cores and Python, and how long `_reference_loop` takes on it."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [
        line.split(":", 1)[1].strip()
        for line in (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
        if line.startswith("model name")
    ]
    timings = []
    for _ in range(11):
        started = time.perf_counter()
        _reference_loop()
        timings.append(time.perf_counter() - started)
    return Machine(
        cpu=names[0] if names else platform.processor() or platform.machine(),
        cores=os.cpu_count() or 1,
        python=platform.python_version(),
        reference_loop_ms=round(1000 * statistics.median(timings), 1),
        reference_loop_best_ms=round(1000 * min(timings), 1),
    )


def _corpus() -> tuple[str, list[tuple[str, datetime]]]:
    if SHARED_CORPUS.exists():
        items = [json.loads(line) for line in SHARED_CORPUS.read_text().splitlines() if line.strip()]
        return str(SHARED_CORPUS), [(i["text"], datetime.fromisoformat(i["now"])) for i in items]
    lines = [line for line in OWN_PHRASES.read_text().splitlines() if line and not line.startswith("#")]
    return str(OWN_PHRASES), [(line, PINNED_NOW) for line in lines]


def bench_dates(rounds: int = 20) -> DateBench:
    """Resolve every phrase `rounds` times (after one warm-up pass); per-call wall time in µs."""
    name, phrases = _corpus()
    for text, now in phrases:
        resolve(text, now)
    samples: list[float] = []
    for _ in range(rounds):
        for text, now in phrases:
            started = time.perf_counter_ns()
            resolve(text, now)
            samples.append((time.perf_counter_ns() - started) / 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return DateBench(
        name, len(phrases), rounds, round(statistics.median(samples), 1), round(p99, 1), round(samples[-1], 1)
    )


def write_results(section: str, values: dict[str, Any], path: Path = RESULTS) -> None:
    """Merge one section into the results file, keeping the others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.exists() else {}
    current[section] = values
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


def _values(samples: list[TurnSample], name: str) -> list[float]:
    return [v for s in samples if (v := getattr(s, name)) is not None]


def summarize(samples: list[TurnSample]) -> dict[str, Any]:
    """p50/p95 of the caller latency and overhead; p50 of each part of the overhead (ms)."""

    def at(name: str, q: float) -> float | None:
        value = percentile(_values(samples, name), q)
        return None if value is None else round(value, 1)

    return {
        "turns": len(samples),
        "latency_p50_ms": at("latency_ms", 50),
        "latency_p95_ms": at("latency_ms", 95),
        "overhead_p50_ms": at("overhead_ms", 50),
        "overhead_p95_ms": at("overhead_ms", 95),
        "turn_wait_p50_ms": at("turn_wait_ms", 50),
        "vad_lag_p50_ms": at("vad_lag_ms", 50),
        "service_excess_p50_ms": at("service_excess_ms", 50),
        "pipeline_p50_ms": at("pipeline_ms", 50),
    }


def ratio(ours: float | None, bare: float | None) -> float | None:
    """ours / bare, or None when either is missing or bare is not positive."""
    return None if ours is None or bare is None or bare <= 0 else round(ours / bare, 3)


def capacity_row(run: CallRun, unloaded_p50_ms: float | None) -> dict[str, Any]:
    """One N on one path: summary, what load adds, gaps, CPU (% of a core per call), memory (MiB per call).

    `ok` is the issue's rule: overhead p95 <= 100 ms, no gap over 40 ms, no call failed. Bare
    Pipecat transcribes only after the silence wait, so its overhead is ~100 ms with one call and
    the rule says little about load there; `ok_load` judges what load adds to the caller's wait
    (latency p95 at N minus the same path's one-call latency p50, which also counts the spread
    between p50 and p95, so it is the stricter of the two for our path).
    """
    summary = summarize(run.turns)
    p95 = summary["latency_p95_ms"]
    added = None if p95 is None or unloaded_p50_ms is None else round(p95 - unloaded_p50_ms, 1)
    overhead_p95 = summary["overhead_p95_ms"]
    clean = run.failed_calls == 0 and run.max_gap_ms <= MAX_GAP_MS
    return {
        "path": run.path,
        "calls": run.calls,
        "processes": run.processes,
        **summary,
        "added_by_load_p95_ms": added,
        "max_gap_ms": run.max_gap_ms,
        "gaps_over_40ms": run.gaps_over_40ms,
        "caller_late_p99_ms": run.caller_late_p99_ms,
        "failed_calls": run.failed_calls,
        "errors": run.errors,
        "cpu_cores": round(run.cpu_core_fraction, 3),
        "machine_idle_cores": round(run.idle_cores, 2),
        "steal_cores": round(run.steal_cores, 2),
        "cpu_pct_core_per_call": round(100 * run.cpu_core_fraction / run.calls, 1),
        "rss_mib_peak": round(run.rss_mib_peak, 1),
        "rss_mib_per_call": round((run.rss_mib_peak - run.rss_mib_start) / run.calls, 1),
        "overhead_p95_each_run_ms": run.overhead_p95_each_ms,
        "disturbed_runs": run.disturbed,
        "ok": clean and overhead_p95 is not None and overhead_p95 <= CAPACITY_OVERHEAD_P95_MS,
        "ok_load": clean and added is not None and added <= CAPACITY_ADDED_P95_MS,
    }


def pooled(runs: list[CallRun]) -> CallRun:
    """Repeated runs of one N as one sample: every turn, the worst gap and lateness, mean CPU.

    One run's overhead p95 is its 4th-worst turn of 80 at 40 calls, so at the edge a single run
    passes or fails by luck (52-142 ms over five runs of the same code); the p95 of all their turns
    estimates the same quantity from more of them. Gaps, lateness and failures are not averaged
    away: the worst run's gap and lateness count, and every failed call.
    """
    first = runs[0]
    total_wall = sum(r.wall_secs for r in runs)
    return CallRun(
        first.path,
        first.calls,
        first.processes,
        turns=[t for r in runs for t in r.turns],
        max_gap_ms=max(r.max_gap_ms for r in runs),
        gaps_over_40ms=sum(r.gaps_over_40ms for r in runs),
        caller_late_p99_ms=max(r.caller_late_p99_ms for r in runs),
        failed_calls=sum(r.failed_calls for r in runs),
        stt_uploads=sum(r.stt_uploads for r in runs),
        errors=sorted({e for r in runs for e in r.errors}),
        cpu_core_fraction=sum(r.cpu_core_fraction * r.wall_secs for r in runs) / total_wall,
        idle_cores=sum(r.idle_cores * r.wall_secs for r in runs) / total_wall,
        steal_cores=sum(r.steal_cores * r.wall_secs for r in runs) / total_wall,
        rss_mib_start=statistics.fmean(r.rss_mib_start for r in runs),
        rss_mib_peak=statistics.fmean(r.rss_mib_peak for r in runs),
        wall_secs=total_wall,
        overhead_p95_each_ms=[summarize(r.turns)["overhead_p95_ms"] for r in runs],
        disturbed=[d for r in runs for d in r.disturbed],
    )


def largest_ok(rows: list[dict[str, Any]], path: str, rule: str = "ok") -> int:
    """The largest N on `path` that passed `rule`, with every smaller N passing too (0 if none)."""
    best = 0
    for row in sorted((r for r in rows if r["path"] == path), key=lambda r: r["calls"]):
        if not row[rule]:
            break
        best = row["calls"]
    return best


def _voice_pace(quick: bool) -> float | None:
    """Seconds of fake voice a character: simulate's faster pace for `--quick`, else the fake's own.

    A turn's latency ends at the voice's first audio, so the pace changes how long a quick run's
    calls last, not what it measures. The full bench keeps a person's pace: how long the agent
    talks is part of a call's work.
    """
    return AGENT_SECONDS_PER_CHAR if quick else None


async def _turn_latency(
    quick: bool, delays: Delays, voice: float | None
) -> tuple[dict[str, Any], list[CallRun]]:
    """Sequential calls, ours and bare interleaved round by round so both see the same machine."""
    runs: list[CallRun] = []
    calls, wavs = (1, 1) if quick else (2, 2)
    for _ in range(1 if quick else 3):
        runs.append(await run_ours(calls, delays, TURN, SEQUENTIAL_SECS, wavs, voice))
        runs.append(await run_bare(calls, delays, TURN, SEQUENTIAL_SECS, wavs, voice))
    ours = summarize([t for r in runs if r.path == "ours" for t in r.turns])
    bare = summarize([t for r in runs if r.path == "bare" for t in r.turns])
    for path, summary in (("ours", ours), ("bare", bare)):
        uploads = sum(r.stt_uploads for r in runs if r.path == path)
        summary["stt_uploads_per_turn"] = round(uploads / summary["turns"], 2) if summary["turns"] else None
    section = {
        "delays_ms": {k: round(1000 * v) for k, v in asdict(delays).items()},
        "service_floor_ms": await service_floor_ms(delays, 3 if quick else 20),
        "vad_stop_ms": round(1000 * TURN.vad_stop_secs),
        "ours": ours,
        "bare": bare,
        "ratio_latency_p50": ratio(ours["latency_p50_ms"], bare["latency_p50_ms"]),
        "ratio_latency_p95": ratio(ours["latency_p95_ms"], bare["latency_p95_ms"]),
        "targets": {"overhead_p50_ms": 15, "overhead_p95_ms": 40, "ratio": 1.05},
        "samples": {
            path: [asdict(t) for r in runs if r.path == path for t in r.turns] for path in ("ours", "bare")
        },
    }
    return section, runs


def _run_row(path: CallPath, calls: int, delays: Delays, stagger_secs: float, workers: int) -> CallRun:
    """One capacity row, run to the end in the calling process (logging as `bench` sets it up)."""
    setup_logging("WARNING")
    settle_heap()  # the fakes share this process: a full collection of start-up objects would stall them
    if path == "ours_workers":
        return asyncio.run(run_workers(calls, delays, stagger_secs, workers))
    runner = run_ours if path == "ours" else run_bare
    return asyncio.run(runner(calls, delays, TURN, stagger_secs))


async def _fresh_run(
    path: CallPath, calls: int, delays: Delays, stagger_secs: float, workers: int
) -> CallRun:
    """One capacity row in a process of its own.

    Run one after another in the bench process, each row inherited the heap, threads and memory
    of the calls before it, and its fakes serve the row's calls: 40 calls on `serve --workers 2`
    measured 136 ms overhead p95 after the 40-call one-process rows, ~60 ms alone.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, _run_row, path, calls, delays, stagger_secs, workers
        )


async def _capacity_run(
    path: CallPath, calls: int, delays: Delays, stagger_secs: float, workers: int
) -> CallRun:
    """A `_fresh_run` the hypervisor left the machine to, or the last of DISTURBED_RETRIES more tries.

    This VM's neighbours take 0.01-0.4 of a core from one 40-call run to the next (steal, in
    `/proc/stat`), and a run that lost a fifth of a core measures a smaller machine: of thirteen
    40-call runs on two workers, the two that failed the rule lost 0.2 and 0.39 of a core. A run
    over STEAL_LIMIT_CORES is set aside (its steal and overhead are kept in `disturbed`, and
    printed) and the N is run again; the last try counts whatever its steal.
    """
    disturbed: list[dict[str, float | None]] = []
    for _ in range(DISTURBED_RETRIES):
        run = await _fresh_run(path, calls, delays, stagger_secs, workers)
        if run.steal_cores <= STEAL_LIMIT_CORES:
            break
        disturbed.append(
            {
                "steal_cores": round(run.steal_cores, 2),
                "overhead_p95_ms": summarize(run.turns)["overhead_p95_ms"],
            }
        )
    else:
        run = await _fresh_run(path, calls, delays, stagger_secs, workers)
    run.disturbed = disturbed
    return run


async def _capacity(quick_runs: list[CallRun] | None, delays: Delays) -> dict[str, Any]:
    """Capacity rows; a quick run reuses its one-call latency runs instead of running more calls."""
    runs = list(quick_runs or [])
    workers = os.cpu_count() or 1
    if quick_runs is None:
        for calls in ONE_PROCESS_CALLS:
            for path in ("ours", "bare"):
                runs.append(await _capacity_run(path, calls, delays, SPREAD_SECS / calls, workers))
        if workers > 1:
            for calls in WORKERS_CALLS:
                repeats = [
                    await _capacity_run("ours_workers", calls, delays, SPREAD_SECS / calls, workers)
                    for _ in range(WORKERS_REPEATS)
                ]
                runs.append(pooled(repeats))
    unloaded = {r.path: summarize(r.turns)["latency_p50_ms"] for r in runs if r.calls == 1}
    # Our code is the same in one process or several: the workers are judged against one call.
    unloaded["ours_workers"] = unloaded.get("ours")
    rows = [capacity_row(run, unloaded.get(run.path)) for run in runs]
    paths = sorted({row["path"] for row in rows})
    return {
        "rows": rows,
        "workers": workers,
        **{f"largest_ok_{path}": largest_ok(rows, path) for path in paths},
        **{f"largest_ok_load_{path}": largest_ok(rows, path, "ok_load") for path in paths},
        "criteria": {
            "overhead_p95_ms": CAPACITY_OVERHEAD_P95_MS,
            "max_gap_ms": MAX_GAP_MS,
            "load_rule_added_by_load_p95_ms": CAPACITY_ADDED_P95_MS,
        },
    }


async def _phone(quick: bool) -> dict[str, Any]:
    delays, voice = Delays(), _voice_pace(quick)
    latency, runs = await _turn_latency(quick, delays, voice)
    tool = await run_tool_turn(delays, TURN, voice)
    plain_ms = tool.plain.latency_ms if tool.plain else None
    tool_ms = tool.tool.latency_ms if tool.tool else None
    return {
        "turn_latency": latency,
        "tool_turn": {
            **asdict(tool),
            "extra_latency_ms": None if plain_ms is None or tool_ms is None else round(tool_ms - plain_ms, 1),
            "target_slots_requests_on_critical_path": 0,
        },
        "capacity": await _capacity(runs if quick else None, delays),
    }


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Turn latency split into its parts (ours, bare), and overhead p95 and CPU per call against N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency, capacity = results["turn_latency"], results["capacity"]["rows"]
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.5))
    services = sum(latency["delays_ms"].values())
    bottom = [0.0, 0.0]
    names = ["ours", "bare"]
    overheads = [latency[n]["overhead_p50_ms"] or 0.0 for n in names]
    # A negative overhead is service time hidden in the turn wait (the early transcript).
    parts: list[tuple[str, list[float]]] = [
        ("turn detection wait", [latency[n]["turn_wait_p50_ms"] or 0.0 for n in names]),
        ("service delays on the critical path", [services + min(0.0, o) for o in overheads]),
        ("runtime overhead", [max(0.0, o) for o in overheads]),
    ]
    for label, heights in parts:
        left.bar(names, heights, bottom=bottom, label=label)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    left.set_title("turn latency p50 (ms): speech end -> first agent audio")
    left.legend()
    for path_name in ("ours", "bare", "ours_workers"):
        rows = [r for r in capacity if r["path"] == path_name]
        if not rows:
            continue
        calls = [r["calls"] for r in rows]
        middle.plot(calls, [r["overhead_p95_ms"] for r in rows], marker="o", label=path_name)
        right.plot(calls, [r["cpu_pct_core_per_call"] for r in rows], marker="o", label=path_name)
    middle.axhline(CAPACITY_OVERHEAD_P95_MS, color="grey", linestyle="--")
    middle.set_title("overhead p95 (ms) vs concurrent calls")
    right.set_title("CPU per call (% of a core) vs concurrent calls")
    for axis in (middle, right):
        axis.set_xlabel("concurrent calls")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(quick: bool, path: Path = RESULTS) -> dict[str, Any]:
    """Run every section, merge each into the results file, draw the chart beside it."""
    dates = bench_dates(rounds=2 if quick else 20)
    settle_heap()  # as `serve` does before taking calls
    results: dict[str, Any] = {
        "machine": asdict(machine()),
        "dates": asdict(dates),
        **asyncio.run(_phone(quick)),
    }
    results["quick"] = quick
    for section, values in results.items():
        write_results(section, values, path)
    write_chart(results, path.parent / CHART_NAME)
    return results


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, measured, target) for the printed table and the README table alike."""
    latency, tool, capacity, dates, host = (
        results["turn_latency"],
        results["tool_turn"],
        results["capacity"],
        results["dates"],
        results["machine"],
    )
    ours, bare = latency["ours"], latency["bare"]
    best = {r["path"]: r for r in capacity["rows"] if r["calls"] == capacity.get(f"largest_ok_{r['path']}")}
    rows = [
        (
            "machine: CPU, cores; a fixed pure-Python loop, median (best) of 11",
            f"{host['cpu']}, {host['cores']} cores; {host['reference_loop_ms']} "
            f"({host['reference_loop_best_ms']}) ms",
            "—",
        ),
        (
            "turn latency, speech end -> first agent audio (p50 / p95)",
            f"{_ms(ours['latency_p50_ms'])} / {_ms(ours['latency_p95_ms'])}",
            f"services {sum(latency['delays_ms'].values())} ms + turn detection",
        ),
        ("turn-detection wait (VAD 200 ms + Smart-Turn), p50", _ms(ours["turn_wait_p50_ms"]), "—"),
        (
            "overhead = latency - services - turn wait (p50 / p95)",
            f"{_ms(ours['overhead_p50_ms'])} / {_ms(ours['overhead_p95_ms'])}",
            "<= 15 / 40 ms",
        ),
        (
            "  of which VAD lag / services beyond their delays / Pipecat pipeline (p50)",
            f"{_ms(ours['vad_lag_p50_ms'])} / {_ms(ours['service_excess_p50_ms'])} / "
            f"{_ms(ours['pipeline_p50_ms'])}",
            "—",
        ),
        (
            "  STT uploads per caller turn (early transcripts talked past included)",
            f"{ours['stt_uploads_per_turn']} (bare {bare['stt_uploads_per_turn']})",
            "—",
        ),
        (
            "  the same service clients with no pipeline (SDK + fake server)",
            _ms(sum(latency["service_floor_ms"].values())),
            "—",
        ),
        (
            "bare Pipecat: latency p50 / overhead p50",
            f"{_ms(bare['latency_p50_ms'])} / {_ms(bare['overhead_p50_ms'])}",
            "—",
        ),
        (
            "ours / bare, latency p50 (p95)",
            f"{latency['ratio_latency_p50']} ({latency['ratio_latency_p95']})",
            "<= 1.05",
        ),
        (
            "tool turn: Cal.com /slots requests on the critical path",
            str(tool["slots_requests_on_critical_path"]),
            "0",
        ),
        ("tool turn: latency beyond a plain turn", _ms(tool["extra_latency_ms"]), "one LLM round trip"),
    ]
    labels = {
        "ours": "ours, one process",
        "ours_workers": f"ours, serve --workers {capacity.get('workers')}",
        "bare": "bare Pipecat, one process",
    }
    for path, label in labels.items():
        if f"largest_ok_{path}" not in capacity:
            continue
        row = best.get(path)
        rows.append(
            (
                f"capacity ({label}): largest N, overhead p95 <= 100 ms and no gap > 40 ms"
                " / stricter: load adds <= 100 ms to p95",
                f"{capacity[f'largest_ok_{path}']} / {capacity.get(f'largest_ok_load_{path}', '—')}"
                + (
                    ""
                    if row is None
                    else f" ({row['cpu_pct_core_per_call']}% core, {row['rss_mib_per_call']} MiB per call)"
                ),
                ">= 40 on 2 cores" if path == "ours_workers" else "—",
            )
        )
    rows.append(
        (
            "date resolution per phrase (p50 / p99)",
            f"{dates['p50_us']} / {dates['p99_us']} µs",
            "<= 100 / 1000 µs",
        )
    )
    return rows


def markdown_table(results: dict[str, Any]) -> str:
    """The README's benchmark table."""
    lines = ["| measure | measured | target |", "|---|---|---|"]
    lines += [
        f"| {measure.strip()} | {value} | {target} |" for measure, value, target in summary_rows(results)
    ]
    return "\n".join(lines) + "\n"


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "disturbed_runs":  # each set-aside run as its steal, in cores
        return ", ".join(str(run["steal_cores"]) for run in row[column]) or "-"
    return str(row[column])


def print_summary(results: dict[str, Any], console: Console) -> None:
    """The summary table, then every capacity row."""
    table = Table(title="bench" + (" (quick)" if results.get("quick") else ""))
    for column in ("measure", "measured", "target"):
        table.add_column(column)
    for row in summary_rows(results):
        table.add_row(*row)
    console.print(table)
    capacity = Table(title="capacity: N concurrent calls")
    columns = (
        "path",
        "processes",
        "calls",
        "latency_p50_ms",
        "overhead_p50_ms",
        "overhead_p95_ms",
        "overhead_p95_each_run_ms",
        "added_by_load_p95_ms",
        "max_gap_ms",
        "failed_calls",
        "cpu_pct_core_per_call",
        "rss_mib_per_call",
        "machine_idle_cores",
        "steal_cores",
        "disturbed_runs",
        "ok",
        "ok_load",
    )
    for column in columns:
        capacity.add_column(column.replace("_", " "))
    for row in results["capacity"]["rows"]:
        capacity.add_row(*(_cell(row, c) for c in columns))
    console.print(capacity)
