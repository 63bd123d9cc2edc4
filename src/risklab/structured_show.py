"""Rich tables of one structured-desk design request, for `risklab structured show`.

Input is the JSON-ready view of `risklab.queries.structured_request`; nothing here reads the
database. Figures are fractions of notional in the view and percentages in the tables. Every text
that came from an event is escaped, so no payload is read as rich markup.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

STATUS_STYLE = {"requested": "cyan", "in_progress": "yellow", "proposed": "green", "rejected": "bold red"}
DECISION_STYLE = {"approve": "green", "approve_with_conditions": "yellow", "reject": "bold red"}
Row = Mapping[str, Any]


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _table(title: str, caption: str | None = None) -> Table:
    return Table(
        title=escape(title),
        caption=escape(caption) if caption else None,
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        collapse_padding=True,
    )


def _by_structure(rows: Sequence[Row]) -> dict[str, Row]:
    return {r["structure_id"]: r for r in rows}


def top_structures(view: Row, top: int) -> list[str]:
    """The ids of the first `top` structures: the ranking's order when there is one, else the view's."""
    order = [r["structure_id"] for r in view["ranking"]] or [s["structure_id"] for s in view["structures"]]
    return order[:top]


def header_lines(view: Row) -> list[str]:
    """Request id and status, times, correlation and market."""
    status = view["status"]
    style = STATUS_STYLE.get(status, "white")
    lines = [f"[bold]structured request {escape(view['request_id'])}[/] — [{style}]{status}[/]"]
    lines.append(f"requested {_when(view['requested_at'])}, last event {_when(view['updated_at'])} (UTC)")
    extra = []
    if view.get("correlation_id"):
        extra.append(f"correlation {view['correlation_id']} (risklab audit show)")
    if view.get("market_sha256"):
        extra.append(f"market sha256 {view['market_sha256'][:16]}…")
    if extra:
        lines.append("; ".join(extra))
    return lines


def _when(iso: str | None) -> str:
    """An ISO time from the view as `YYYY-MM-DD HH:MM:SS` (the view's times are UTC)."""
    return "—" if not iso else iso.replace("T", " ").removesuffix("+00:00")


def timeline_table(view: Row) -> Table:
    table = _table("timeline (UTC)", "each event id leads back to the request: risklab audit lineage <event-id>")
    table.add_column("event", overflow="fold")
    table.add_column("by", overflow="fold")
    table.add_column("at", no_wrap=True)
    table.add_column("event id", no_wrap=True)
    for s in view["timeline"]:
        event = s["event_type"].removeprefix("structured.")
        table.add_row(escape(event), escape(s["stage"]), _when(s["occurred_at"]), s["event_id"])
    return table


def structures_table(view: Row, top: int) -> Table:
    structures = _by_structure(view["structures"])
    ranking = _by_structure(view["ranking"])
    ids = top_structures(view, top)
    what = "by rank" if ranking else "by target score (not ranked yet)"
    caption = (
        "score: the desk's ranking score, else the target score; eligible: passes risk and is approved for a "
        "segment (◆ Pareto-optimal). In %: price, margin (the issuer's), fair cpn (coupon p.a. for the target "
        "margin), probabilities of an early call, of knock-in (KI) and of a capital loss, the client's median IRR p.a."
    )
    table = _table(f"top {len(ids)} of {len(structures) or len(ranking)} structures {what}", caption)
    table.add_column("#", justify="right")
    table.add_column("structure", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("eligible")
    for head in ("price", "margin", "fair cpn", "call", "KI", "loss", "IRR p50"):
        table.add_column(head, justify="right")
    for i, sid in enumerate(ids, start=1):
        s, k = structures.get(sid, {}), ranking.get(sid)
        eligible = "—" if k is None else ("[green]yes[/]" if k["eligible"] else "no")
        if k is not None and k["pareto_optimal"]:
            eligible += " ◆"
        table.add_row(
            str(k["rank"]) if k else str(i),
            escape(sid),
            _num(k["score"]) if k else _num(s.get("target_score")),
            eligible,
            _pct(s.get("price")),
            _pct(s.get("issuer_margin")),
            _pct(s.get("fair_coupon")),
            _pct(s.get("autocall_probability"), 1),
            _pct(s.get("knock_in_probability"), 1),
            _pct(s.get("capital_loss_probability"), 1),
            _pct(s.get("irr_median")),
        )
    return table


def _verdict(stress: Row) -> str:
    return "[green]pass[/]" if stress["passes"] else "[bold red]FAIL[/]"


def _decision(compliance: Row) -> str:
    decision = compliance["decision"]
    return f"[{DECISION_STYLE.get(decision, 'white')}]{escape(decision)}[/]"


def stress_table(view: Row, top: int) -> Table:
    stress = _by_structure(view["stress"])
    ids = [sid for sid in top_structures(view, top) if sid in stress] or list(stress)[:top]
    failed = sum(not r["passes"] for r in view["stress"])
    title = f"stress: {len(view['stress']) - failed} pass, {failed} fail of {len(view['stress'])} structures"
    caption = (
        "In % of notional, the issuer short the note: VaR99, ES99 held to maturity; stressed VaR99: the worst over "
        "the stress scenarios; gap: loss when the underlyings gap through the barrier; trigger: largest |gamma| near "
        "the trigger and barrier; CaR: capital at risk of the hedged issuer"
    )
    table = _table(title, caption)
    table.add_column("structure", overflow="fold")
    for head in ("VaR99", "ES99", "stressed VaR99", "gap", "trigger", "CaR"):
        table.add_column(head, justify="right")
    table.add_column("verdict", justify="center")
    table.add_column("breaches", overflow="fold")
    for sid in ids:
        r = stress[sid]
        table.add_row(
            escape(sid),
            _pct(r["var_99"]),
            _pct(r["es_99"]),
            _pct(r["stressed_var_99"]),
            _pct(r["gap_risk"]),
            _pct(r["trigger_risk"]),
            _pct(r["capital_at_risk"]),
            _verdict(r),
            escape(", ".join(r["breaches"])) or "—",
        )
    return table


def suitability_table(view: Row) -> Table | None:
    """Segments x the structures the plan assigns; None when nothing is assigned."""
    cells = {(c["segment_id"], c["structure_id"]): c for c in view["suitability"]}
    assigned = list(dict.fromkeys(c["structure_id"] for c in view["suitability"] if c["assigned"]))
    if not assigned:
        return None
    caption = "suitability score 0–1 of each segment for each assigned structure; ● the plan assigns it"
    table = _table("suitability: segments x assigned structures", caption)
    table.add_column("segment", overflow="fold")
    table.add_column("clients", justify="right")
    for sid in assigned:
        table.add_column(escape(sid), justify="right", overflow="fold")
    segments = view["segments"] or [
        {"segment_id": s, "label": s, "size": None} for s in dict.fromkeys(c["segment_id"] for c in view["suitability"])
    ]
    for seg in segments:
        row = [escape(f"{seg['label']} ({seg['segment_id']})"), f"{seg['size']:,}" if seg["size"] else "—"]
        for sid in assigned:
            cell = cells.get((seg["segment_id"], sid))
            if cell is None:
                row.append("—")
            elif cell["assigned"]:
                row.append(f"[bold green]● {cell['score']:.2f}[/]")
            else:
                row.append(f"{cell['score']:.2f}")
        table.add_row(*row)
    return table


def compliance_table(view: Row, top: int) -> Table:
    compliance = _by_structure(view["compliance"])
    ids = [sid for sid in top_structures(view, top) if sid in compliance] or list(compliance)[:top]
    books = sorted({f"{r['rulebook_name']} {r['rulebook_version']}" for r in view["compliance"]})
    counts = Counter(r["decision"] for r in view["compliance"])
    summary = ", ".join(f"{n} {d}" for d, n in sorted(counts.items()))
    table = _table(
        f"compliance under rulebook {' / '.join(books)}: {summary}",
        "rules fired by effect: block / condition / warning",
    )
    table.add_column("structure", overflow="fold")
    table.add_column("decision", overflow="fold")
    table.add_column("rules b/c/w", justify="right")
    table.add_column("target market", overflow="fold")
    table.add_column("never to", overflow="fold")
    table.add_column("docs", justify="right")
    for sid in ids:
        r = compliance[sid]
        effects = Counter(rule["effect"] for rule in r["rules_fired"])
        table.add_row(
            escape(sid),
            _decision(r),
            f"{effects['block']}/{effects['condition']}/{effects['warning']}",
            escape(", ".join(r["target_market"])) or "—",
            escape(", ".join(r["negative_target_market"])) or "—",
            str(len(r["documents"])),
        )
    return table


def outcome_lines(view: Row) -> list[str]:
    """The recommendation with its segments, rationale and documents; or the rejection; or what is pending."""
    if view["status"] == "rejected":
        field = f" (field {escape(view['rejected_field'])})" if view.get("rejected_field") else ""
        reason = escape(view["rejected_reason"] or "")
        return [f"[bold red]rejected[/] by {escape(view['rejected_by'] or '?')}{field}: {reason}"]
    proposal = view.get("proposal")
    if view["status"] != "proposed" or proposal is None:
        return ["no proposal yet"]
    lines = []
    recommendation = view.get("recommendation")
    if recommendation is None:
        lines.append("[bold]recommendation:[/] none — no structure is eligible")
    else:
        segments = ", ".join(proposal.get("segments") or []) or "no segment named"
        lines.append(f"[bold]recommendation:[/] [bold green]{escape(recommendation)}[/] for {escape(segments)}")
    if proposal.get("rationale"):
        lines.append(escape(proposal["rationale"]))
    documents = list(proposal.get("documents") or [])
    if not documents and recommendation is not None:
        documents = list(_by_structure(view["compliance"]).get(recommendation, {}).get("documents", []))
    for d in documents:
        artifact = d["artifact"]
        lines.append(f"  {escape(d['kind'])} ({escape(d['format'])}): {escape(artifact['uri'])}")
    return lines


def print_view(view: Row, console: Console, *, top: int = 10) -> None:
    """Everything `risklab structured show` prints, in reading order."""
    for line in header_lines(view):
        console.print(line, highlight=False)
    console.print(timeline_table(view))
    if view["structures"] or view["ranking"]:
        console.print(structures_table(view, top))
    if view["stress"]:
        console.print(stress_table(view, top))
    matrix = suitability_table(view)
    if matrix is not None:
        console.print(matrix)
    if view["compliance"]:
        console.print(compliance_table(view, top))
    for line in outcome_lines(view):
        console.print(line, highlight=False, soft_wrap=True)
