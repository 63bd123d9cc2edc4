"""The published JSON Schemas: current with the catalog, and guarded against breaking changes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bus.catalog import Event, EventCatalog
from bus.envelope import Envelope
from bus.schema_diff import breaking_changes
from bus.schemas import (
    SchemaCompatibilityError,
    check_schemas,
    event_schema,
    export,
    export_schemas,
    load_catalog,
    main_check,
    main_export,
    render,
    schema_path,
)
from risklab.documents import DOCUMENTS

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "schemas"
TYPE = "test.order_placed"


# -- the CI gate ------------------------------------------------------------------------------


def test_committed_schemas_match_the_catalog() -> None:
    problems = check_schemas(load_catalog(), COMMITTED, DOCUMENTS)
    assert not problems, "schemas/ is out of date with the event catalog:\n" + "\n".join(map(str, problems))


def test_export_is_deterministic_and_matches_the_committed_files(tmp_path: Path) -> None:
    catalog = load_catalog()
    first = export_schemas(catalog, tmp_path, DOCUMENTS)
    contents = {p: p.read_bytes() for p in first}
    second = export(catalog, tmp_path, DOCUMENTS)
    assert {e.status for e in second} == {"unchanged"}
    assert {p: p.read_bytes() for p in first} == contents
    for path, content in contents.items():
        assert content.endswith(b"}\n")
        assert (COMMITTED / path.relative_to(tmp_path)).read_bytes() == content
    envelope = json.loads((tmp_path / "envelope" / "v1.json").read_text())
    assert envelope["$id"] == "risklab:envelope/v1"


def test_product_spec_schema_is_published_and_validates_a_spec() -> None:
    from engines.structured.spec import AutocallSpec

    document = json.loads((COMMITTED / "structured.autocall_spec" / "v1.json").read_text())
    assert document["x-risklab"] == {"kind": "document", "name": "structured.autocall_spec", "version": 1}
    assert "autocallable" in document["description"]
    validator = Draft202012Validator(document)
    spec = AutocallSpec(underlyings=["SX5E", "SPX"]).model_dump(mode="json")
    assert not list(validator.iter_errors(spec))
    assert list(validator.iter_errors({**spec, "underlyings": []}))  # 1 to 5 underlyings, as the model says


def test_xva_book_and_market_schemas_validate_the_sample_and_refuse_a_bad_trade() -> None:
    from engines.xva.generator import sample_book
    from engines.xva.market import sample_market

    book = json.loads(sample_book(7, 5, 40).model_dump_json())
    book_schema = Draft202012Validator(json.loads((COMMITTED / "xva.book" / "v1.json").read_text()))
    assert not list(book_schema.iter_errors(book))
    book["trades"][0]["notional"] = -1.0
    assert list(book_schema.iter_errors(book))
    market_schema = Draft202012Validator(json.loads((COMMITTED / "xva.market" / "v1.json").read_text()))
    assert not list(market_schema.iter_errors(json.loads(sample_market().model_dump_json())))
    trade_schema = Draft202012Validator(json.loads((COMMITTED / "xva.trade" / "v1.json").read_text()))
    assert not list(trade_schema.iter_errors(book["trades"][1]))
    assert list(trade_schema.iter_errors({**book["trades"][1], "type": "bond"}))


def test_a_dropped_document_schema_is_reported(tmp_path: Path) -> None:
    export_schemas(load_catalog(), tmp_path, DOCUMENTS)
    problems = check_schemas(load_catalog(), tmp_path, DOCUMENTS[1:])
    assert any(p.event_type == DOCUMENTS[0].name and "no longer in the event catalog" in p.message for p in problems)


def test_published_document_carries_the_catalog_entry() -> None:
    document = json.loads((COMMITTED / "portfolio.trade_booked" / "v1.json").read_text())
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$id"] == "risklab:event/portfolio.trade_booked/v1"
    assert document["title"] == "TradeBooked"
    assert document["description"].startswith("A new trade in a portfolio.")
    assert document["x-risklab"] == {
        "kind": "event",
        "type": "portfolio.trade_booked",
        "version": 1,
        "topic": "portfolio.trades",
        "key": "portfolio_id",
    }
    Draft202012Validator.check_schema(document)


# -- the published schemas describe what pydantic accepts ---------------------------------------

NOW = "2025-03-14T09:30:00+00:00"
SAMPLES: dict[str, dict[str, Any]] = {
    "bus.dead_lettered": {
        "actor": "margin.calculator",
        "reason": "payload.notional: Input should be greater than 0",
        "error_type": "invalid_event",
        "attempts": 1,
        "original_topic": "portfolio.trades",
        "original_partition": 3,
        "original_offset": 1042,
        "original_key": "PF-1",
        "original_event_id": None,
        "original_value_base64": "e30=",
    },
    "compute.requested": {
        "request_id": "req-1",
        "kind": "mc.european_option",
        "chunk_index": 0,
        "chunk_count": 4,
        "inputs": {"spot": 100.0, "paths": 10000},
        "seed": 42,
    },
    "compute.completed": {
        "request_id": "req-1",
        "kind": "mc.european_option",
        "chunk_index": 3,
        "chunk_count": 4,
        "result": {"price": 10.45},
        "elapsed_seconds": 0.25,
        "worker": "worker-1",
    },
    "compute.failed": {
        "request_id": "req-1",
        "kind": "mc.european_option",
        "chunk_index": 1,
        "chunk_count": 4,
        "error_type": "ValueError",
        "error": "volatility must be positive",
        "worker": "worker-2",
    },
    "market.snapshot_published": {
        "snapshot_id": "snap-2025-03-14",
        "universe": "global-eod",
        "as_of": NOW,
        "base_currency": "USD",
        "quotes": [
            {"instrument": "SPX", "quote_type": "spot", "value": 5600, "unit": "USD"},
            {"instrument": "SPX", "quote_type": "implied_vol", "value": 0.18, "unit": "decimal", "tenor": "3M"},
            {"instrument": "SPX", "quote_type": "implied_vol", "value": 0.2, "unit": "decimal", "strike": 5000.0},
        ],
    },
    "portfolio.trade_booked": {
        "portfolio_id": "PF-1",
        "trade_id": "T-1",
        "instrument_type": "interest_rate_swap",
        "underlying": "USD.SOFR",
        "direction": "long",
        "notional": 10_000_000,
        "currency": "USD",
        "trade_date": "2025-03-14",
        "maturity_date": "2030-03-14",
        "venue": "LCH",
    },
    "portfolio.trade_amended": {
        "portfolio_id": "PF-1",
        "trade_id": "T-1",
        "notional": 5_000_000.0,
        "reason": "partial unwind",
    },
    "portfolio.trade_terminated": {
        "portfolio_id": "PF-1",
        "trade_id": "T-1",
        "termination_date": "2026-01-02",
        "reason": "unwound",
    },
    "portfolio.limit_set": {
        "portfolio_id": "PF-1",
        "metric": "gross_notional",
        "capacity": 50_000_000,
        "currency": "EUR",
    },
    "risk.indicator_observed": {
        "subject": "PF-1",
        "metric": "gross_notional",
        "value": 36_000_000,
        "capacity": 50_000_000,
        "unit": "USD",
        "observed_at": NOW,
        "window": "1h",
    },
    "risk.alert_raised": {
        "subject": "PF-1",
        "metric": "gross_notional",
        "value": 36_000_000,
        "capacity": 50_000_000,
        "ratio": 0.72,
        "unit": "USD",
        "observed_at": NOW,
        "indicator_event_id": str(uuid.UUID(int=7)),
        "level": "high",
        "previous_level": "ok",
        "threshold": 0.7,
    },
    "risk.alert_cleared": {
        "subject": "PF-1",
        "metric": "gross_notional",
        "value": 20_000_000,
        "capacity": 50_000_000,
        "ratio": 0.4,
        "unit": "USD",
        "observed_at": NOW,
        "indicator_event_id": str(uuid.UUID(int=8)),
        "level": "ok",
        "cleared_level": "high",
    },
}
GENERIC_MODULES = (
    "bus.events.compute",
    "bus.events.deadletter",
    "bus.events.indicators",
    "bus.events.market",
    "bus.events.portfolio",
)


def _validator(event_type: str, version: int = 1) -> Draft202012Validator:
    document = json.loads(schema_path(COMMITTED, event_type, version).read_text())
    return Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _envelope(event_type: str, version: int, payload: dict[str, Any], key: str = "k") -> Envelope:
    return Envelope(
        event_id=uuid.uuid4(),
        type=event_type,
        version=version,
        key=key,
        correlation_id=uuid.uuid4(),
        producer="tests",
        occurred_at=datetime.now(UTC),
        payload=payload,
    )


def test_every_generic_event_type_has_a_sample() -> None:
    generic = {m.event_type for m in load_catalog() if m.__module__ in GENERIC_MODULES}
    assert generic == set(SAMPLES)


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_sample_payload_validates_against_its_published_schema(event_type: str) -> None:
    catalog = load_catalog()
    payload = SAMPLES[event_type]
    model = catalog.latest(event_type)
    event = catalog.parse(_envelope(event_type, 1, payload, key=str(payload[model.key_field])))
    _validator(event_type).validate(payload)
    # the wire form pydantic writes validates too
    _validator(event_type).validate(event.model_dump(mode="json"))
    envelope = catalog.envelope(event, producer="tests")
    _validator("envelope").validate(json.loads(envelope.model_dump_json()))


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_schema_and_pydantic_both_refuse_an_unknown_field(event_type: str) -> None:
    payload = {**SAMPLES[event_type], "unexpected": 1}
    assert not _validator(event_type).is_valid(payload)
    with pytest.raises(ValidationError):
        load_catalog().latest(event_type).model_validate(payload)


@pytest.mark.parametrize(
    ("event_type", "change"),
    [
        ("portfolio.trade_booked", {"direction": "sideways"}),
        ("portfolio.trade_booked", {"currency": "usd"}),
        ("portfolio.trade_booked", {"notional": 0}),
        ("portfolio.trade_booked", {"trade_date": "14/03/2025"}),
        ("market.snapshot_published", {"quotes": []}),
        ("market.snapshot_published", {"quotes": [{"instrument": "SPX", "quote_type": "spot", "value": 1}]}),
        ("risk.alert_raised", {"level": "ok"}),
        ("compute.requested", {"chunk_count": 0}),
    ],
)
def test_schema_and_pydantic_both_refuse_a_bad_value(event_type: str, change: dict[str, Any]) -> None:
    payload = {**SAMPLES[event_type], **change}
    assert not _validator(event_type).is_valid(payload)
    with pytest.raises(ValidationError):
        load_catalog().latest(event_type).model_validate(payload)


# -- compatibility, with throwaway models in a fresh catalog -------------------------------------


class Line(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: str
    quantity: int = Field(ge=1)


class Order(Event, type=TYPE, version=1, topic="test.orders", key="order_id"):
    """An order was placed."""

    order_id: str
    side: Literal["buy", "sell"]
    quantity: int = Field(ge=1, le=1000)
    lines: list[Line] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=100)


def _catalog(*models: type[Event]) -> EventCatalog:
    catalog = EventCatalog()
    for model in models:
        catalog.register(model)
    return catalog


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A schemas directory holding the published v1 of `Order`."""
    export_schemas(_catalog(Order), tmp_path)
    assert check_schemas(_catalog(Order), tmp_path) == []
    return tmp_path


