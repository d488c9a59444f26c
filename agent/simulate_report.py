"""What `simulate` shows: a transcript per call, a results table, and JUnit XML for CI.

The transcript is who said what, with each tool call folded into one dim line and what the world
did between turns; the table says which scripts passed and, for those that did not, why. Both read
the same in a terminal and in a CI log (no colour needed to tell a failure: it says FAIL).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from agent.simulate import Entry, ScriptResult

_STYLES = {"caller": "bold cyan", "agent": "bold green", "tool": "dim", "world": "yellow"}


def transcript_lines(entries: Sequence[Entry]) -> list[str]:
    """The transcript as plain lines: "caller  ...", "agent   ...", "        · tool(...) → ok"."""
    lines = []
    for entry in entries:
        if entry.who == "tool":
            lines.append(f"        · {entry.text}")
        elif entry.who == "world":
            lines.append(f"        ~ {entry.text}")
        else:
            lines.append(f"{entry.who:<7} {entry.text}")
    return lines


def print_results(console: Console, results: Sequence[ScriptResult], mode: str, repeat: int) -> None:
    """Every call's transcript, then the table of results and a one-line summary."""
    for result in results:
        run = result.shown
        verdict = "pass" if result.passed else "FAIL"
        console.rule(Text(f"{result.script.name} — {verdict}"), align="left")
        console.print(Text(result.script.document.description, style="italic"))
        for entry, line in zip(run.transcript, transcript_lines(run.transcript), strict=True):
            style = "red" if entry.failed else _STYLES[entry.who]
            console.print(Text(line, style=style), soft_wrap=True)
        for reason in run.reasons:
            console.print(Text(f"  ✗ {reason}", style="bold red"))
    table = Table(title=f"Scripted calls ({mode})", title_justify="left")
    table.add_column("script", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("turns", justify="right")
    table.add_column("tools", justify="right")
    table.add_column("why it failed", ratio=1)
    for result in results:
        run = result.shown
        table.add_row(
            result.script.name,
            Text(_verdict(result, repeat), style="green" if result.passed else "bold red"),
            str(run.turns),
            str(run.tools),
            "\n".join(run.reasons),
        )
    console.print(table)
    passed = sum(result.passed for result in results)
    seconds = sum(run.seconds for result in results for run in result.runs)
    summary = f"{passed} of {len(results)} scripts passed ({mode}) in {seconds:.1f}s"
    if repeat > 1:
        runs = sum(len(result.runs) for result in results)
        passes = sum(result.passes for result in results)
        summary += (
            f"; pass^{repeat} {passed}/{len(results)}, pass rate {passes}/{runs} runs ({passes / runs:.0%})"
        )
    console.print(Text(summary, style="bold" if passed == len(results) else "bold red"))


def _verdict(result: ScriptResult, repeat: int) -> str:
    if repeat == 1:
        return "pass" if result.passed else "FAIL"
    label = f"pass^{repeat}" if result.passed else "FAIL"
    return f"{label} ({result.passes}/{repeat})"


def write_junit(path: Path, results: Sequence[ScriptResult], mode: str) -> None:
    """JUnit XML: one testcase per script, its failure carrying the reasons, its transcript as output."""
    suite = ET.Element(
        "testsuite",
        name=f"simulate.{mode}",
        tests=str(len(results)),
        failures=str(sum(not result.passed for result in results)),
        errors="0",
        time=f"{sum(run.seconds for result in results for run in result.runs):.3f}",
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"simulate.{mode}",
            name=result.script.name,
            file=str(result.script.path),
            time=f"{sum(run.seconds for run in result.runs):.3f}",
        )
        run = result.shown
        if not result.passed:
            failure = ET.SubElement(
                case,
                "failure",
                type="expectation",
                message=f"{result.passes}/{len(result.runs)} runs passed: {run.reasons[0]}",
            )
            failure.text = "\n".join(run.reasons)
        output = ET.SubElement(case, "system-out")
        output.text = "\n".join(transcript_lines(run.transcript))
    root = ET.Element("testsuites")
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
