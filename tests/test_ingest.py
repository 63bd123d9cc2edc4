"""`risklab.ingest.parse_submissions`: every line validated before anything is published.

Each refusal names the line (1-based; 0 for the submission as a whole), the field and the reason,
and a single bad line among good ones refuses the whole submission.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from bus.catalog import CATALOG
from bus.topics import MARKET_DATA, PORTFOLIO_TRADES, RISK_INDICATORS, USER_TOPICS
from risklab.ingest import EventTooLarge, IngestError, parse_submissions

LIMIT = 1_048_576


def trade(portfolio: str = "PM-1", trade_id: str = "T-1", notional: float = 1e6, **extra: Any) -> dict[str, Any]:
    return {
        "type": "portfolio.trade_booked",
        "payload": {
            "portfolio_id": portfolio,
            "trade_id": trade_id,
            "instrument_type": "equity_option",
            "underlying": "SPX",
            "direction": "long",
            "notional": notional,
            "currency": "USD",
            "trade_date": "2026-11-02",
        },
        **extra,
    }


def limit(portfolio: str = "PM-1", capacity: float = 10e6) -> dict[str, Any]:
    return {
        "type": "portfolio.limit_set",
        "payload": {"portfolio_id": portfolio, "metric": "gross_notional", "capacity": capacity, "currency": "USD"},
    }


def snapshot(quotes: int) -> dict[str, Any]:
    return {
        "type": "market.snapshot_published",
        "payload": {
            "snapshot_id": "EOD-1",
            "universe": "global-eod",
            "as_of": "2026-11-02T08:00:00+00:00",
            "base_currency": "USD",
            "quotes": [
                {"instrument": f"INSTR-{i:06d}", "quote_type": "spot", "value": 100.0 + i, "unit": "USD"}
                for i in range(quotes)
            ],
        },
    }


def lines(*events: dict[str, Any] | str) -> list[str]:
    return [e if isinstance(e, str) else json.dumps(e) for e in events]


def refuse(topic: str, submitted: list[Any], *, max_message_bytes: int = LIMIT) -> IngestError:
    with pytest.raises(IngestError) as info:
        parse_submissions(topic, submitted, producer="tests", max_message_bytes=max_message_bytes)
    return info.value


def without(payload_field: str, event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "payload": {k: v for k, v in event["payload"].items() if k != payload_field}}


# -- good input ---------------------------------------------------------------------------


def test_valid_multi_line_file_parses_every_line_in_order() -> None:
    given = lines(limit(), trade(trade_id="T-1"), "", trade(trade_id="T-2", notional=2e6), "   ", trade(trade_id="T-3"))
    envelopes = parse_submissions(PORTFOLIO_TRADES, given, producer="tests", max_message_bytes=LIMIT)
    assert [e.type for e in envelopes] == [
        "portfolio.limit_set",
        "portfolio.trade_booked",
        "portfolio.trade_booked",
        "portfolio.trade_booked",
    ]
    assert [e.payload.get("trade_id") for e in envelopes] == [None, "T-1", "T-2", "T-3"]
    for e in envelopes:
        assert e.key == "PM-1"  # defaulted from the type's key field
        assert e.version == CATALOG.latest(e.type).event_version
        assert e.producer == "tests"
        assert e.correlation_id == e.event_id  # each submitted event starts its own chain
        assert e.causation_id is None
    assert len({e.event_id for e in envelopes}) == 4


def test_parsed_objects_and_given_envelope_fields_are_kept() -> None:
    event_id, correlation = uuid.uuid4(), uuid.uuid4()
    given = trade(
        event_id=str(event_id),
        correlation_id=str(correlation),
        version=1,
        producer="desk:structured",
        occurred_at="2026-11-02T09:30:00+00:00",
    )
    (envelope,) = parse_submissions(PORTFOLIO_TRADES, [given], producer="tests", max_message_bytes=LIMIT)
    assert envelope.event_id == event_id
    assert envelope.correlation_id == correlation
    assert envelope.producer == "desk:structured"
    assert envelope.occurred_at.isoformat() == "2026-11-02T09:30:00+00:00"


def test_each_user_topic_takes_its_own_types() -> None:
    indicator = {
        "type": "risk.indicator_observed",
        "payload": {
            "subject": "CCP-A",
            "metric": "initial_margin_usage",
            "value": 1.0,
            "capacity": 2.0,
            "unit": "USD",
            "observed_at": "2026-11-02T08:00:00+00:00",
        },
    }
    assert len(parse_submissions(RISK_INDICATORS, lines(indicator), producer="t", max_message_bytes=LIMIT)) == 1
    assert len(parse_submissions(MARKET_DATA, lines(snapshot(3)), producer="t", max_message_bytes=LIMIT)) == 1


# -- refusals: line, field, reason ----------------------------------------------------------


def test_malformed_json_names_line_and_column() -> None:
    err = refuse(PORTFOLIO_TRADES, lines(trade(), '{"type": "portfolio.trade_booked", payload: {}}'))
    assert (err.line, err.field) == (2, None)
    assert err.reason == "malformed JSON: Expecting property name enclosed in double quotes at column 36"
    assert str(err) == f"line 2: {err.reason}"


def test_truncated_json_names_line_and_column() -> None:
    err = refuse(PORTFOLIO_TRADES, ['{"type": "portfolio.trade_booked"'])  # 33 characters, cut short
    assert (err.line, err.field) == (1, None)
    assert err.reason == "malformed JSON: Expecting ',' delimiter at column 34"


def test_unknown_event_type_names_type() -> None:
    err = refuse(PORTFOLIO_TRADES, lines(trade(), {**trade(), "type": "portfolio.trade_exploded"}))
    assert (err.line, err.field) == (2, "type")
    assert err.reason == "unknown event type 'portfolio.trade_exploded'"
    assert str(err) == "line 2, field type: unknown event type 'portfolio.trade_exploded'"


def test_type_that_is_not_a_type_name_names_type() -> None:
    err = refuse(PORTFOLIO_TRADES, lines({**trade(), "type": "bus.events.portfolio.TradeBooked()"}))
    assert (err.line, err.field) == (1, "type")
    assert "should match pattern" in err.reason


def test_version_newer_than_the_catalog_names_version() -> None:
    latest = CATALOG.latest("portfolio.trade_booked").event_version
    err = refuse(PORTFOLIO_TRADES, lines(trade(version=latest + 1)))
    assert (err.line, err.field) == (1, "version")
    assert err.reason == (
        f"portfolio.trade_booked version {latest + 1} is newer than the latest known version {latest}"
    )


def test_version_zero_names_version() -> None:
    err = refuse(PORTFOLIO_TRADES, lines(trade(version=0)))
    assert (err.line, err.field) == (1, "version")
    assert err.reason == "Input should be greater than or equal to 1"


@pytest.mark.parametrize("missing", ["notional", "trade_id", "currency", "trade_date"])
def test_missing_payload_field_is_named(missing: str) -> None:
    err = refuse(PORTFOLIO_TRADES, lines(trade(), without(missing, trade(trade_id="T-2"))))
    assert (err.line, err.field) == (2, f"payload.{missing}")
    assert err.reason == "Field required"


def test_missing_payload_names_payload() -> None:
    err = refuse(PORTFOLIO_TRADES, lines({"type": "portfolio.trade_booked"}))
    assert (err.line, err.field) == (1, "payload")
    assert err.reason == "Field required"


def test_invalid_payload_value_is_named() -> None:
    bad = trade()
    bad["payload"]["notional"] = -5
    err = refuse(PORTFOLIO_TRADES, lines(bad))
    assert (err.line, err.field) == (1, "payload.notional")
    assert err.reason == "Input should be greater than 0"


def test_extra_envelope_field_is_refused() -> None:
    err = refuse(PORTFOLIO_TRADES, lines({**trade(), "colour": "red"}))
    assert (err.line, err.field) == (1, "colour")
    assert err.reason == "Extra inputs are not permitted"


def test_extra_payload_field_is_refused() -> None:
    bad = trade()
    bad["payload"]["colour"] = "red"
    err = refuse(PORTFOLIO_TRADES, lines(trade(), trade(), bad))
    assert (err.line, err.field) == (3, "payload.colour")
    assert err.reason == "Extra inputs are not permitted"


def test_type_on_the_wrong_topic_is_refused() -> None:
    err = refuse(MARKET_DATA, lines(trade()))
    assert (err.line, err.field) == (1, "type")
    assert err.reason == "portfolio.trade_booked belongs on topic 'portfolio.trades', not 'market.data'"


def test_key_that_contradicts_the_payload_is_refused() -> None:
    err = refuse(PORTFOLIO_TRADES, lines(trade(key="PM-2")))
    assert (err.line, err.field) == (1, "key")
    assert err.reason.startswith("key 'PM-2' must equal payload.portfolio_id 'PM-1'")


def test_line_that_is_not_an_object_is_refused() -> None:
    err = refuse(PORTFOLIO_TRADES, lines(trade(), "[1, 2]"))
    assert (err.line, err.field) == (2, None)
    assert err.reason == 'expected a JSON object {"type": ..., "payload": {...}}, got list'


def test_oversized_event_is_refused() -> None:
    err = refuse(MARKET_DATA, lines(snapshot(3), snapshot(100)), max_message_bytes=4096)
    assert isinstance(err, EventTooLarge)
    assert (err.line, err.field) == (2, "payload")
    size = int(err.reason.split()[2])
    assert size > 4096
    assert err.reason == (
        f"event of {size} bytes exceeds the 4096-byte limit; "
        "put large content in the artifact store and send a reference"
    )


def test_oversized_event_at_the_default_limit_is_refused() -> None:
    err = refuse(MARKET_DATA, lines(snapshot(15_000)))
    assert isinstance(err, EventTooLarge)
    assert (err.line, err.field) == (1, "payload")
    assert f"exceeds the {LIMIT}-byte limit" in err.reason


def test_an_event_just_under_the_limit_passes() -> None:
    (envelope,) = parse_submissions(MARKET_DATA, lines(snapshot(3)), producer="t", max_message_bytes=4096)
    assert envelope.type == "market.snapshot_published"


@pytest.mark.parametrize("topic", ["alerts", "deadletter", "compute.results", "no.such.topic"])
def test_topic_users_do_not_publish_to_is_refused(topic: str) -> None:
    err = refuse(topic, lines(trade()))
    assert (err.line, err.field) == (0, "topic")
    assert err.reason == f"{topic!r} is not a topic users publish to; use one of {list(USER_TOPICS)}"


@pytest.mark.parametrize("given", [[], [""], ["", "   ", "\t"]])
def test_empty_input_is_refused(given: list[str]) -> None:
    err = refuse(PORTFOLIO_TRADES, given)
    assert (err.line, err.field) == (0, None)
    assert err.reason == "no events given"


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        ("{not json", None, "malformed JSON: Expecting property name enclosed in double quotes at column 2"),
        (json.dumps({**trade(), "type": "portfolio.nope"}), "type", "unknown event type 'portfolio.nope'"),
        (json.dumps(trade(version=99)), "version", "portfolio.trade_booked version 99 is newer than"),
        (json.dumps(without("notional", trade())), "payload.notional", "Field required"),
        (json.dumps({**trade(), "extra": 1}), "extra", "Extra inputs are not permitted"),
        # no key given, and the payload lacks the type's key field
        (json.dumps(limit() | {"type": "risk.indicator_observed"}), "key", "no key given and payload has no subject"),
        (json.dumps(limit() | {"type": "risk.indicator_observed", "key": "S"}), "payload.subject", "Field required"),
        (json.dumps(snapshot(1)), "type", "market.snapshot_published belongs on topic 'market.data'"),
    ],
)
@pytest.mark.parametrize("position", [0, 2, 4])
def test_one_bad_line_among_good_ones_refuses_everything(
    bad: str, field: str | None, reason: str, position: int
) -> None:
    good = lines(*(trade(trade_id=f"T-{i}") for i in range(4)))
    submitted = [*good[:position], bad, *good[position:]]
    result: list[Any] | None = None
    with pytest.raises(IngestError) as info:
        result = parse_submissions(PORTFOLIO_TRADES, submitted, producer="t", max_message_bytes=LIMIT)
    assert result is None  # nothing returned, so nothing can be published
    assert (info.value.line, info.value.field) == (position + 1, field)
    assert info.value.reason.startswith(reason)
