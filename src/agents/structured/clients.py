"""The client base the distribution specialist segments: the client model, the sample generator and the loader.

A client is described by what a private bank's suitability questionnaire records: risk tolerance,
investment horizon, product knowledge (sophistication), portfolio size in EUR and the booking
jurisdiction, plus age. The desk ships a bundled sample (`data/clients-sample-v1.csv`): exactly the
output of `generate_client_base()` with its defaults, regenerated with
`python -m agents.structured.clients --write` and checked against a fresh generation by the tests,
so the file cannot drift from the generator.

The generator draws correlated attributes from one seeded numpy Generator: a latent wealth factor
drives a log-normal portfolio size (median 400,000 EUR) and raises age and sophistication; risk
tolerance rises with wealth and sophistication and falls with age; the horizon shortens with age
and lengthens with risk tolerance. Categorical attributes come from fixed thresholds on linear
combinations of normal draws, and the continuous ones are rounded (horizon to 0.1 year, portfolio
to 100 EUR), so the output does not depend on the last bit of a platform's `exp`.

`load_client_base` reads a CSV or a JSON list of clients and validates every row; an error names
the file, the row (the 1-based position of the client among the file's clients, header not
counted) and the field, e.g. ``clients.csv row 17: risk_tolerance: 'mid' is not one of low,
medium, high, very_high``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

RiskTolerance = Literal["low", "medium", "high", "very_high"]
Sophistication = Literal["basic", "informed", "advanced"]

RISK_TOLERANCES: tuple[str, ...] = get_args(RiskTolerance)
SOPHISTICATIONS: tuple[str, ...] = get_args(Sophistication)

# Booking jurisdictions of a continental private bank and their share of the sample.
JURISDICTION_SHARES: dict[str, float] = {
    "DE": 0.22,
    "FR": 0.16,
    "IT": 0.14,
    "ES": 0.10,
    "CH": 0.10,
    "GB": 0.08,
    "LU": 0.06,
    "NL": 0.06,
    "AT": 0.04,
    "BE": 0.04,
}
JURISDICTIONS: tuple[str, ...] = tuple(JURISDICTION_SHARES)

DEFAULT_SIZE = 3000
DEFAULT_SEED = 20261124
SAMPLE_NAME = "clients-sample-v1.csv"
SAMPLE_PATH = Path(__file__).resolve().parent / "data" / SAMPLE_NAME
COLUMNS: tuple[str, ...] = (
    "client_id",
    "age",
    "risk_tolerance",
    "horizon_years",
    "sophistication",
    "portfolio_size",
    "jurisdiction",
)
MEDIAN_PORTFOLIO_EUR = 400_000.0


class Client(BaseModel):
    """One client as the suitability questionnaire records them (portfolio size in EUR)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", description='e.g. "C00017".')
    age: int | None = Field(None, ge=18, le=120)
    risk_tolerance: RiskTolerance
    horizon_years: float = Field(ge=1, le=20, allow_inf_nan=False, description="Investment horizon in years.")
    sophistication: Sophistication
    portfolio_size: float = Field(gt=0, allow_inf_nan=False, description="Investable portfolio in EUR.")
    jurisdiction: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 booking jurisdiction.")


@dataclass(frozen=True)
class ClientBase:
    """A validated client base and where it came from.

    `source` is what was asked for ("sample" or a path/URI), `name` the file name used in messages,
    `sha256` the digest of the file's bytes (the version of the data the plan was made on).
    """

    clients: tuple[Client, ...]
    source: str
    name: str
    sha256: str

    def __len__(self) -> int:
        return len(self.clients)

    @property
    def ref(self) -> str:
        """A short reference for events and logs: source, file name and digest."""
        return f"{self.source}:{self.name}@sha256:{self.sha256}"


