"""The narrator: deterministic templates, and Claude through the real `anthropic` SDK against a local
Messages API server, with its fallbacks on errors, timeouts and empty replies."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import anthropic
import httpx
import pytest
from messages_api_server import FailWith, MessagesApiServer, ReplyEmpty, ReplyWith, StallFor

from agents.narrator import (
    SYSTEM_INSTRUCTION,
    Brief,
    LanguageModelNarrator,
    NarrativeTemplateError,
    Narrator,
    TemplateNarrator,
    narrator_from,
    template_fields,
)
from bus.events.narrative import Narrative

API_KEY = "sk-test-narrator-0123456789"
MODEL = "claude-test-model"
BRIEF = Brief(
    agent="risk-manager",
    subject="stress results for request r-1",
    facts={
        "worst_loss_eur": -1_234_567.89,
        "scenario": "rates +200bp",
        "limit_eur": 2_000_000,
        "breaches": ["desk-a"],
    },
    template="Worst loss {worst_loss_eur:,.2f} EUR under {scenario}, against a limit of {limit_eur:,} EUR.",
)
EXPECTED_TEMPLATE_TEXT = "Worst loss -1,234,567.89 EUR under rates +200bp, against a limit of 2,000,000 EUR."


@pytest.fixture
def server() -> Iterator[MessagesApiServer]:
    with MessagesApiServer() as running:
        yield running


@pytest.fixture
async def client(server: MessagesApiServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    sdk = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=server.base_url, max_retries=0)
    try:
        yield sdk
    finally:
        await sdk.close()


def narrator(client: anthropic.AsyncAnthropic, timeout_seconds: float = 2.0) -> LanguageModelNarrator:
    return LanguageModelNarrator(client, model=MODEL, timeout_seconds=timeout_seconds)


# --- templates -------------------------------------------------------------------------------


async def test_template_narrative_is_the_filled_template_every_time() -> None:
    first = await TemplateNarrator().narrate(BRIEF)
    second = await TemplateNarrator().narrate(BRIEF)
    assert first == second == Narrative(text=EXPECTED_TEMPLATE_TEXT, source="template")
    assert first.prompt is None and first.reply is None and first.fallback_reason is None


async def test_template_naming_a_missing_fact_is_a_clear_error() -> None:
    brief = Brief(agent="margin-analyst", subject="s", facts={"im_eur": 1.0}, template="IM {im_eur} VM {vm_eur}")
    with pytest.raises(NarrativeTemplateError, match=r"'margin-analyst'.*'vm_eur'.*im_eur"):
        await TemplateNarrator().narrate(brief)


def test_template_fields_lists_the_top_level_facts_used() -> None:
    assert template_fields(BRIEF.template) == {"worst_loss_eur", "scenario", "limit_eur"}
    assert template_fields("{a.b} {c[0]} {{literal}}") == {"a", "c"}


def test_narrator_from_without_a_key_writes_templates() -> None:
    for key in (None, "", "   "):
        chosen = narrator_from(key, base_url=None, model=MODEL, timeout_seconds=1.0)
        assert isinstance(chosen, TemplateNarrator)
        assert isinstance(chosen, Narrator)


# --- the language model through the real SDK --------------------------------------------------


async def test_language_model_reply_and_prompt_are_recorded(
    server: MessagesApiServer, client: anthropic.AsyncAnthropic
) -> None:
    server.behaviour = ReplyWith("  The worst loss of -1,234,567.89 EUR stays inside the 2,000,000 EUR limit.\n")

    narrative = await narrator(client).narrate(BRIEF)

    assert narrative.source == "language_model"
    assert narrative.text == "The worst loss of -1,234,567.89 EUR stays inside the 2,000,000 EUR limit."
    assert narrative.reply == "  The worst loss of -1,234,567.89 EUR stays inside the 2,000,000 EUR limit.\n"
    assert narrative.model == MODEL
    assert narrative.fallback_reason is None

    [request] = server.requests
    assert request.path == "/v1/messages"
    assert request.api_key == API_KEY
    assert request.headers.get("anthropic-version")
    assert request.body["model"] == MODEL
    assert request.body["max_tokens"] == 400
    assert request.body["system"] == SYSTEM_INSTRUCTION
    [message] = request.body["messages"]
    assert message["role"] == "user"
    user = message["content"]
    assert "Agent: risk-manager" in user
    assert "Subject: stress results for request r-1" in user
    # the facts travel as indented JSON with sorted keys, exactly as the engines gave them
    facts_text = user[user.index("{") :]
    assert json.loads(facts_text) == BRIEF.facts
    assert facts_text == json.dumps(BRIEF.facts, indent=2, sort_keys=True)
    # the recorded prompt is exactly what was sent
    assert narrative.prompt == f"[system]\n{SYSTEM_INSTRUCTION}\n\n[user]\n{user}"
    assert API_KEY not in narrative.model_dump_json()


async def test_prompt_is_deterministic_whatever_the_order_of_the_facts(
    server: MessagesApiServer, client: anthropic.AsyncAnthropic
) -> None:
    reordered = Brief(
        agent=BRIEF.agent,
        subject=BRIEF.subject,
        facts=dict(reversed(list(BRIEF.facts.items()))),
        template=BRIEF.template,
    )
    first = await narrator(client).narrate(BRIEF)
    second = await narrator(client).narrate(reordered)
    assert first.prompt is not None and first.prompt == second.prompt
    assert server.requests[0].body == server.requests[1].body


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (FailWith(500, "api_error", "Internal server error"), "InternalServerError 500: Internal server error"),
        (FailWith(529, "overloaded_error", "Overloaded"), "529: Overloaded"),
    ],
)
async def test_api_error_falls_back_to_the_template_and_says_why(
    server: MessagesApiServer, client: anthropic.AsyncAnthropic, failure: FailWith, expected: str
) -> None:
    server.behaviour = failure

    narrative = await narrator(client).narrate(BRIEF)

    assert narrative.source == "template"
    assert narrative.text == EXPECTED_TEMPLATE_TEXT
    assert narrative.fallback_reason is not None
    assert narrative.fallback_reason.startswith("language model error: ")
    assert expected in narrative.fallback_reason
    assert narrative.model == MODEL
    assert narrative.prompt is not None and "Subject: stress results for request r-1" in narrative.prompt
    assert narrative.reply is None
    assert len(server.requests) == 1  # no retries: the fallback comes after one attempt


async def test_slow_model_falls_back_within_the_timeout(
    server: MessagesApiServer, client: anthropic.AsyncAnthropic
) -> None:
    server.behaviour = StallFor(seconds=10.0, then=ReplyWith("too late"))

    started = time.perf_counter()
    narrative = await narrator(client, timeout_seconds=0.3).narrate(BRIEF)
    elapsed = time.perf_counter() - started

    assert 0.25 <= elapsed < 1.5
    assert narrative.source == "template"
    assert narrative.text == EXPECTED_TEMPLATE_TEXT
    assert narrative.fallback_reason == "language model timed out after 0.3 s"
    assert narrative.prompt is not None
    assert len(server.requests) == 1


async def test_empty_reply_falls_back(server: MessagesApiServer, client: anthropic.AsyncAnthropic) -> None:
    server.behaviour = ReplyEmpty()

    narrative = await narrator(client).narrate(BRIEF)

    assert narrative.source == "template"
    assert narrative.text == EXPECTED_TEMPLATE_TEXT
    assert narrative.fallback_reason == "language model returned an empty reply (stop_reason end_turn)"


async def test_whitespace_reply_falls_back_and_keeps_the_reply(
    server: MessagesApiServer, client: anthropic.AsyncAnthropic
) -> None:
    server.behaviour = ReplyWith(" \n ")

    narrative = await narrator(client).narrate(BRIEF)

    assert narrative.source == "template"
    assert narrative.reply == " \n "
    assert narrative.fallback_reason is not None and "empty reply" in narrative.fallback_reason


async def test_unreachable_server_falls_back() -> None:
    with MessagesApiServer() as stopped:
        base_url = stopped.base_url
    sdk = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=base_url, max_retries=0)
    try:
        narrative = await narrator(sdk).narrate(BRIEF)
    finally:
        await sdk.close()
    assert narrative.source == "template"
    assert narrative.fallback_reason is not None
    assert narrative.fallback_reason.startswith("language model unreachable: APIConnectionError")
    assert API_KEY not in narrative.fallback_reason


async def test_template_error_is_raised_even_when_the_model_would_answer(
    server: MessagesApiServer, client: anthropic.AsyncAnthropic
) -> None:
    brief = Brief(agent="xva-analyst", subject="s", facts={"cva_eur": 1.0}, template="CVA {dva_eur}")
    with pytest.raises(NarrativeTemplateError, match=r"'xva-analyst'.*'dva_eur'"):
        await narrator(client).narrate(brief)
    assert server.requests == []


async def test_narrator_from_with_a_key_asks_the_configured_server(server: MessagesApiServer) -> None:
    server.behaviour = ReplyWith("Explained.")
    chosen = narrator_from(API_KEY, base_url=server.base_url, model=MODEL, timeout_seconds=2.0)
    assert isinstance(chosen, LanguageModelNarrator)
    try:
        narrative = await chosen.narrate(BRIEF)
    finally:
        await chosen.aclose()
    assert (narrative.source, narrative.text, narrative.model) == ("language_model", "Explained.", MODEL)
    [request] = server.requests
    assert request.api_key == API_KEY
    assert request.headers.get("x-stainless-retry-count") == "0"


async def test_narrator_from_client_does_not_retry(server: MessagesApiServer) -> None:
    server.behaviour = FailWith(529, "overloaded_error", "Overloaded")
    chosen = narrator_from(API_KEY, base_url=server.base_url, model=MODEL, timeout_seconds=2.0)
    assert isinstance(chosen, LanguageModelNarrator)
    try:
        narrative = await chosen.narrate(BRIEF)
    finally:
        await chosen.aclose()
    assert narrative.source == "template"
    assert len(server.requests) == 1


def test_server_refuses_a_request_without_a_key_as_the_api_does(server: MessagesApiServer) -> None:
    response = httpx.post(f"{server.base_url}/v1/messages", json={"model": MODEL, "messages": []})
    assert response.status_code == 401
    assert response.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }
    [request] = server.requests
    assert request.api_key is None and request.body["model"] == MODEL
