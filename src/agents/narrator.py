"""The narrator: writes the short narrative an agent attaches to its conclusion.

Every figure in an event comes from the engines; the narrative only explains them. Without an
Anthropic API key the narrative is a deterministic template filled with the figures, so the same
events always carry the same words. With a key, Claude (through the `anthropic` SDK) is asked to
explain the figures; the exact prompt and reply are kept in the `Narrative` for the audit trail.
A language-model call that fails, is too slow or answers nothing never stops an agent: the
template text is used instead and `fallback_reason` says what happened.
"""

from __future__ import annotations

import asyncio
import json
import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import anthropic

from bus.events.narrative import Narrative

__all__ = [
    "SYSTEM_INSTRUCTION",
    "Brief",
    "LanguageModelNarrator",
    "NarrativeTemplateError",
    "Narrator",
    "TemplateNarrator",
    "narrator_from",
    "recorded_prompt",
    "template_fields",
    "user_message",
]

_log = logging.getLogger(__name__)

SYSTEM_INSTRUCTION = (
    "You explain the computed figures of a risk agent to a bank's risk committee. "
    "Write at most 120 words of plain prose. Use only the figures given in the facts, quoted as given "
    "with their units or currencies; do not invent, estimate or recompute any number. "
    "Say what the figures mean and what stands out. Give no advice to retail clients and no "
    "investment recommendations."
)
"""The system instruction sent with every narrative request (part of the recorded prompt)."""

_MAX_REASON_CHARS = 500


class NarrativeTemplateError(ValueError):
    """An agent's narrative template does not fit its facts: a programming error, not a runtime one."""


