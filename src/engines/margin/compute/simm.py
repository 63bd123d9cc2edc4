"""Compute kind `margin.simm`: ISDA SIMM initial margin of CRIF sensitivities.

Inputs (one of the first two):

- ``crif``: a list of CRIF records as objects keyed by CRIF column names (``RiskType``,
  ``Qualifier``, ``AmountUSD``, ...; any case, underscores allowed);
- ``crif_csv``: the text of a CRIF CSV file;
- ``parameters_version`` (optional): the SIMM calibration, default "2.6";
- ``side`` (optional): "call" (margin to collect, sensitivities as given; the default) or "post"
  (margin to post: the sensitivities negated);
- ``calculation_currency`` (optional): default "USD"; Risk_FX to it is left out.

Result: ``{"parameters_version", "side", "calculation_currency", "portfolios": {PortfolioID:
SimmResult as JSON}, "portfolios_total_usd"}``, one SIMM per portfolio (each its own netting set;
the total is a plain sum, not a netted margin). Not chunkable: SIMM aggregates everything at once
and takes milliseconds. Errors name the field: ``crif[3].AmountUSD``, or ``crif_csv`` with the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engines.registry import InvalidInputs, check_fields, choice, register

MAX_RECORDS = 500_000
FIELDS_OPTIONAL = ("crif", "crif_csv", "parameters_version", "side", "calculation_currency")


@register("margin.simm")
def margin_simm(inputs: Mapping[str, Any], seed: int | None = None) -> dict[str, Any]:
    """ISDA SIMM initial margin per portfolio of CRIF sensitivities (records or CSV text)."""
    from engines.margin.simm import CrifFileError, CrifRecord, SimmInputError, read_crif, simm_by_portfolio
    from engines.margin.simm.parameters import DEFAULT_VERSION, available_versions, load_parameters

    check_fields(inputs, (), FIELDS_OPTIONAL)
    if ("crif" in inputs) == ("crif_csv" in inputs):
        raise InvalidInputs("crif", "give the records as crif (a list) or the file text as crif_csv, not both or none")
    version = inputs.get("parameters_version", DEFAULT_VERSION)
    if version not in available_versions():
        raise InvalidInputs(
            "parameters_version", f"no SIMM parameters for {version!r}; available: {', '.join(available_versions())}"
        )
    side = choice(inputs, "side", ("call", "post")) if "side" in inputs else "call"
    currency = inputs.get("calculation_currency", "USD")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise InvalidInputs("calculation_currency", f"a currency code such as USD, got {currency!r}")
    currency = currency.upper()

    if "crif" in inputs:
        raw = inputs["crif"]
        if not isinstance(raw, list):
            raise InvalidInputs("crif", f"must be a list of CRIF records, got {type(raw).__name__}")
        if len(raw) > MAX_RECORDS:
            raise InvalidInputs("crif", f"at most {MAX_RECORDS} records per request, got {len(raw)}")
        records = []
        for i, item in enumerate(raw):
            try:
                records.append(CrifRecord.from_mapping(item, origin=f"crif[{i}]"))
            except ValueError as exc:
                column, _, reason = str(exc).partition(": ")
                named = reason and " " not in column
                field, why = (f"crif[{i}].{column}", reason) if named else (f"crif[{i}]", str(exc))
                raise InvalidInputs(field, why) from None
    else:
        text = inputs["crif_csv"]
        if not isinstance(text, str):
            raise InvalidInputs("crif_csv", f"must be the text of a CRIF CSV file, got {type(text).__name__}")
        try:
            records = read_crif("crif_csv", text=text)
        except CrifFileError as exc:
            raise InvalidInputs("crif_csv", str(exc).removeprefix("crif_csv ").removeprefix("crif_csv: ")) from None
        if len(records) > MAX_RECORDS:
            raise InvalidInputs("crif_csv", f"at most {MAX_RECORDS} records per request, got {len(records)}")

    try:
        results = simm_by_portfolio(records, load_parameters(version), side=side, calculation_currency=currency)
    except SimmInputError as exc:
        if exc.where.startswith("crif["):
            raise InvalidInputs(f"{exc.where}.{exc.column}", exc.reason) from None
        raise InvalidInputs("crif_csv", f"{exc.where.removeprefix('crif_csv ')}: {exc.column}: {exc.reason}") from None
    return report(results, version, side, currency)


def report(results: Mapping[str, Any], version: str, side: str, currency: str) -> dict[str, Any]:
    """The kind's result for SIMM results by portfolio (the CLI's `--json` prints the same)."""
    return {
        "parameters_version": version,
        "side": side,
        "calculation_currency": currency,
        "portfolios": {name: r.model_dump(mode="json") for name, r in results.items()},
        "portfolios_total_usd": sum(r.total_usd for r in results.values()),
    }