class ClientBaseError(ValueError):
    """A client base that cannot be used; `errors` lists every problem, each naming the row and field."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        shown = self.errors[:20]
        more = len(self.errors) - len(shown)
        text = "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")
        super().__init__(text)


# ----------------------------------------------------------------------------------------------
# generation


def _threshold(values: np.ndarray, cuts: Sequence[float], labels: Sequence[str]) -> list[str]:
    """Label each value by the interval of `cuts` it falls in (len(labels) == len(cuts) + 1)."""
    index = np.searchsorted(np.asarray(cuts, dtype=np.float64), values, side="right")
    return [labels[int(i)] for i in index]


def generate_client_base(n: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> list[Client]:
    """A deterministic synthetic client base of `n` clients with realistically correlated attributes.

    See the module docstring for the model. The same (n, seed) gives the same clients on any
    platform; the defaults give the bundled sample.
    """
    if n < 1:
        raise ValueError(f"n: a client base needs at least one client, got {n}")
    rng = np.random.default_rng(seed)
    wealth = rng.standard_normal(n)
    age_noise = rng.standard_normal(n)
    soph_noise = rng.standard_normal(n)
    risk_noise = rng.standard_normal(n)
    horizon_noise = rng.standard_normal(n)
    jurisdiction_index = rng.choice(len(JURISDICTIONS), size=n, p=list(JURISDICTION_SHARES.values()))

    ages = np.clip(np.round(56.0 + 12.0 * (0.35 * wealth + 0.94 * age_noise)), 22, 92).astype(int)
    age_std = (ages - 56.0) / 12.0
    soph_latent = 0.55 * wealth + 0.835 * soph_noise
    risk_latent = 0.30 * wealth + 0.30 * soph_latent - 0.35 * age_std + 0.80 * risk_noise
    sophistication = _threshold(soph_latent, [-0.25, 0.85], SOPHISTICATIONS)
    risk = _threshold(risk_latent, [-0.85, 0.25, 1.15], RISK_TOLERANCES)

    clients = []
    width = max(5, len(str(n)))
    for i in range(n):
        log_portfolio = math.log(MEDIAN_PORTFOLIO_EUR) + 1.1 * float(wealth[i])
        portfolio = min(max(round(math.exp(log_portfolio), -2), 20_000.0), 50_000_000.0)
        log_horizon = (
            math.log(5.5) - 0.35 * float(age_std[i]) + 0.15 * float(risk_latent[i]) + 0.45 * float(horizon_noise[i])
        )
        horizon = min(max(round(math.exp(log_horizon), 1), 1.0), 20.0)
        clients.append(
            Client(
                client_id=f"C{i + 1:0{width}d}",
                age=int(ages[i]),
                risk_tolerance=risk[i],  # type: ignore[arg-type]
                horizon_years=horizon,
                sophistication=sophistication[i],  # type: ignore[arg-type]
                portfolio_size=float(portfolio),
                jurisdiction=JURISDICTIONS[int(jurisdiction_index[i])],
            )
        )
    return clients


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def clients_to_csv(clients: Iterable[Client]) -> str:
    """The clients as CSV text (header, one row per client, "\\n" line ends); loads back to equal clients."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for client in clients:
        writer.writerow([_format(getattr(client, column)) for column in COLUMNS])
    return out.getvalue()


