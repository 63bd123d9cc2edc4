"""`risklab alerts`: the alerts on the log, optionally followed live."""

from __future__ import annotations

import uuid

from rich.console import Console

from bus.codec import decode
from bus.errors import InvalidEvent
from bus.topics import ALERTS
from risklab.report import amount
from risklab.servers import open_transport
from risklab.settings import Settings


def alert_line(envelope_type: str, payload: dict) -> str:
    """One alert as a line of text."""
    if envelope_type.endswith("alert_raised"):
        return (
            f"[bold red]RAISED[/]  {payload['observed_at']}  {payload['subject']} {payload['metric']}: "
            f"{payload['previous_level']} → {payload['level']}  ratio {payload['ratio']:.3f} "
            f"({amount(payload['value'], payload['unit'])} of {amount(payload['capacity'], payload['unit'])})"
        )
    return (
        f"[green]CLEARED[/] {payload['observed_at']}  {payload['subject']} {payload['metric']}: "
        f"{payload['cleared_level']} → {payload['level']}  ratio {payload['ratio']:.3f}"
    )


async def print_alerts(settings: Settings, console: Console, *, follow: bool) -> int:
    """Print every alert on the log; with `follow`, keep going until interrupted. Returns the count."""
    transport = open_transport(settings, client_id="risklab-alerts")
    await transport.start()
    sub = await transport.subscribe(f"cli-alerts-{uuid.uuid4().hex[:12]}", [ALERTS])
    ends = await transport.end_offsets([ALERTS])
    positions = dict.fromkeys(ends, 0)
    count = 0
    try:
        while True:
            batches = await sub.poll(1.0, 500)
            for tp, records in batches.items():
                for record in records:
                    positions[tp] = record.offset + 1
                    try:
                        decoded = decode(record.value)
                    except InvalidEvent:
                        continue
                    console.print(alert_line(decoded.envelope.type, decoded.envelope.payload), highlight=False)
                    count += 1
            if not follow and all(positions.get(tp, 0) >= end for tp, end in ends.items()):
                return count
    finally:
        await sub.close()
        await transport.close()