@dataclass(frozen=True)
class Brief:
    """What an agent asks the narrator to explain.

    `facts` holds the computed figures (JSON-able, top-level keys are template fields);
    `template` is a `str.format` template over those keys that gives the deterministic text, used
    when no language model is configured and whenever the language model fails.
    """

    agent: str
    subject: str
    facts: Mapping[str, Any]
    template: str

    def deterministic_text(self) -> str:
        """The template filled with the facts; raises `NarrativeTemplateError` if they do not fit."""
        try:
            text = self.template.format(**self.facts)
        except KeyError as exc:
            missing = exc.args[0] if exc.args else "?"
            raise NarrativeTemplateError(
                f"narrative template of agent {self.agent!r} names {missing!r}, which is not among its facts "
                f"({', '.join(sorted(map(str, self.facts))) or 'none'})"
            ) from exc
        except (IndexError, ValueError, AttributeError, TypeError) as exc:
            raise NarrativeTemplateError(
                f"narrative template of agent {self.agent!r} does not fit its facts: {type(exc).__name__}: {exc}"
            ) from exc
        text = text.strip()
        if not text:
            raise NarrativeTemplateError(f"narrative template of agent {self.agent!r} gives an empty text")
        return text

    def facts_json(self) -> str:
        """The facts as indented JSON with sorted keys: the same facts always give the same text."""
        return json.dumps(self.facts, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@runtime_checkable
class Narrator(Protocol):
    """Writes the narrative of one brief. Implementations never raise for language-model failures."""

    async def narrate(self, brief: Brief) -> Narrative: ...


class TemplateNarrator:
    """The deterministic narrator: the brief's template filled with its facts."""

    async def narrate(self, brief: Brief) -> Narrative:
        return Narrative(text=brief.deterministic_text(), source="template")


def user_message(brief: Brief) -> str:
    """The user message of a narrative request: agent, subject and the facts as sorted JSON."""
    return (
        f"Agent: {brief.agent}\n"
        f"Subject: {brief.subject}\n"
        "Facts (computed by the engines; use only these figures):\n"
        f"{brief.facts_json()}"
    )


def recorded_prompt(system: str, user: str) -> str:
    """The prompt as kept in the narrative: the system instruction and the user message, verbatim."""
    return f"[system]\n{system}\n\n[user]\n{user}"


class LanguageModelNarrator:
    """Asks a language model through the Messages API to explain the brief's figures.

    The call runs under a timeout; any failure (timeout, API or connection error, empty reply)
    yields the template text with `fallback_reason` set, and the prompt still recorded. Give the
    client `max_retries=0`: a fallback should come after one attempt, not after the SDK's backoff.
    """

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        model: str,
        timeout_seconds: float,
        max_tokens: int = 400,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self._client = client
        self.model = model
        self.timeout_seconds = float(timeout_seconds)
        self.max_tokens = max_tokens

    async def narrate(self, brief: Brief) -> Narrative:
        # the template is checked first, so a template error surfaces whether or not the model answers
        fallback_text = brief.deterministic_text()
        user = user_message(brief)
        prompt = recorded_prompt(SYSTEM_INSTRUCTION, user)
        try:
            async with asyncio.timeout(self.timeout_seconds):  # wait_for can lose a cancellation on 3.11
                reply = await self._client.messages.create(
                    model=self.model,
                    max_tokens=self.max_tokens,
                    system=SYSTEM_INSTRUCTION,
                    messages=[{"role": "user", "content": user}],
                    timeout=self.timeout_seconds,
                )
            reply_text = "".join(block.text for block in reply.content if block.type == "text")
            if not reply_text.strip():
                reason = f"language model returned an empty reply (stop_reason {reply.stop_reason})"
                return self._fallback(brief, fallback_text, prompt, reason, reply=reply_text or None)
            return Narrative(
                text=reply_text.strip(),
                source="language_model",
                model=self.model,
                prompt=prompt,
                reply=reply_text,
            )
        except (TimeoutError, anthropic.APITimeoutError):
            reason = f"language model timed out after {self.timeout_seconds} s"
        except anthropic.APIStatusError as exc:
            detail = exc.api_message or exc.message
            reason = f"language model error: {type(exc).__name__} {exc.status_code}: {detail}"
        except anthropic.APIConnectionError as exc:
            reason = f"language model unreachable: {type(exc).__name__}: {exc.message}"
        except Exception as exc:  # any other failure of the model call must not stop the agent
            reason = f"language model error: {type(exc).__name__}: {exc}"
        return self._fallback(brief, fallback_text, prompt, reason)

    def _fallback(self, brief: Brief, text: str, prompt: str, reason: str, reply: str | None = None) -> Narrative:
        reason = self._redacted(reason)
        if len(reason) > _MAX_REASON_CHARS:
            reason = reason[: _MAX_REASON_CHARS - 1] + "…"
        _log.warning("narrative of %s (%s) falls back to its template: %s", brief.agent, brief.subject, reason)
        return Narrative(
            text=text, source="template", model=self.model, prompt=prompt, reply=reply, fallback_reason=reason
        )

    def _redacted(self, text: str) -> str:
        """The text without the API key, should an error message ever echo it."""
        key = getattr(self._client, "api_key", None)
        return text.replace(key, "[api key]") if isinstance(key, str) and key else text

    async def aclose(self) -> None:
        """Close the SDK client's connections."""
        await self._client.close()


def narrator_from(api_key: str | None, *, base_url: str | None, model: str, timeout_seconds: float) -> Narrator:
    """The narrator for a configuration: Claude when an API key is set, the templates otherwise."""
    if api_key is None or not api_key.strip():
        return TemplateNarrator()
    client = anthropic.AsyncAnthropic(api_key=api_key.strip(), base_url=base_url, max_retries=0)
    return LanguageModelNarrator(client, model=model, timeout_seconds=timeout_seconds)


def template_fields(template: str) -> set[str]:
    """The top-level fact names a template uses (to check a template against its facts in tests)."""
    return {
        field.split(".", 1)[0].split("[", 1)[0]
        for _, field, _, _ in string.Formatter().parse(template)
        if field is not None and field != ""
    }
