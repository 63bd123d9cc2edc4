"""The `risklab` command line: publishing is all or nothing, and refusals name line, field and reason.

Commands run in-process through typer's `CliRunner`, in a worker thread so that their own
`asyncio.run` leaves the test session's event loop alone. Without servers, `open_transport` is
replaced by a spy that hands out one memory transport, so a test can count what reached the log and
see whether a transport was opened at all; the environment points at an unreachable Kafka besides.
The integration tests run the same refusals against the session's real Kafka under a fresh
namespace and check that the topics' end offsets stay at 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import risklab.servers
from bus.kafka import KafkaTransport
from bus.memory import MemoryTransport
from bus.topics import MARKET_DATA, PORTFOLIO_TRADES, USER_TOPICS, topic_specs
from bus.transport import Transport
from risklab.cli import app
from risklab.groups import ACTOR_GROUPS
from risklab.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SMALL_LIMIT = 4096
UNREACHABLE_KAFKA = "127.0.0.1:9"  # the discard port: nothing listens there

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def invoke(args: list[str], env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
    """Run `risklab <args>` in a worker thread (the command calls asyncio.run itself)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="risklab-cli-test") as pool:
        return pool.submit(CliRunner().invoke, app, args, input=input, env=env).result()


def said(result: Result) -> str:
    """Everything the command printed, as one line (rich wraps long messages at the terminal width)."""
    return " ".join(_ANSI.sub("", result.output).split())


