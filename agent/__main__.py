"""`python -m agent`: the one command line (serve | chat | simulate | slots | bench | doctor).

Settings are read once here and handed down. Any start-up problem (`RuntimeFailure`) becomes one
sentence on stderr and its exit code (2 for configuration and database problems), never a
traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from agent.errors import RuntimeFailure
from agent.logs import setup_logging
from agent.settings import Settings, load_settings
from agent.wiring import Runtime, open_runtime

app = typer.Typer(
    name="agent",
    help="AI phone receptionist runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
errors = Console(stderr=True, soft_wrap=True)


def _fail(failure: RuntimeFailure) -> NoReturn:
    errors.print(f"error: {failure}", markup=False, highlight=False)
    raise typer.Exit(failure.exit_code)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except RuntimeFailure as failure:
        _fail(failure)
    setup_logging(settings.log_level)
    return settings


def _with_runtime(work: Callable[[Runtime], Awaitable[int]]) -> int:
    settings = _settings()

    async def run() -> int:
        async with open_runtime(settings) as runtime:
            return await work(runtime)

    try:
        return asyncio.run(run())
    except RuntimeFailure as failure:
        _fail(failure)


def _not_yet(command: str, issue: str) -> NoReturn:
    errors.print(f"`{command}` is not available yet: it arrives with {issue}.", markup=False)
    raise typer.Exit(1)


@app.command()
def doctor() -> None:
    """Show the effective configuration, active backends and what a real phone line still needs."""
    from agent.doctor import report

    async def work(runtime: Runtime) -> int:
        report(runtime, console)
        return 0

    raise typer.Exit(_with_runtime(work))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Answer phone calls: Twilio webhooks and Media Streams."""
    _not_yet("serve", "the phone-call issue")


@app.command()
def chat() -> None:
    """Talk to the receptionist as text in this terminal."""
    _not_yet("chat", "the booking-conversation issue")


@app.command()
def simulate(paths: Annotated[list[Path] | None, typer.Argument(help="Scripted call files.")] = None) -> None:
    """Run scripted calls and check the calendar they leave behind."""
    _not_yet("simulate", "the scripted-calls issue")


@app.command()
def slots(
    service: Annotated[str, typer.Option(help="Service key, e.g. cleaning.")],
    start: Annotated[str, typer.Option("--from", help="ISO start of the window.")],
    end: Annotated[str, typer.Option("--to", help="ISO end of the window.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print offerable slots from the active calendar backend."""
    _not_yet("slots", "the calendar issue")


@app.command()
def bench() -> None:
    """Measure turn latency, call capacity and date resolution."""
    _not_yet("bench", "the benchmarks issue")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