class OrderWithOptionalField(Event, type=TYPE, version=1, topic="test.orders", key="order_id"):
    """An order was placed."""

    order_id: str
    side: Literal["buy", "sell"]
    quantity: int = Field(ge=1, le=1000)
    lines: list[Line] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=100)
    channel: str | None = None


class OrderLoosened(Event, type=TYPE, version=1, topic="test.orders", key="order_id"):
    """An order was placed, with looser limits and another description."""

    order_id: str | int
    side: Literal["buy", "sell", "short_sell"]
    quantity: float = Field(ge=0)
    lines: list[Line] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=500, description="Free text.")


@pytest.mark.parametrize("model", [OrderWithOptionalField, OrderLoosened])
def test_compatible_change_is_stale_until_exported(published: Path, model: type[Event]) -> None:
    catalog = _catalog(model)
    problems = check_schemas(catalog, published)
    assert [p.message for p in problems] == [
        f"stale: {schema_path(published, TYPE, 1)} differs from the model (a compatible change); "
        "run `risklab schemas export`"
    ]
    statuses = {e.path.relative_to(published).as_posix(): e.status for e in export(catalog, published)}
    assert statuses[f"{TYPE}/v1.json"] == "updated"
    assert json.loads(schema_path(published, TYPE, 1).read_text()) == event_schema(model)
    assert check_schemas(catalog, published) == []


