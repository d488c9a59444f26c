"""`python -m agent bench`: measured numbers, written to `bench/results.json`.

Benchmarks never fail the test suite; they report. This module holds the date-resolution
benchmark (microseconds per phrase, p50 and p99) and the command that writes the results file.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from booking.dates import resolve

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "dates" / "dev.jsonl"
OWN_PHRASES = REPO_ROOT / "fixtures" / "dates" / "phrases.txt"
RESULTS = REPO_ROOT / "bench" / "results.json"
PINNED_NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("America/New_York"))


@dataclass(frozen=True)
class DateBench:
    corpus: str
    phrases: int
    rounds: int
    p50_us: float
    p99_us: float
    max_us: float


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


def run(quick: bool, path: Path = RESULTS) -> dict[str, Any]:
    dates = bench_dates(rounds=2 if quick else 20)
    results = {"dates": asdict(dates)}
    write_results("dates", results["dates"], path)
    return results
