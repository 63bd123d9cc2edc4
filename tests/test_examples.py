"""The example files the README points to stay valid and agree with the bundled samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines import registry
from risklab.ingest import parse_submissions
from risklab.samples import sample_events

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("topic", "name"),
    [("market.data", "market.jsonl"), ("portfolio.trades", "trades.jsonl"), ("risk.indicators", "indicators.jsonl")],
)
def test_example_files_validate_and_match_the_samples(topic: str, name: str) -> None:
    lines = (EXAMPLES / name).read_text().splitlines()
    envelopes = parse_submissions(topic, lines, producer="test", max_message_bytes=1 << 20)
    samples = [e.submission for e in sample_events() if e.topic == topic]
    assert len(envelopes) == len(samples) > 0
    assert [e.payload for e in envelopes] == [
        json.loads(json.dumps(s["payload"])) for s in samples
    ]


def test_example_option_inputs_run_on_the_engine() -> None:
    inputs = json.loads((EXAMPLES / "option.json").read_text())
    result = registry.run("mc.european_option", inputs, 7)
    closed = registry.run("bs.european_option", {k: v for k, v in inputs.items() if k != "paths"}, None)
    assert abs(result["price"] - closed["price"]) < 4 * result["standard_error"]