class OrderWithoutNote(Event, type=TYPE, version=1, topic="test.orders", key="order_id"):
    """An order was placed."""

    order_id: str
    side: Literal["buy", "sell"]
    quantity: int = Field(ge=1, le=1000)
    lines: list[Line] = Field(default_factory=list)


class OrderRetyped(Event, type=TYPE, version=1, topic="test.orders", key="order_id"):
    """An order was placed."""

    order_id: str
    side: Literal["buy", "sell"]
    quantity: str
    lines: list[Line] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=100)


class OrderWithRequiredField(Event, type=TYPE, version=1, topic="test.orders", key="order_id"):
    """An order was placed."""

    order_id: str
    side: Literal["buy", "sell"]
    quantity: int = Field(ge=1, le=1000)
    lines: list[Line] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=100)
    desk: str


class OrderTightened(Event, type=TYPE, version=1, topic="test.orders", key="order_id"):
    """An order was placed."""

    order_id: str
    side: Literal["buy"]
    quantity: int = Field(gt=1, le=100)
    lines: list[Line] = Field(default_factory=list)
    note: str = Field(default="", max_length=100)


class StrictLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    sku: str = Field(pattern=r"^[A-Z]+$")
    quantity: int = Field(ge=1)


class OrderWithStricterLines(Event, type=TYPE, version=1, topic="test.orders", key="order_id"):
    """An order was placed."""

    order_id: str
    side: Literal["buy", "sell"]
    quantity: int = Field(ge=1, le=1000)
    lines: list[StrictLine] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=100)


