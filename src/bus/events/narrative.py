"""The narrative an agent attaches to its conclusion, with what produced it, for the audit trail."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Narrative(BaseModel):
    """A short explanation of an agent's computed figures.

    The figures in an event come only from the engines; the narrative explains them. When a
    language model wrote it, the prompt and the reply are kept verbatim so that an auditor sees
    exactly what was asked and answered; when the model failed or was too slow, the deterministic
    template text is used and `fallback_reason` says why.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(min_length=1, max_length=20_000)
    source: Literal["template", "language_model"]
    model: str | None = Field(default=None, description="The language model that wrote it, if one did.")
    prompt: str | None = Field(default=None, description="The prompt sent to the language model, verbatim.")
    reply: str | None = Field(default=None, description="The language model's reply, verbatim.")
    fallback_reason: str | None = Field(
        default=None, description="Why the language model's answer was not used (error, timeout), if it was asked."
    )
