"""The receptionist's words load only when every template fits what the runtime fills in."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.errors import ConfigError
from agent.prompting import PROMPTS_DIR, load_prompts
from booking.errors import ALL_ERRORS


@pytest.fixture
def prompts_copy(tmp_path: Path) -> Path:
    shutil.copytree(PROMPTS_DIR, tmp_path / "prompts", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return tmp_path / "prompts"


def test_shipped_prompts_load_and_fill() -> None:
    """The shipped system prompt names the business, today's date and the services."""
    prompts = load_prompts()
    system = prompts.system(
        business_name="Bright Smile Dental",
        today=datetime(2026, 11, 23, 9, 5, tzinfo=ZoneInfo("America/New_York")),
        time_zone="America/New_York",
        services="teeth cleaning (45 minutes)",
        hours="Monday 08:00-17:00",
    )
    assert "Bright Smile Dental" in system
    assert "Monday, November 23, 2026, 9:05 AM" in system
    assert "{" not in system


def test_every_error_code_has_a_sentence() -> None:
    """Each booking error code is spoken as its own sentence, not a generic fallback."""
    phrases = load_prompts().phrases
    for error in ALL_ERRORS:
        assert f"errors.{error.code}" in phrases.templates


def test_unknown_placeholder_fails_loudly(prompts_copy: Path) -> None:
    """A typo such as {wen} stops start-up and names the phrase."""
    path = prompts_copy / "phrases.toml"
    path.write_text(
        path.read_text().replace("{service}, {when}, for {name}", "{service}, {wen}, for {name}", 1)
    )
    with pytest.raises(ConfigError, match=r"read_back\.book uses unknown placeholder \{wen\}"):
        load_prompts(prompts_copy)


def test_missing_placeholder_in_system_prompt_fails_loudly(prompts_copy: Path) -> None:
    """A system prompt that lost {today} would let the model guess the date: refused."""
    path = prompts_copy / "system.md"
    path.write_text(path.read_text().replace("{today}", "today"))
    with pytest.raises(ConfigError, match=r"missing placeholder \{today\}"):
        load_prompts(prompts_copy)


def test_missing_sentence_fails_loudly(prompts_copy: Path) -> None:
    """Deleting the sentence for an error code is caught at load time."""
    path = prompts_copy / "phrases.toml"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("slot_taken =")]
    path.write_text("\n".join(lines))
    with pytest.raises(ConfigError, match=r"has no \[errors\] slot_taken sentence"):
        load_prompts(prompts_copy)
