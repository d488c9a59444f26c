"""One logging set-up for the whole process, built on loguru (which Pipecat already logs through).

Standard-library loggers (uvicorn, SQLAlchemy, httpx) are routed into loguru so every line has one
shape: time, level, source, message, then the bound `key=value` context. Callers' emails and phone
numbers never reach a log at INFO or above in full: a patcher masks them in every message and
context value, whoever logged them. DEBUG keeps them, for a developer on their own machine.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Record

_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
_PHONE = re.compile(r"(?<![\w])(\+?\d[\d\s().-]{7,}\d)(?![\w])")
_DEBUG_NO = logger.level("DEBUG").no

_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {name}:{line} | {message}{extra[kv]}"


def mask_email(email: str) -> str:
    """`john.smith@gmail.com` -> `j***@gmail.com`."""
    return _EMAIL.sub(r"\1***@\2", email)


def mask_phone(number: str) -> str:
    """Keep the last four digits: `+14155551234` -> `+1******1234`."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 7:
        return number
    prefix = "+" if number.strip().startswith("+") else ""
    return f"{prefix}{digits[0]}{'*' * (len(digits) - 5)}{digits[-4:]}"


def redact(text: str) -> str:
    """Mask every email address and phone-number-like run of digits in free text."""
    return _PHONE.sub(lambda m: mask_phone(m.group(1)), mask_email(text))


def _patch(record: Record) -> None:
    extra = record["extra"]
    if record["level"].no > _DEBUG_NO:
        record["message"] = redact(record["message"])
        for key, value in list(extra.items()):
            if isinstance(value, str) and key != "kv":
                extra[key] = redact(value)
    context = " ".join(f"{k}={v}" for k, v in extra.items() if k != "kv")
    extra["kv"] = f" | {context}" if context else ""


class _InterceptHandler(logging.Handler):
    """Send standard-library records to loguru, keeping their level and origin."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info, depth=6).log(level, record.getMessage())


def setup_logging(level: str = "INFO", sink: Any = sys.stderr) -> None:
    """Configure loguru and route the standard library into it. Safe to call more than once."""
    logger.remove()
    logger.configure(patcher=_patch, extra={"kv": ""})
    logger.add(sink, level=level, format=_FORMAT, backtrace=False, diagnose=False)
    # The standard library stops below `level` too: a record loguru would drop still costs a
    # LogRecord, and libraries that see DEBUG enabled do more (websockets describes every frame,
    # uvicorn wraps the app in its per-message logger): at tens of calls ~8% of a worker's loop.
    logging.basicConfig(handlers=[_InterceptHandler()], level=logger.level(level).no, force=True)
    quiet = max(logging.WARNING, logging.getLevelNamesMapping().get(level, logging.DEBUG))
    for noisy in ("sqlalchemy.engine", "httpx", "httpcore", "websockets", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(quiet)
