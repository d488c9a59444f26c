"""Business profiles: the demo loads, calls find their business by number, mistakes are one sentence."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from agent.businesses import DEMO_BUSINESSES_FILE, load_directory
from agent.errors import ConfigError

VALID = """
businesses:
  - id: quick-plumbing
    name: Quick Plumbing
    phone_numbers: ["+1 (555) 010-0200"]
    time_zone: America/Chicago
    transfer_number: "+15550100299"
    services:
      - key: repair
        name: repair visit
        synonyms: [leak, clog]
        duration_minutes: 90
    hours:
      monday: ["07:00-18:00"]
      saturday: ["09:00-24:00"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "businesses.yaml"
    path.write_text(text)
    return path


def test_demo_business_is_valid() -> None:
    """The shipped demo business loads and answers its number."""
    directory = load_directory(DEMO_BUSINESSES_FILE)
    business = directory.by_number("+15550100100")
    assert business is not None and business.name == "Bright Smile Dental"
    assert {s.key for s in business.booking_services()} >= {"cleaning", "emergency"}


def test_dialled_number_finds_business_whatever_its_format(tmp_path: Path) -> None:
    """Numbers are normalised to E.164, so Twilio's `To` finds the business."""
    directory = load_directory(write(tmp_path, VALID))
    business = directory.by_number("+15550100200")
    assert business is not None and business.id == "quick-plumbing"
    assert business.phone_numbers == ("+15550100200",)
    assert directory.by_number("+15550199999") is None
    assert directory.by_number("garbage") is None


def test_hours_parse_including_midnight_close(tmp_path: Path) -> None:
    """'09:00-24:00' means open until midnight at the end of the day."""
    business = load_directory(write(tmp_path, VALID)).default
    saturday = business.hours["saturday"][0]
    assert (saturday.opens, saturday.closes) == (time(9), time(0))


def test_missing_file_is_one_sentence(tmp_path: Path) -> None:
    """An unknown business file is reported by path."""
    with pytest.raises(ConfigError, match=r"does not exist\.$"):
        load_directory(tmp_path / "nope.yaml")


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    """Broken YAML is reported with the line it broke on."""
    with pytest.raises(ConfigError, match=r"is not valid YAML at line 3\.$"):
        load_directory(write(tmp_path, "businesses:\n  - id: x\n    name: [unclosed\n"))


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (("America/Chicago", "Mars/Olympus"), "time_zone"),
        (("07:00-18:00", "18:00-07:00"), "hours.monday.0"),
        (("duration_minutes: 90", "duration_minutes: 0"), "duration_minutes"),
        (('"+15550100299"', '"call the boss"'), "transfer_number"),
        (("synonyms: [leak, clog]", "colour: blue"), "colour"),
    ],
)
def test_invalid_profile_names_the_field(tmp_path: Path, change: tuple[str, str], fragment: str) -> None:
    """A wrong field is reported with its location in the document."""
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_directory(path)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_one_number_cannot_reach_two_businesses(tmp_path: Path) -> None:
    """Two businesses sharing a phone number is refused."""
    second = VALID.split("businesses:\n", 1)[1].replace("quick-plumbing", "other")
    with pytest.raises(ConfigError, match="reaches both quick-plumbing and other"):
        load_directory(write(tmp_path, VALID + second))