class OrderRekeyed(Event, type=TYPE, version=1, topic="test.orders.v2", key="side"):
    """An order was placed."""

    order_id: str
    side: Literal["buy", "sell"]
    quantity: int = Field(ge=1, le=1000)
    lines: list[Line] = Field(default_factory=list)
    note: str | None = Field(default=None, max_length=100)


@pytest.mark.parametrize(
    ("model", "differences"),
    [
        (OrderWithoutNote, ["removed property note"]),
        (OrderRetyped, ["quantity: type changed from integer to string"]),
        (OrderWithRequiredField, ["new required property desk"]),
        (
            OrderTightened,
            [  # in the order of the published (sorted) properties
                "note: no longer accepts null",
                "quantity: lower bound tightened from >= 1 to > 1",
                "quantity: upper bound tightened from <= 1000 to <= 100",
                "side: no longer accepts 'sell'",
            ],
        ),
        (OrderWithStricterLines, ["lines[].sku: pattern changed from none to '^[A-Z]+$'"]),
        (
            OrderRekeyed,
            ["key field changed from 'order_id' to 'side'", "topic changed from 'test.orders' to 'test.orders.v2'"],
        ),
    ],
    ids=["removed", "retyped", "new-required", "tightened", "nested", "rekeyed"],
)
def test_breaking_change_is_reported_and_export_refuses(
    published: Path, model: type[Event], differences: list[str]
) -> None:
    catalog = _catalog(model)
    path = schema_path(published, TYPE, 1)
    before = path.read_bytes()

    problems = check_schemas(catalog, published)
    assert [str(p) for p in problems] == [
        f"{TYPE} v1: breaking change to {TYPE} v1 without a version bump: " + "; ".join(differences)
    ]

    with pytest.raises(SchemaCompatibilityError) as refused:
        export_schemas(catalog, published)
    (change,) = refused.value.changes
    assert (change.event_type, change.version, list(change.differences)) == (TYPE, 1, differences)
    assert f"{TYPE} v1" in str(refused.value)
    assert path.read_bytes() == before


