"""Field types shared by event payloads: currencies, identifiers, finite numbers."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(description="ISO 4217 code, e.g. USD.")]
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]*$"),
    Field(description="An identifier: letters, digits and _ . : / -"),
]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]


class ArtifactRef(BaseModel):
    """A document or data set in the artifact store, by content address."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str = Field(min_length=1, max_length=2000, description="file:// or s3:// URI of the artifact.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the artifact's bytes.")
    media_type: str = Field("application/json", max_length=100)
