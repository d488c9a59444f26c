"""Errors of the runtime itself (not of a booking: those live in `booking.errors`).

    RuntimeFailure
    ├── ConfigError          a setting or profile is wrong; the CLI prints it and exits 2
    └── DatabaseUnavailable  the database cannot be reached or prepared; also exit 2

Each message is one sentence a person running the program can act on.
"""

from __future__ import annotations


class RuntimeFailure(Exception):
    """Base of the runtime's own failures; `str()` is the sentence to show."""

    exit_code = 1


class ConfigError(RuntimeFailure):
    exit_code = 2


class DatabaseUnavailable(RuntimeFailure):
    exit_code = 2