class OrderV2(Event, type=TYPE, version=2, topic="test.orders", key="order_id"):
    """An order was placed; quantities are now decimal lots and the desk is named."""

    order_id: str
    side: Literal["buy", "sell"]
    lots: float = Field(gt=0)
    desk: str
    note: str | None = None


def _upcast_order_v1(payload: dict[str, Any]) -> dict[str, Any]:
    payload.pop("lines", None)
    payload["lots"] = float(payload.pop("quantity"))
    payload["desk"] = "unknown"
    return payload


def test_version_bump_with_upcaster_passes_and_keeps_the_old_file(published: Path) -> None:
    v1_file = schema_path(published, TYPE, 1)
    v1_bytes = v1_file.read_bytes()
    catalog = _catalog(OrderV2)
    catalog.upcaster(TYPE, 1)(_upcast_order_v1)

    assert [p.message for p in check_schemas(catalog, published)] == [
        f"stale: {schema_path(published, TYPE, 2)} is missing; run `risklab schemas export`"
    ]
    written = export_schemas(catalog, published)
    assert schema_path(published, TYPE, 2) in written
    assert v1_file.read_bytes() == v1_bytes
    assert check_schemas(catalog, published) == []

    # an event published as v1 is still read, as the latest model
    v1_payload = {"order_id": "O-1", "side": "sell", "quantity": 3, "lines": [{"sku": "A", "quantity": 3}]}
    assert Draft202012Validator(json.loads(v1_bytes)).is_valid(v1_payload)
    event = catalog.parse(_envelope(TYPE, 1, v1_payload, key="O-1"))
    assert event == OrderV2(order_id="O-1", side="sell", lots=3.0, desk="unknown")


def test_version_bump_keeping_the_old_model_registered(published: Path) -> None:
    catalog = _catalog(Order, OrderV2)
    catalog.upcaster(TYPE, 1)(_upcast_order_v1)
    export_schemas(catalog, published)
    assert check_schemas(catalog, published) == []


def test_version_bump_without_upcaster_is_reported(published: Path) -> None:
    catalog = _catalog(OrderV2)
    export_schemas(catalog, published)
    assert [str(p) for p in check_schemas(catalog, published)] == [f"{TYPE} v1: v1 has no upcaster to v2"]
    assert main_check(published, catalog, echo=lambda _: None) == 1


def test_gap_in_the_upcaster_chain_is_reported(published: Path) -> None:
    class OrderV3(Event, type=TYPE, version=3, topic="test.orders", key="order_id"):
        """An order was placed."""

        order_id: str

    catalog = _catalog(OrderV3)
    catalog.upcaster(TYPE, 1)(_upcast_order_v1)
    export_schemas(catalog, published)
    assert [str(p) for p in check_schemas(catalog, published)] == [
        f"{TYPE} v2: {schema_path(published, TYPE, 2)} is missing: events of v2 may be on the log and their "
        "schema must stay published; restore it from version control",
        f"{TYPE} v2: v2 has no upcaster to v3 (needed to bring v1 events up to v3)",
    ]


def test_deleted_old_version_file_is_reported(published: Path) -> None:
    catalog = _catalog(OrderV2)
    catalog.upcaster(TYPE, 1)(_upcast_order_v1)
    export_schemas(catalog, published)
    schema_path(published, TYPE, 1).unlink()
    assert [p.version for p in check_schemas(catalog, published)] == [1]


def test_deleted_event_type_is_reported(published: Path) -> None:
    problems = check_schemas(_catalog(), published)
    assert [(p.event_type, p.version) for p in problems] == [(TYPE, None)]
    assert "no longer in the event catalog" in problems[0].message
    # export does not delete the files of the removed type
    export_schemas(_catalog(), published)
    assert schema_path(published, TYPE, 1).exists()


def test_missing_and_hand_edited_files_are_stale(published: Path) -> None:
    catalog = _catalog(Order)
    path = schema_path(published, TYPE, 1)
    document = json.loads(path.read_text())
    path.write_text(json.dumps(document))  # same schema, other formatting
    assert [p.message.split(":")[0] for p in check_schemas(catalog, published)] == ["stale"]
    (published / "envelope" / "v1.json").unlink()
    problems = check_schemas(catalog, published)
    assert sorted(p.event_type for p in problems) == ["envelope", TYPE]
    lines: list[str] = []
    assert main_export(published, catalog, echo=lines.append) == 0
    assert check_schemas(catalog, published) == []
    assert main_check(published, catalog, echo=lines.append) == 0


