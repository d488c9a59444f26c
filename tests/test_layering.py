"""The package boundaries hold: `booking/` is pure domain code, and keeps no clock of its own."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_BOOKING = ("agent", "pipecat", "twilio", "openai", "fastapi", "starlette", "uvicorn")
WALL_CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("time", "time"),
    ("datetime", "today"),
    ("time", "monotonic"),
}


def _modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _imported_roots(tree: ast.AST) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_booking_imports_no_framework_or_agent_code() -> None:
    """booking/ never imports agent, pipecat, twilio, openai or fastapi."""
    offenders = {
        str(path.relative_to(REPO)): sorted(
            _imported_roots(ast.parse(path.read_text())) & set(FORBIDDEN_IN_BOOKING)
        )
        for path in _modules("booking")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_booking_never_reads_the_wall_clock() -> None:
    """Only booking/clock.py may ask the system for the time; everything else is given a Clock."""
    offenders: list[str] = []
    for path in _modules("booking"):
        if path.name == "clock.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) in WALL_CLOCK_CALLS
            ):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_the_checker_sees_a_forbidden_import() -> None:
    """The import walker catches both `import x` and `from x.y import z` forms."""
    tree = ast.parse("import pipecat.frames\nfrom twilio.rest import Client\nfrom . import local\n")
    assert _imported_roots(tree) == {"pipecat", "twilio"}


def test_only_settings_reads_the_environment() -> None:
    """Configuration is read once: no module but agent/settings.py touches os.environ or getenv."""
    offenders: list[str] = []
    for package in ("agent", "booking", "prompts"):
        for path in _modules(package):
            if path.name == "settings.py" and path.parent.name == "agent":
                continue
            source = path.read_text()
            if "os.environ" in source or "getenv(" in source:
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
