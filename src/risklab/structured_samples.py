"""The bundled structured-products sample (a EUR market on five indices and a worst-of autocallable) and the
loaders of the desk's JSON files: markets, specs, labs and stress scenarios.

A spec file holds one spec object, a list of specs, `{"specs": [...]}`, or a lab file
`{"base": {...}, "grid": {...}}` (its variations). Every refusal is a `SpecFileError` whose message
names the file and the field: ``autocall.json: coupon.rate: Input should be less than or equal to 1``.

The sample market quotes all five indices in EUR (the engine has no quanto adjustment): SPX, NKY,
SMI and UKX are treated as EUR-denominated for the sake of the example.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engines.registry import split_named_field
from engines.structured.lab import LabGrid, variations
from engines.structured.market import MarketData
from engines.structured.spec import AutocallSpec
from engines.structured.stress import ScenarioSpec

M = TypeVar("M", bound=BaseModel)

SAMPLE_MARKET = "market.json"
SAMPLE_SPEC = "autocall.json"


class SpecFileError(ValueError):
    """A file that cannot be read or does not hold valid data; the message names the file and the field."""


def sample_file(name: str) -> resources.abc.Traversable:
    """A file of the bundled sample (`market.json` or `autocall.json`)."""
    return resources.files("risklab").joinpath("data", "structured", name)


def sample_market() -> MarketData:
    """The bundled EUR market: SX5E, SPX, NKY, SMI and UKX with SSVI-generated implied-vol surfaces."""
    return _validate(MarketData, json.loads(sample_file(SAMPLE_MARKET).read_text()), f"sample {SAMPLE_MARKET}")


def sample_spec() -> AutocallSpec:
    """The bundled 5-year quarterly worst-of phoenix autocallable on SX5E, SPX and NKY."""
    return _validate(AutocallSpec, json.loads(sample_file(SAMPLE_SPEC).read_text()), f"sample {SAMPLE_SPEC}")


def read_json(path: Path | str) -> Any:
    """The JSON content of `path`, or a SpecFileError naming the file (and the line of a syntax error)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise SpecFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SpecFileError(f"{path}: is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecFileError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecFileError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def load_market(path: Path | str) -> MarketData:
    """A MarketData file."""
    return _validate(MarketData, read_json(path), str(path))


def load_specs(path: Path | str) -> list[AutocallSpec]:
    """The specs of a spec file: one spec, a list, {"specs": [...]}, or a lab file (its variations)."""
    data = read_json(path)
    if isinstance(data, dict) and "base" in data:
        base, grid = _lab(data, str(path))
        return grid_variations(base, grid, str(path))
    items, prefix = _spec_items(data, str(path))
    return [_validate(AutocallSpec, item, str(path), f"{prefix}[{i}]" if prefix is not None else "")
            for i, item in enumerate(items)]  # fmt: skip


def load_lab(path: Path | str) -> tuple[AutocallSpec, LabGrid]:
    """The base spec and grid of a lab file; a plain spec object is a base with the default grid."""
    data = read_json(path)
    if isinstance(data, dict) and "base" in data:
        return _lab(data, str(path))
    if not isinstance(data, dict):
        raise SpecFileError(f'{path}: a lab file holds one spec object or {{"base": ..., "grid": ...}}')
    return _validate(AutocallSpec, data, str(path)), LabGrid()


def lab_variations(path: Path | str) -> list[AutocallSpec]:
    """The variations of a lab file (a spec object gets the default grid: at least 75 variations)."""
    base, grid = load_lab(path)
    return grid_variations(base, grid, str(path))


def load_scenarios(path: Path | str) -> list[ScenarioSpec]:
    """A JSON list of stress scenarios (or {"scenarios": [...]})."""
    data = read_json(path)
    prefix = ""
    if isinstance(data, dict) and set(data) == {"scenarios"}:
        data, prefix = data["scenarios"], "scenarios"
    if not isinstance(data, list) or not data:
        raise SpecFileError(f"{path}: give a non-empty JSON list of scenarios")
    out = [_validate(ScenarioSpec, s, str(path), f"{prefix}[{i}]") for i, s in enumerate(data)]
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecFileError(f"{path}: scenario names must be distinct, repeated: {', '.join(dupes)}")
    return out


def check_specs_against_market(specs: Sequence[AutocallSpec], market: MarketData, spec_where: str,
                               market_where: str) -> None:  # fmt: skip
    """Refuse a spec whose underlyings have no market data, or whose currency is not the market's."""
    for s in specs:
        missing = [u for u in s.underlyings if u not in market.underlyings]
        if missing:
            raise SpecFileError(
                f"{spec_where}: spec {s.name!r}: underlyings: no market data for {', '.join(missing)} in "
                f"{market_where}; it has {', '.join(market.names)}"
            )
        if s.currency != market.currency:
            raise SpecFileError(
                f"{spec_where}: spec {s.name!r}: currency: {s.currency} differs from the market's "
                f"{market.currency} ({market_where}); the engine has no quanto or FX conversion"
            )


# ---------------------------------------------------------------------------------------------


def _spec_items(data: Any, where: str) -> tuple[list[Any], str | None]:
    if isinstance(data, list):
        items, prefix = data, ""
    elif isinstance(data, dict) and "specs" in data:
        extra = sorted(set(data) - {"specs"})
        if extra:
            raise SpecFileError(f"{where}: unexpected key(s) {', '.join(extra)} next to specs")
        items, prefix = data["specs"], "specs"
        if not isinstance(items, list):
            raise SpecFileError(f"{where}: specs: give a list of spec objects")
    elif isinstance(data, dict):
        return [data], None
    else:
        raise SpecFileError(f"{where}: a spec file holds a spec object, a list of them, {{\"specs\": [...]}} "
                            "or a lab file {\"base\": ..., \"grid\": ...}")  # fmt: skip
    if not items:
        raise SpecFileError(f"{where}: {prefix or 'the list'}: give at least one spec")
    return items, prefix


def _lab(data: dict[str, Any], where: str) -> tuple[AutocallSpec, LabGrid]:
    extra = sorted(set(data) - {"base", "grid"})
    if extra:
        raise SpecFileError(f"{where}: unexpected key(s) {', '.join(extra)}: a lab file holds base and grid")
    base = _validate(AutocallSpec, data["base"], where, "base")
    grid = _validate(LabGrid, data.get("grid") or {}, where, "grid")
    return base, grid


def grid_variations(base: AutocallSpec, grid: LabGrid, where: str) -> list[AutocallSpec]:
    """The variations of `base` over `grid`; a refusal names `where` (the lab file) and the grid."""
    try:
        out = variations(base, grid)
    except ValueError as exc:
        raise SpecFileError(f"{where}: grid: {exc}") from None
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise SpecFileError(f"{where}: grid: repeated values give variations with the same name")
    return out


def _validate(model: type[M], data: Any, where: str, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecFileError(f"{where}: {describe(exc, prefix)}") from None


def describe(exc: ValidationError, prefix: str = "") -> str:
    """The first error of a ValidationError as ``field.loc: message`` (and how many more there are)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = _join(prefix, first["loc"])
    named, msg = split_named_field(str(first["msg"]))
    if named is not None:
        loc = _join(loc, (named,))
    if first["type"] == "missing":
        msg = "missing (a required field)"
    elif first["type"] == "extra_forbidden":
        msg = "unknown field"
    text = f"{loc}: {msg}" if loc else msg
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return text


def _join(prefix: str, loc: Sequence[int | str]) -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out
