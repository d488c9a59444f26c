"""Reading a YAML document that people write by hand (business profiles, scripted calls).

Whatever is wrong — a missing file, broken YAML, a field that does not validate — becomes one
sentence naming the file and the place, raised as the caller's own error type.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from agent.errors import RuntimeFailure

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M], *, label: str, error: type[RuntimeFailure]) -> M:
    """Parse `path` into `model`; problems raise `error` with a sentence starting with `label`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise error(f"{label} does not exist.") from exc
    except OSError as exc:
        raise error(f"{label} cannot be read: {exc.strerror}.") from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # An unclosed bracket or quote is reported at the end of the file; its opening is more useful.
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise error(f"{label} is not valid YAML{where}.") from exc
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the document"
        reason = first["msg"].removeprefix("Value error, ")
        raise error(f"{label} is invalid at {where}: {reason}.") from exc
