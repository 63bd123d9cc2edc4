"""`risklab structured request`: publish a design request and follow it to the desk's proposal.

On Kafka (the default transport) it publishes to the deployment's `desk.structured` and follows the
events of the request while the desk's agents (`risklab run structured`) and engine workers
(`risklab run engine-worker`) work. With `RISKLAB_TRANSPORT=memory` nothing else can reach the
process, so it runs the whole platform in it (embedded PostgreSQL, as `risklab demo` does).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from risklab.structured_cli import _fail, structured_app

console = Console()
err = Console(stderr=True)


def _load(path: Path | None) -> tuple[dict[str, Any], Path | None]:
    from risklab.structured_desk import sample_request_data

    if path is None:
        return sample_request_data(), None
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise _fail(f"{path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise _fail(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _fail(f"{path}: a design request is a JSON object, not {type(data).__name__}")
    return data, path.parent


@structured_app.command("request")
def request_command(
    path: Annotated[
        Path | None, typer.Argument(help="Design request JSON (requirements, market, constraints); default: sample.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the proposal.")] = 3600.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the final event as JSON.")] = False,
) -> None:
    """Publish a design request on the configured transport and follow it to its proposal or rejection.

    Exit code 0 for a proposal, 1 for a rejection (the reason names the field), 2 for a timeout.
    """
    # the desk's agents and engines load only for this command, not for every `risklab` start
    from bus.envelope import Envelope
    from risklab.artifacts import artifact_store
    from risklab.demo import print_proposal
    from risklab.settings import load_settings
    from risklab.structured_desk import STAGE_OF_TYPE, DesignRequestError, RequestTimedOut, build_request

    settings = load_settings()
    data, base_dir = _load(path)
    try:
        request = build_request(data, artifact_store(settings), base_dir=base_dir)
    except DesignRequestError as exc:
        raise _fail(f"{path or 'sample request'}: {exc}") from None
    started = time.perf_counter()
    quiet = json_out

    def show(envelope: Envelope) -> None:
        if not quiet:
            stage = STAGE_OF_TYPE.get(envelope.type, envelope.type)
            console.print(f"[{time.perf_counter() - started:7.1f}s] {stage}: {envelope.type}", highlight=False)

    if not quiet:
        console.print(f"design request {request.request_id} (market {request.market_ref.sha256[:12]})")
    try:
        outcome = asyncio.run(_follow(settings, request, timeout, show))
    except RequestTimedOut as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except OSError as exc:
        raise _fail(f"cannot reach the event log: {exc}") from None
    final = json.loads(outcome.final.model_dump_json())
    if json_out:
        print(json.dumps(final, indent=2))
    else:
        print_proposal(final, console)
    if not outcome.proposed:
        raise typer.Exit(1)


async def _follow(settings: Any, request: Any, timeout: float, show: Any) -> Any:
    """The request's outcome (`RequestOutcome`), on the configured transport."""
    from risklab.structured_desk import submit_and_follow

    if settings.transport == "memory":
        from risklab.demo import embedded_platform

        async with embedded_platform(settings, database="risklab_structured") as platform:
            return await submit_and_follow(platform.transport, request, timeout=timeout, on_event=show)
    from risklab.servers import open_transport

    transport = open_transport(settings, client_id="risklab-structured-request")
    await transport.start()
    try:
        return await submit_and_follow(transport, request, timeout=timeout, on_event=show)
    finally:
        await transport.close()
