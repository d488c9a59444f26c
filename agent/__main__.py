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

from agent.businesses import BusinessProfile
from agent.errors import ConfigError, RuntimeFailure
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


def _business(runtime: Runtime, business_id: str | None) -> BusinessProfile:
    if business_id is None:
        return runtime.directory.default
    profile = runtime.directory.by_id(business_id)
    if profile is None:
        known = ", ".join(b.id for b in runtime.directory)
        raise ConfigError(f"There is no business {business_id!r}; known: {known}.")
    return profile


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
    from agent.serve import serve as run_server

    async def work(runtime: Runtime) -> int:
        return await run_server(runtime, host, port)

    raise typer.Exit(_with_runtime(work))


@app.command()
def chat(
    business: Annotated[str | None, typer.Option(help="Business id (default: the first one).")] = None,
) -> None:
    """Talk to the receptionist as text in this terminal (needs OPENAI_API_KEY)."""
    from agent.chat import run_chat

    async def work(runtime: Runtime) -> int:
        profile = _business(runtime, business)
        return await run_chat(runtime, profile, console, lambda: console.input("[bold]you[/bold]: "))

    raise typer.Exit(_with_runtime(work))


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
    business: Annotated[str | None, typer.Option(help="Business id (default: the first one).")] = None,
) -> None:
    """Print offerable slots from the active calendar backend."""
    from agent.slots_cli import print_slots

    async def work(runtime: Runtime) -> int:
        profile = _business(runtime, business)
        return await print_slots(runtime, profile, service, start, end, as_json, console)

    raise typer.Exit(_with_runtime(work))


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="A short run, for smoke tests.")] = False,
    output: Annotated[Path | None, typer.Option(help="Results file (default bench/results.json).")] = None,
) -> None:
    """Measure date resolution (turn latency and capacity arrive with the benchmarks issue)."""
    from agent.bench import RESULTS, run

    target = output or RESULTS
    results = run(quick, target)
    dates = results["dates"]
    console.print(
        f"date resolution: {dates['phrases']} phrases x {dates['rounds']} rounds, "
        f"p50 {dates['p50_us']} µs, p99 {dates['p99_us']} µs (target p50 <= 100, p99 <= 1000)"
    )
    console.print(f"results written to {target}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