def base_env(**overrides: str | None) -> dict[str, str | None]:
    env: dict[str, str | None] = {
        "RISKLAB_TRANSPORT": "kafka",
        "RISKLAB_KAFKA_BOOTSTRAP": UNREACHABLE_KAFKA,
        "RISKLAB_NAMESPACE": None,
        "RISKLAB_DATABASE_URL": None,
        "RISKLAB_MAX_MESSAGE_BYTES": str(SMALL_LIMIT),
        "RISKLAB_LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


# -- submissions ----------------------------------------------------------------------------


def trade(trade_id: str, notional: float = 1e6, portfolio: str = "PM-CLI") -> dict[str, Any]:
    return {
        "type": "portfolio.trade_booked",
        "payload": {
            "portfolio_id": portfolio,
            "trade_id": trade_id,
            "instrument_type": "future",
            "underlying": "SPX",
            "direction": "short",
            "notional": notional,
            "currency": "USD",
            "trade_date": "2026-11-02",
        },
    }


def snapshot(quotes: int) -> dict[str, Any]:
    return {
        "type": "market.snapshot_published",
        "payload": {
            "snapshot_id": "EOD-CLI",
            "universe": "cli-eod",
            "as_of": "2026-11-02T08:00:00+00:00",
            "base_currency": "USD",
            "quotes": [
                {"instrument": f"Q-{i:05d}", "quote_type": "spot", "value": float(i + 1), "unit": "USD"}
                for i in range(quotes)
            ],
        },
    }


def jsonl(*events: dict[str, Any] | str) -> str:
    return "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)


def without_notional(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "payload": {k: v for k, v in event["payload"].items() if k != "notional"}}


GOOD = [trade(f"T-{i}") for i in range(5)]

# (name, topic, file content, expected text after "error: ") — line, field and reason, all or nothing.
BAD_FILES = [
    (
        "malformed-json",
        PORTFOLIO_TRADES,
        jsonl(GOOD[0], GOOD[1], '{"type": "portfolio.trade_booked", payload: {}}', GOOD[2]),
        "line 3: malformed JSON: Expecting property name enclosed in double quotes at column 36; nothing was published",
    ),
    (
        "unknown-type",
        PORTFOLIO_TRADES,
        jsonl(GOOD[0], {**GOOD[1], "type": "portfolio.trade_exploded"}),
        "line 2, field type: unknown event type 'portfolio.trade_exploded'; nothing was published",
    ),
    (
        "newer-version",
        PORTFOLIO_TRADES,
        jsonl({**GOOD[0], "version": 7}, GOOD[1]),
        "line 1, field version: portfolio.trade_booked version 7 is newer than the latest known version 1; "
        "nothing was published",
    ),
    (
        "missing-field",
        PORTFOLIO_TRADES,
        jsonl(GOOD[0], GOOD[1], GOOD[2], without_notional(GOOD[3])),
        "line 4, field payload.notional: Field required; nothing was published",
    ),
    (
        "extra-field",
        PORTFOLIO_TRADES,
        jsonl({**GOOD[0], "colour": "red"}),
        "line 1, field colour: Extra inputs are not permitted; nothing was published",
    ),
    (
        "wrong-topic",
        MARKET_DATA,
        jsonl(snapshot(2), GOOD[0]),
        "line 2, field type: portfolio.trade_booked belongs on topic 'portfolio.trades', not 'market.data'; "
        "nothing was published",
    ),
    (
        "oversized",
        MARKET_DATA,
        jsonl(snapshot(2), snapshot(200)),
        re.compile(
            rf"line 2, field payload: event of \d+ bytes exceeds the {SMALL_LIMIT}-byte limit; put large content "
            r"in the artifact store and send a reference; nothing was published"
        ),
    ),
    (
        "markup-in-user-text",  # user text reaches the terminal as typed, never as rich markup
        PORTFOLIO_TRADES,
        jsonl({**GOOD[0], "key": "[/bold]PM-X"}),
        "line 1, field key: key '[/bold]PM-X' must equal payload.portfolio_id 'PM-CLI' so that one subject's "
        "events stay in order on one partition; nothing was published",
    ),
    (
        "empty",
        PORTFOLIO_TRADES,
        "\n\n",
        "line 0: no events given; nothing was published",
    ),
    (
        "not-a-user-topic",
        "alerts",
        jsonl(GOOD[0]),
        f"line 0, field topic: 'alerts' is not a topic users publish to; use one of {list(USER_TOPICS)}; "
        "nothing was published",
    ),
]


def check_refusal(result: Result, expected: str | re.Pattern[str]) -> None:
    assert result.exit_code == 1, result.output
    text = said(result)
    assert "Traceback" not in result.output
    if isinstance(expected, re.Pattern):
        assert expected.fullmatch(text.removeprefix("error: ")), text
    else:
        assert text == f"error: {expected}"


class TransportSpy:
    """Stands in for `risklab.servers.open_transport`: one memory transport, and who asked for it."""

    def __init__(self) -> None:
        self.transport = MemoryTransport(topic_specs(6, SMALL_LIMIT))
        self.opened: list[str] = []

    def __call__(self, settings: Settings, *, client_id: str = "risklab") -> Transport:
        self.opened.append(client_id)
        return self.transport

    async def published(self, *topics: str) -> int:
        return sum((await self.transport.end_offsets(list(topics or USER_TOPICS))).values())


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> TransportSpy:
    spy = TransportSpy()
    monkeypatch.setattr(risklab.servers, "open_transport", spy)
    return spy


@pytest.mark.parametrize(("topic", "content", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
async def test_publish_of_a_bad_file_names_line_field_reason_and_publishes_nothing(
    spy: TransportSpy, tmp_path: Path, topic: str, content: str, expected: str | re.Pattern[str]
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(content)
    result = await asyncio.to_thread(invoke, ["publish", topic, str(source)], base_env())
    check_refusal(result, expected)
    assert spy.opened == []  # refused before any connection was made
    assert await spy.published() == 0


async def test_publish_of_a_good_file_publishes_every_line(spy: TransportSpy, tmp_path: Path) -> None:
    source = tmp_path / "trades.jsonl"
    source.write_text(jsonl(GOOD[0], "", *GOOD[1:]))
    result = await asyncio.to_thread(invoke, ["publish", PORTFOLIO_TRADES, str(source)], base_env())
    assert result.exit_code == 0, result.output
    assert said(result) == "published 5 events to portfolio.trades"
    assert spy.opened == ["risklab-cli"]
    assert await spy.published(PORTFOLIO_TRADES) == 5
    assert await spy.published() == 5


async def test_publish_reads_standard_input(spy: TransportSpy) -> None:
    result = await asyncio.to_thread(invoke, ["publish", PORTFOLIO_TRADES, "-"], base_env(), jsonl(GOOD[0]))
    assert result.exit_code == 0, result.output
    assert said(result) == "published 1 event to portfolio.trades"
    assert await spy.published(PORTFOLIO_TRADES) == 1


async def test_publish_of_bad_standard_input_publishes_nothing(spy: TransportSpy) -> None:
    result = await asyncio.to_thread(
        invoke, ["publish", PORTFOLIO_TRADES, "-"], base_env(), jsonl(GOOD[0], without_notional(GOOD[1]))
    )
    check_refusal(result, "line 2, field payload.notional: Field required; nothing was published")
    assert spy.opened == []
    assert await spy.published() == 0


def test_publish_of_a_missing_file_says_so(spy: TransportSpy, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = invoke(["publish", PORTFOLIO_TRADES, str(missing)], base_env())
    assert result.exit_code == 1
    assert said(result) == f"error: cannot read {missing}: No such file or directory"
    assert spy.opened == []


# -- other commands --------------------------------------------------------------------------


def test_help_lists_the_commands() -> None:
    result = invoke(["--help"])
    assert result.exit_code == 0, result.output
    listed = set(re.findall(r"^│ (\S+)", _ANSI.sub("", result.output), re.MULTILINE))
    assert {
        "demo",
        "publish",
        "alerts",
        "board",
        "audit",
        "replay",
        "schemas",
        "stack",
        "run",
        "health",
        "compute",
    } <= listed, result.output


def test_no_arguments_prints_help() -> None:
    result = invoke([])
    assert result.exit_code in (0, 2)
    assert "Usage:" in result.output
    assert "publish" in result.output


def test_schemas_check_passes_on_the_repository() -> None:
    result = invoke(["schemas", "check", "--directory", str(REPO / "schemas")])
    assert result.exit_code == 0, result.output
    assert said(result) == f"schemas in {REPO / 'schemas'} match the event catalog"


def test_schemas_check_fails_on_a_stale_folder(tmp_path: Path) -> None:
    import shutil

    stale = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", stale)
    (stale / "portfolio.trade_booked" / "v1.json").unlink()
    result = invoke(["schemas", "check", "--directory", str(stale)])
    assert result.exit_code == 1, result.output
    assert "portfolio.trade_booked" in said(result)
    assert said(result).endswith(f"in {stale}")


def test_run_of_an_unknown_group_fails_with_a_clear_message() -> None:
    result = invoke(["run", "nosuchgroup"], base_env())
    assert result.exit_code == 1
    known = ", ".join([*ACTOR_GROUPS, "api"])
    assert said(result) == f"error: unknown group 'nosuchgroup'; known: {known}"
    assert "Traceback" not in result.output


def test_audit_show_of_a_bad_uuid_names_the_field() -> None:
    result = invoke(["audit", "show", "not-a-uuid"], base_env())
    assert result.exit_code == 1
    assert said(result) == "error: correlation_id: 'not-a-uuid' is not a UUID"


# -- on the real Kafka -----------------------------------------------------------------------


@pytest.fixture
async def kafka_namespace(servers: Any) -> Any:
    """A fresh namespace on the session's Kafka with its user topics for markets and trades created."""
    namespace = f"clitest-{uuid.uuid4().hex[:10]}"
    specs = [
        dataclasses.replace(s, name=f"{namespace}.{s.name}")
        for s in topic_specs(3, SMALL_LIMIT)
        if s.name in (PORTFOLIO_TRADES, MARKET_DATA)
    ]
    admin = KafkaTransport(servers.kafka_bootstrap, client_id="cli-test-admin", specs=specs)
    await admin.start()
    try:
        await admin.ensure_topics(specs)

        async def published() -> dict[str, int]:
            ends = await admin.end_offsets([s.name for s in specs])
            return {
                s.name.removeprefix(f"{namespace}."): sum(v for tp, v in ends.items() if tp.topic == s.name)
                for s in specs
            }

        yield namespace, published
        await admin.delete_topics([s.name for s in specs])
    finally:
        await admin.close()


@pytest.mark.integration
async def test_bad_files_publish_nothing_on_real_kafka(servers: Any, kafka_namespace: Any, tmp_path: Path) -> None:
    namespace, published = kafka_namespace
    env = base_env(RISKLAB_KAFKA_BOOTSTRAP=servers.kafka_bootstrap, RISKLAB_NAMESPACE=namespace)
    for name, topic, content, expected in BAD_FILES:
        source = tmp_path / f"{name}.jsonl"
        source.write_text(content)
        result = await asyncio.to_thread(invoke, ["publish", topic, str(source)], env)
        check_refusal(result, expected)
        assert await published() == {PORTFOLIO_TRADES: 0, MARKET_DATA: 0}, name


@pytest.mark.integration
async def test_good_file_publishes_every_line_on_real_kafka(servers: Any, kafka_namespace: Any, tmp_path: Path) -> None:
    namespace, published = kafka_namespace
    env = base_env(RISKLAB_KAFKA_BOOTSTRAP=servers.kafka_bootstrap, RISKLAB_NAMESPACE=namespace)
    source = tmp_path / "trades.jsonl"
    source.write_text(jsonl(*GOOD))
    result = await asyncio.to_thread(invoke, ["publish", PORTFOLIO_TRADES, str(source)], env)
    assert result.exit_code == 0, result.output
    assert said(result) == "published 5 events to portfolio.trades"
    assert await published() == {PORTFOLIO_TRADES: 5, MARKET_DATA: 0}