def test_main_export_prints_the_refusal(published: Path) -> None:
    lines: list[str] = []
    assert main_export(published, _catalog(OrderWithoutNote), echo=lines.append) == 1
    assert "removed property note" in lines[0]


# -- the diff on hand-written schemas ----------------------------------------------------------


def _doc(properties: dict[str, Any], required: list[str] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


def test_diff_ignores_annotations_and_follows_refs_into_defs() -> None:
    old = _doc(
        {"item": {"$ref": "#/$defs/Item"}},
        ["item"],
        **{"$defs": {"Item": _doc({"n": {"type": "integer", "title": "N"}}, ["n"], additionalProperties=False)}},
    )
    renamed = _doc(
        {"item": {"$ref": "#/$defs/Renamed", "description": "The item."}},
        ["item"],
        **{"$defs": {"Renamed": _doc({"n": {"type": "number"}}, ["n"], additionalProperties=False)}},
    )
    assert breaking_changes(old, renamed) == []
    inlined = _doc({"item": _doc({"n": {"type": "string"}}, ["n"])}, ["item"])
    assert breaking_changes(old, inlined) == ["item.n: type changed from integer to string"]


def test_diff_handles_recursive_models() -> None:
    def tree(leaf_type: str) -> dict[str, Any]:
        node = _doc(
            {"value": {"type": leaf_type}, "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
            ["value"],
        )
        return {"$ref": "#/$defs/Node", "$defs": {"Node": node}}

    assert breaking_changes(tree("integer"), tree("number")) == []
    assert breaking_changes(tree("number"), tree("integer")) == ["value: type changed from number to integer"]


def test_diff_of_optional_union_and_array_values() -> None:
    optional = {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}]}
    old = _doc({"a": optional, "b": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}})
    widened = _doc(
        {
            "a": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
            "b": {"type": "array", "items": {"type": "number"}},
        }
    )
    assert breaking_changes(old, widened) == []
    narrowed = _doc(
        {"a": {"type": "string", "maxLength": 3}, "b": {"type": "array", "items": {"type": "string"}, "maxItems": 2}}
    )
    assert breaking_changes(old, narrowed) == [
        "a: maxLength lowered from 5 to 3 characters",
        "a: no longer accepts null",
        "b: maxItems lowered from 3 to 2 items",
        "b[]: type changed from integer to string",
    ]


def test_diff_of_free_form_objects() -> None:
    free = _doc({"inputs": {"type": "object", "additionalProperties": True}})
    typed = _doc({"inputs": {"type": "object", "additionalProperties": {"type": "number"}}})
    assert breaking_changes(typed, free) == []
    assert breaking_changes(free, typed) == ["inputs.*: now restricted to type number"]
    closed = _doc({"inputs": {"type": "object", "additionalProperties": False}})
    assert breaking_changes(free, closed) == ["inputs: no longer accepts additional properties"]


def test_render_is_sorted_and_ends_with_a_newline() -> None:
    assert render({"b": 1, "a": {"d": "é", "c": [2, 1]}}) == (
        '{\n  "a": {\n    "c": [\n      2,\n      1\n    ],\n    "d": "é"\n  },\n  "b": 1\n}\n'
    )


def test_diff_of_a_union_of_models() -> None:
    def union(*names: str) -> dict[str, Any]:
        defs = {n: _doc({"kind": {"const": n.lower(), "type": "string"}}, ["kind"], title=n) for n in names}
        variants = [{"$ref": f"#/$defs/{n}"} for n in names]
        return {**_doc({"shape": {"oneOf": variants}}, ["shape"]), "$defs": defs}

    assert breaking_changes(union("A", "B"), union("A", "B", "C")) == []
    assert breaking_changes(union("A", "B"), union("A", "C")) == ["shape: no longer accepts object B"]
