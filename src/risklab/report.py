"""Rich tables for the terminal: the early-warning board, audit rows, summaries."""

from __future__ import annotations

from typing import Any

from rich.table import Table

_LEVEL_STYLE = {"critical": "bold red", "high": "yellow", "ok": "green"}
_TREND = {"up": "↑", "down": "↓", "flat": "→"}


def amount(value: float, unit: str) -> str:
    """A compact amount: millions as 365.0m, smaller numbers as they are."""
    return f"{value / 1e6:,.1f}m {unit}" if abs(value) >= 1e6 else f"{value:,.2f} {unit}"


def board_table(rows: list[dict[str, Any]], title: str = "Early-warning board") -> Table:
    table = Table(title=title, title_justify="left")
    for col, justify in (
        ("subject", "left"),
        ("metric", "left"),
        ("value", "right"),
        ("capacity", "right"),
        ("ratio", "right"),
        ("level", "left"),
        ("trend", "center"),
        ("since", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        style = _LEVEL_STYLE.get(r["level"], "")
        table.add_row(
            r["subject"],
            r["metric"],
            amount(r["value"], r["unit"]),
            amount(r["capacity"], r["unit"]),
            f"{r['ratio']:.3f}",
            f"[{style}]{r['level']}[/]",
            _TREND.get(r["trend"], r["trend"]),
            str(r["since"])[:16].replace("T", " "),
        )
    return table


def audit_table(rows: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("#", "occurred at", "type", "producer", "key", "event id", "caused by"):
        table.add_column(col)
    for i, r in enumerate(rows):
        table.add_row(
            str(r.get("seq", r.get("depth", i))),
            str(r["occurred_at"])[:23],
            r["type"],
            r["producer"],
            r["key"],
            r["event_id"],
            r.get("causation_id") or "—",
        )
    return table


def summary_table(rows: list[dict[str, Any]], title: str = "Audit trail") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("topic")
    table.add_column("event type")
    table.add_column("events", justify="right")
    for r in rows:
        table.add_row(r["topic"], r["type"], str(r["events"]))
    table.add_row("", "[bold]total[/]", f"[bold]{sum(r['events'] for r in rows)}[/]")
    return table