def write_sample(path: Path = SAMPLE_PATH) -> Path:
    """Write the bundled sample (the default generation) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(clients_to_csv(generate_client_base()), encoding="utf-8", newline="")
    return path


# ----------------------------------------------------------------------------------------------
# loading


def _field_message(error: Any) -> str:
    """One pydantic error as "field: message", with the allowed values spelled out for choices."""
    field = ".".join(str(part) for part in error["loc"]) or "row"
    value = error.get("input")
    kind = error["type"]
    if kind == "literal_error":
        allowed = str(error["ctx"]["expected"]).replace("'", "").replace(" or ", ", ")
        return f"{field}: {value!r} is not one of {allowed}"
    if kind == "missing":
        return f"{field}: missing"
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
    if field == "jurisdiction" and kind == "string_pattern_mismatch":
        return f"jurisdiction: {value!r} is not an ISO 3166-1 alpha-2 code (e.g. DE, CH)"
    return f"{field}: {value!r}: {error['msg']}"


Row = tuple[int, dict[str, Any] | str]  # (row number, the row's fields or what is wrong with its shape)


def _validate_rows(rows: Iterable[Row], name: str) -> list[Client]:
    clients: list[Client] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        if isinstance(row, str):
            errors.append(f"{name} row {number}: {row}")
            continue
        try:
            client = Client.model_validate(row)
        except ValidationError as exc:
            errors.extend(f"{name} row {number}: {_field_message(e)}" for e in exc.errors())
            continue
        if client.client_id in seen:
            errors.append(f"{name} row {number}: client_id: {client.client_id!r} repeats row {seen[client.client_id]}")
            continue
        seen[client.client_id] = number
        clients.append(client)
    if errors:
        raise ClientBaseError(errors)
    if not clients:
        raise ClientBaseError([f"{name}: no clients"])
    return clients


def _csv_rows(text: str, name: str) -> list[Row]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise ClientBaseError([f"{name}: empty file, expected a header {','.join(COLUMNS)}"])
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header and c != "age"]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if len(set(header)) != len(header):
            problems.append("repeated column names")
        raise ClientBaseError([f"{name} header: {'; '.join(problems)} (expected {','.join(COLUMNS)})"])
    rows: list[Row] = []
    for number, values in enumerate(reader, start=1):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            rows.append((number, f"{len(values)} values for {len(header)} columns"))
            continue
        row: dict[str, Any] = {}
        for column, value in zip(header, values, strict=True):
            value = value.strip()
            if column == "age" and value == "":
                continue
            row[column] = value
        rows.append((number, row))
    return rows


def _json_rows(text: str, name: str) -> list[Row]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientBaseError([f"{name}: not valid JSON: {exc}"]) from exc
    if isinstance(data, dict) and "clients" in data:
        data = data["clients"]
    if not isinstance(data, list):
        raise ClientBaseError([f"{name}: expected a JSON list of clients (or an object with a 'clients' list)"])
    return [
        (number, item if isinstance(item, dict) else f"expected an object with fields {', '.join(COLUMNS)}")
        for number, item in enumerate(data, start=1)
    ]


def parse_client_base(data: bytes, name: str, source: str | None = None) -> ClientBase:
    """Validate a client base given as bytes (CSV, or JSON when `name` ends in .json or the text starts with [ or {).

    For bases fetched from elsewhere (an artifact store); `name` is used in error messages.
    """
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClientBaseError([f"{name}: not UTF-8 text: {exc}"]) from exc
    is_json = name.lower().endswith(".json") or text.lstrip()[:1] in ("[", "{")
    rows = _json_rows(text, name) if is_json else _csv_rows(text, name)
    clients = _validate_rows(rows, name)
    return ClientBase(clients=tuple(clients), source=source or name, name=name, sha256=digest)


def load_client_base(source: str | Path = "sample") -> ClientBase:
    """Load and validate a client base: "sample" (the bundled one) or a CSV/JSON file path.

    Raises ClientBaseError listing every invalid row, each naming the file, row number and field.
    """
    if isinstance(source, str) and source == "sample":
        path = SAMPLE_PATH
        label = "sample"
    else:
        path = Path(source)
        label = str(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ClientBaseError([f"{label}: cannot read {path}: {exc.strerror or exc}"]) from exc
    return parse_client_base(data, path.name, source=label)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m agents.structured.clients --write | --check`: regenerate or verify the bundled sample."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help=f"write {SAMPLE_PATH}")
    group.add_argument("--check", action="store_true", help="exit 1 when the bundled sample differs")
    args = parser.parse_args(argv)
    if args.write:
        print(write_sample())
        return 0
    expected = clients_to_csv(generate_client_base())
    actual = SAMPLE_PATH.read_text(encoding="utf-8") if SAMPLE_PATH.exists() else ""
    if actual != expected:
        print(f"{SAMPLE_PATH} differs from generate_client_base(); run with --write", file=sys.stderr)
        return 1
    print(f"{SAMPLE_PATH} is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
