"""The command line as a person meets it: `doctor` explains; bad configuration is one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_every_command_is_listed(tmp_path: Path) -> None:
    """The one CLI offers serve, chat, simulate, slots, bench and doctor."""
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("serve", "chat", "simulate", "slots", "bench", "doctor"):
        assert command in result.stdout
