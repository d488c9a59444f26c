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
    workers: Annotated[
        int, typer.Option(min=1, help="Server processes on this port, one core each (see the README).")
    ] = 1,
) -> None:
    """Answer phone calls: Twilio webhooks and Media Streams."""
    if workers > 1:
        from agent.twilio_auth import PhoneLine
        from agent.workers import serve_workers

        async def check(runtime: Runtime) -> int:
            PhoneLine.from_settings(runtime.settings)
            return 0  # configuration and database checked here; each worker opens its own

        code = _with_runtime(check)
        raise typer.Exit(serve_workers(host, port, workers) if code == 0 else code)
    from agent.serve import serve as run_server

    raise typer.Exit(_with_runtime(lambda runtime: run_server(runtime, host, port)))


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
def simulate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Scripted call files, or folders of them (default: fixtures/calls)."),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Let the real model answer (needs OPENAI_API_KEY).")
    ] = False,
    audio: Annotated[
        bool, typer.Option("--audio", help="Speak the caller's lines through the phone path.")
    ] = False,
    repeat: Annotated[int, typer.Option(min=1, help="Run every script N times; report pass^N.")] = 1,
    junit: Annotated[
        Path | None, typer.Option(help="Also write the results as JUnit XML to this file.")
    ] = None,
) -> None:
    """Run scripted calls and check the calendar they leave behind."""
    from agent.simulate import Options, run_simulate

    settings = _settings()
    options = Options(live=live, audio=audio, repeat=repeat, junit=junit)
    try:
        code = run_simulate(paths or [], options, settings, console)
    except RuntimeFailure as failure:
        _fail(failure)
    raise typer.Exit(code)


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
    quick: Annotated[
        bool, typer.Option("--quick", help="A short run (about 40 s), for smoke tests.")
    ] = False,
    output: Annotated[
        Path | None, typer.Option(help="Results file (default bench/results.json); the chart goes beside it.")
    ] = None,
) -> None:
    """Measure turn latency (ours vs bare Pipecat), a tool turn, call capacity and date resolution."""
    from agent.bench import CHART_NAME, RESULTS, print_summary, run

    setup_logging("WARNING")
    target = output or RESULTS
    results = run(quick, target)
    print_summary(results, console)
    console.print(f"results written to {target} and {target.parent / CHART_NAME}")


@app.command("twilio-setup")
def twilio_setup() -> None:
    """Point every business number's voice and SMS webhooks at PUBLIC_BASE_URL."""
    import httpx

    from agent.twilio_setup import point_numbers

    async def work(runtime: Runtime) -> int:
        s = runtime.settings
        needed = (
            ("TWILIO_ACCOUNT_SID", s.twilio_account_sid),
            ("TWILIO_AUTH_TOKEN", s.twilio_auth_token),
            ("PUBLIC_BASE_URL", s.public_base_url),
        )
        missing = [name for name, value in needed if not value]
        if missing:
            raise ConfigError(f"twilio-setup needs {', '.join(missing)}.")
        assert s.twilio_account_sid and s.twilio_auth_token and s.public_base_url
        numbers = [n for business in runtime.directory for n in business.phone_numbers]
        async with httpx.AsyncClient(base_url=str(s.twilio_api_base_url).rstrip("/")) as client:
            results = await point_numbers(
                client,
                account_sid=s.twilio_account_sid,
                auth_token=s.twilio_auth_token.get_secret_value(),
                numbers=numbers,
                public_base_url=str(s.public_base_url),
            )
        for result in results:
            console.print(
                f"{result.number}: {'ok' if result.done else 'not set'} — {result.detail}", markup=False
            )
        return 0 if results and all(r.done for r in results) else 1

    raise typer.Exit(_with_runtime(work))


webhooks_app = typer.Typer(help="Cal.com webhooks.", no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("register")
def webhooks_register(
    url: Annotated[
        str | None, typer.Option(help="Subscriber URL (default: PUBLIC_BASE_URL/webhooks/calcom).")
    ] = None,
) -> None:
    """Subscribe this server to Cal.com's booking webhooks, signed with CALCOM_WEBHOOK_SECRET."""
    from agent.webhooks import WebhookRegistrationFailed, register_webhook

    async def work(runtime: Runtime) -> int:
        s = runtime.settings
        target = url or (
            f"{str(s.public_base_url).rstrip('/')}/webhooks/calcom" if s.public_base_url else None
        )
        needed = (
            ("CALCOM_API_KEY", s.calcom_api_key),
            ("CALCOM_WEBHOOK_SECRET", s.calcom_webhook_secret),
            ("PUBLIC_BASE_URL", target),
        )
        missing = [name for name, value in needed if not value]
        if missing:
            raise ConfigError(f"webhooks register needs {', '.join(missing)}.")
        assert runtime.calcom_http and s.calcom_api_key and s.calcom_webhook_secret and target
        try:
            hook = await register_webhook(
                runtime.calcom_http,
                api_key=s.calcom_api_key.get_secret_value(),
                subscriber_url=target,
                secret=s.calcom_webhook_secret.get_secret_value(),
            )
        except WebhookRegistrationFailed as error:
            errors.print(f"error: {error}", markup=False, highlight=False)
            return 1
        console.print(
            f"{'Created' if hook.created else 'Updated'} Cal.com webhook {hook.id}: "
            f"{hook.subscriber_url} ({', '.join(hook.triggers)})"
        )
        return 0

    raise typer.Exit(_with_runtime(work))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
