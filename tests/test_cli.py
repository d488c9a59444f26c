"""The command line as a person meets it: `doctor` explains; bad configuration is one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SECRET = "sk-test-0123456789abcdefghij"


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CALCOM_", "TWILIO_"))}
    clean.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "COLUMNS": "200"}, **env)
    clean.pop("BUSINESSES_FILE", None) if "BUSINESSES_FILE" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_doctor_describes_the_embedded_setup(tmp_path: Path) -> None:
    """With no keys, doctor reports the embedded calendar, SQLite, the demo business and what's missing."""
    result = run_cli(tmp_path, "doctor")
    assert result.returncode == 0, result.stderr
    assert "embedded calendar" in result.stdout
    assert "SQLite (embedded)" in result.stdout
    assert "Bright Smile Dental" in result.stdout
    assert "For a real phone line, set: OPENAI_API_KEY, TWILIO_ACCOUNT_SID" in result.stdout


def test_doctor_masks_secrets(tmp_path: Path) -> None:
    """Keys are shown masked, never in full."""
    result = run_cli(tmp_path, "doctor", OPENAI_API_KEY=SECRET, TWILIO_AUTH_TOKEN="tok_0123456789abcdef")
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout and "tok_0123456789abcdef" not in result.stdout
    assert "sk-t…ghij" in result.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"BUSINESSES_FILE": "missing.yaml"}, "BUSINESSES_FILE missing.yaml does not exist."),
        ({"BUSINESSES_FILE": "bad.yaml"}, "is not valid YAML at line 1."),
        ({"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nothing"}, "Cannot connect to the database"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL is invalid"),
    ],
)
def test_bad_configuration_is_one_sentence_and_exit_2(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    """Unknown business file, malformed YAML, an unreachable database: one clear line, exit code 2."""
    (tmp_path / "bad.yaml").write_text("businesses: [unclosed\n")
    result = run_cli(tmp_path, "doctor", **env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def _next_weekday(weekday: int, at_least_days: int = 3) -> date:
    day = date.today() + timedelta(days=at_least_days)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def test_slots_lists_free_times_from_the_embedded_calendar(tmp_path: Path) -> None:
    """`slots --json` prints the demo practice's free cleaning times inside the window."""
    tuesday = _next_weekday(1)
    result = run_cli(
        tmp_path,
        "slots",
        "--service",
        "cleaning",
        "--from",
        f"{tuesday}T13:00",
        "--to",
        f"{tuesday}T15:00",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    starts = [datetime.fromisoformat(s["start"]) for s in json.loads(result.stdout)]
    assert [(s.hour, s.minute) for s in starts] == [(13, 0), (13, 30), (14, 0), (14, 30)]
    assert all(s.date() == tuesday for s in starts)


def test_slots_rejects_a_bad_date_in_one_line(tmp_path: Path) -> None:
    """A malformed --from is one sentence and exit code 2."""
    result = run_cli(
        tmp_path, "slots", "--service", "cleaning", "--from", "next tuesday", "--to", "2030-01-01"
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --from 'next tuesday' is not an ISO date or date-time such as 2026-11-24T09:00."
    )


def test_chat_without_a_key_says_what_is_missing(tmp_path: Path) -> None:
    """`chat` with no OpenAI key explains what to set instead of failing obscurely."""
    result = run_cli(tmp_path, "chat")
    assert result.returncode == 1
    assert "set OPENAI_API_KEY" in result.stdout


def test_every_command_is_listed(tmp_path: Path) -> None:
    """The one CLI offers serve, chat, simulate, slots, bench and doctor."""
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("serve", "chat", "simulate", "slots", "bench", "doctor"):
        assert command in result.stdout
