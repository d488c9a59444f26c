"""Logs never carry a caller's full email or phone number at INFO, and keep them at DEBUG."""

from __future__ import annotations

import io
import logging

from loguru import logger

from agent.logs import mask_email, mask_phone, redact, setup_logging


def test_masks_keep_enough_to_recognise() -> None:
    """Masked values keep the first letter and domain, or the last four digits."""
    assert mask_email("john.smith@gmail.com") == "j***@gmail.com"
    assert mask_phone("+14155551234") == "+1******1234"
    assert redact("call +1 (415) 555-1234 or mail a.b@x.org") == "call +1******1234 or mail a***@x.org"


def test_info_lines_are_redacted_from_any_logger() -> None:
    """Loguru and standard-library records at INFO are masked; bound context values too."""
    sink = io.StringIO()
    setup_logging("INFO", sink=sink)
    logger.bind(caller="+14155551234").info("booked for jane@example.com")
    logging.getLogger("uvicorn.error").warning("from +14155550000")
    output = sink.getvalue()
    assert "jane@example.com" not in output and "j***@example.com" in output
    assert "+14155551234" not in output and "caller=+1******1234" in output
    assert "+14155550000" not in output
    setup_logging("INFO")


def test_debug_keeps_details_for_developers() -> None:
    """At DEBUG level a developer sees the real values."""
    sink = io.StringIO()
    setup_logging("DEBUG", sink=sink)
    logger.debug("caller jane@example.com")
    assert "jane@example.com" in sink.getvalue()
    setup_logging("INFO")


def test_libraries_do_no_logging_work_below_the_level() -> None:
    """Below the chosen level the standard library drops records before they are built.

    websockets describes every frame and uvicorn wraps the app in a per-message logger when they
    see DEBUG enabled: at 50 media messages a second per call that is CPU spent on nothing.
    """
    library = logging.getLogger("a.library.that.sets.no.level")
    setup_logging("INFO")
    assert not library.isEnabledFor(logging.DEBUG) and library.isEnabledFor(logging.INFO)
    setup_logging("DEBUG")
    assert library.isEnabledFor(logging.DEBUG)
    setup_logging("INFO")
