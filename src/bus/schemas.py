"""The event catalog as JSON Schema files: export them to `schemas/`, and check that they are current.

The catalog is the public contract, and `schemas/<type>/v<N>.json` is its published form: one
file per event type and version, generated from the pydantic payload models, plus
`schemas/envelope/v1.json` for the envelope. The files are committed; CI runs the check, which
fails when

- a file is missing or differs from its model (stale: run `risklab schemas export`);
- a model changed in a way that refuses events already on the log (a removed or retyped field, a
  new required one, a tightened enum or bound, another key field or topic) without a new version;
- an older version's file has no upcaster chain up to the latest version;
- an event type that has schemas was removed from the catalog.

Export writes compatible changes and refuses breaking ones, naming each difference: the author
must bump the version and register an upcaster from the old one. Export never deletes a file,
so the schemas of old versions stay as the record of what is on the log.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from bus.catalog import CATALOG, Event, EventCatalog
from bus.envelope import Envelope
from bus.errors import BusError
from bus.schema_diff import breaking_changes

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE = "envelope"
"""The directory of the envelope's schema (event types always contain a dot, so never clash)."""
ENVELOPE_VERSION = 1
DEFAULT_DIRECTORY = Path("schemas")
EXPORT_HINT = "run `risklab schemas export`"

_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")


@dataclass(frozen=True)
class SchemaProblem:
    """Something wrong with `schemas/`: which type (or `envelope`), which version if one, and what."""

    event_type: str
    version: int | None
    message: str
    path: Path | None = None

    def __str__(self) -> str:
        where = self.event_type if self.version is None else f"{self.event_type} v{self.version}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class BreakingChange:
    """The differences that make a model refuse events its published schema accepted."""

    event_type: str
    version: int
    differences: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.event_type} v{self.version}: " + "; ".join(self.differences)


class SchemaCompatibilityError(BusError):
    """Export refused: a model changed in a way that breaks its published version."""

    def __init__(self, changes: list[BreakingChange]) -> None:
        self.changes = tuple(changes)
        lines = "\n".join(f"  - {change}" for change in self.changes)
        super().__init__(
            "refusing to overwrite published schemas with breaking changes; bump the event's version "
            f"and register an upcaster from the old one:\n{lines}"
        )


# -- documents ------------------------------------------------------------------------------


def event_schema(model: type[Event]) -> dict[str, Any]:
    """The published JSON Schema of an event payload model: pydantic's, with the catalog entry."""
    document = model.model_json_schema(mode="validation")
    document.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"risklab:event/{model.event_type}/v{model.event_version}",
            "title": document.get("title", model.__name__),
            "x-risklab": {
                "kind": "event",
                "type": model.event_type,
                "version": model.event_version,
                "topic": model.default_topic,
                "key": model.key_field,
            },
        }
    )
    _set_description(document, model)
    return document


@dataclass(frozen=True)
class Document:
    """A boundary model that is not an event (a product spec, market data, options), published beside them.

    Its files are `schemas/<name>/v<version>.json`; `name` contains a dot like an event type. A
    breaking change needs a new version, and the old version's file stays as the record.
    """

    name: str
    version: int
    model: type[BaseModel]


def document_schema(document: Document) -> dict[str, Any]:
    """The published JSON Schema of a boundary document model."""
    out = document.model.model_json_schema(mode="validation")
    out.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"risklab:document/{document.name}/v{document.version}",
            "title": out.get("title", document.model.__name__),
            "x-risklab": {"kind": "document", "name": document.name, "version": document.version},
        }
    )
    _set_description(out, document.model)
    return out


def envelope_schema() -> dict[str, Any]:
    """The published JSON Schema of the envelope every event travels in."""
    document = Envelope.model_json_schema(mode="validation")
    document.update(
        {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"risklab:{ENVELOPE}/v{ENVELOPE_VERSION}",
            "title": document.get("title", Envelope.__name__),
            "x-risklab": {"kind": ENVELOPE, "version": ENVELOPE_VERSION},
        }
    )
    _set_description(document, Envelope)
    return document


def _set_description(document: dict[str, Any], model: type[BaseModel]) -> None:
    docstring = model.__dict__.get("__doc__")  # the model's own, not a base class's
    if docstring:
        document["description"] = inspect.cleandoc(docstring)
    else:
        document.pop("description", None)


def render(document: dict[str, Any]) -> str:
    """The file content of a schema: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_path(directory: Path, event_type: str, version: int) -> Path:
    return Path(directory) / event_type / f"v{version}.json"


def breaking_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why `new` breaks readers of `old` (both published documents); empty when compatible."""
    out: list[str] = []
    old_meta, new_meta = old.get("x-risklab", {}), new.get("x-risklab", {})
    for field, name in (("key", "key field"), ("topic", "topic")):
        if field in old_meta and old_meta.get(field) != new_meta.get(field):
            out.append(f"{name} changed from {old_meta[field]!r} to {new_meta.get(field)!r}")
    return out + breaking_changes(old, new)


@dataclass(frozen=True)
class _Expected:
    event_type: str
    version: int
    document: dict[str, Any]


def _expected(catalog: EventCatalog, documents: Sequence[Document] = ()) -> Iterator[_Expected]:
    yield _Expected(ENVELOPE, ENVELOPE_VERSION, envelope_schema())
    for model in catalog:
        yield _Expected(model.event_type, model.event_version, event_schema(model))
    for document in documents:
        yield _Expected(document.name, document.version, document_schema(document))


# -- export ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedSchema:
    """One file of an export and what happened to it: created, updated or unchanged."""

    path: Path
    status: str


def export(catalog: EventCatalog, directory: Path, documents: Sequence[Document] = ()) -> list[ExportedSchema]:
    """Write every schema of the catalog and documents (see `export_schemas`), saying what changed per file."""
    directory = Path(directory)
    planned: list[tuple[Path, str, str]] = []
    refused: list[BreakingChange] = []
    for entry in _expected(catalog, documents):
        path = schema_path(directory, entry.event_type, entry.version)
        text = render(entry.document)
        if not path.exists():
            planned.append((path, text, "created"))
            continue
        current = path.read_text(encoding="utf-8")
        if current == text:
            planned.append((path, text, "unchanged"))
            continue
        try:
            published = json.loads(current)
        except json.JSONDecodeError as exc:
            why = f"the published file is not valid JSON ({exc}); restore it from version control"
            refused.append(BreakingChange(entry.event_type, entry.version, (why,)))
            continue
        differences = breaking_differences(published, entry.document)
        if differences:
            refused.append(BreakingChange(entry.event_type, entry.version, tuple(differences)))
        else:
            planned.append((path, text, "updated"))
    if refused:  # nothing is written unless everything can be
        raise SchemaCompatibilityError(refused)
    for path, text, status in planned:
        if status != "unchanged":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
    return [ExportedSchema(path, status) for path, _, status in planned]


def export_schemas(catalog: EventCatalog, directory: Path, documents: Sequence[Document] = ()) -> list[Path]:
    """Write `<directory>/<type>/v<N>.json` for every registered type and version, and
    `<directory>/envelope/v1.json`; return their paths.

    A file whose content is already right is left alone; a compatible change is written; a
    breaking change raises `SchemaCompatibilityError` (naming type, version and each difference)
    and writes nothing. Files of versions no longer registered are kept.
    """
    return [exported.path for exported in export(catalog, directory, documents)]


# -- check ----------------------------------------------------------------------------------


def check_schemas(
    catalog: EventCatalog, directory: Path, documents: Sequence[Document] = ()
) -> list[SchemaProblem]:
    """Everything that keeps `directory` from being the published contract of the catalog and documents."""
    directory = Path(directory)
    problems: list[SchemaProblem] = []
    on_disk = _published_versions(directory, problems)

    for entry in _expected(catalog, documents):
        problems += _check_file(directory, entry)

    for document in documents:
        for version in sorted(v for v in on_disk.get(document.name, {}) if v > document.version):
            problems.append(
                SchemaProblem(document.name, version, f"published, but the latest version is v{document.version}")
            )
    for event_type in sorted(set(on_disk) - set(catalog.types()) - {ENVELOPE} - {d.name for d in documents}):
        problems.append(
            SchemaProblem(
                event_type,
                None,
                "has published schemas but is no longer in the event catalog: its events are on the log and "
                "consumers depend on it; keep the model registered (removing an event type is a breaking change)",
                directory / event_type,
            )
        )

    for event_type in catalog.types():
        problems += _check_versions(catalog, directory, event_type, on_disk.get(event_type, {}))
    return problems


def _published_versions(directory: Path, problems: list[SchemaProblem]) -> dict[str, dict[int, Path]]:
    """The schema files in `directory` as {type: {version: path}}; odd files become problems."""
    found: dict[str, dict[int, Path]] = {}
    if not directory.is_dir():
        return found
    for type_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for file in sorted(type_dir.glob("*.json")):
            match = _VERSION_FILE.match(file.name)
            if match is None:
                problems.append(
                    SchemaProblem(type_dir.name, None, f"unexpected file {file.name}: files are named v<N>.json", file)
                )
                continue
            found.setdefault(type_dir.name, {})[int(match.group(1))] = file
    return found


def _check_file(directory: Path, entry: _Expected) -> list[SchemaProblem]:
    path = schema_path(directory, entry.event_type, entry.version)

    def problem(message: str) -> list[SchemaProblem]:
        return [SchemaProblem(entry.event_type, entry.version, message, path)]

    if not path.is_file():
        return problem(f"stale: {path} is missing; {EXPORT_HINT}")
    current = path.read_text(encoding="utf-8")
    if current == render(entry.document):
        return []
    try:
        published = json.loads(current)
    except json.JSONDecodeError as exc:
        return problem(f"{path} is not valid JSON ({exc}); restore it from version control")
    differences = breaking_differences(published, entry.document)
    if differences:
        return problem(
            f"breaking change to {entry.event_type} v{entry.version} without a version bump: {'; '.join(differences)}"
        )
    return problem(f"stale: {path} differs from the model (a compatible change); {EXPORT_HINT}")


def _check_versions(
    catalog: EventCatalog, directory: Path, event_type: str, files: dict[int, Path]
) -> list[SchemaProblem]:
    """Older versions: their files are kept, and an upcaster chain leads from each to the latest."""
    problems: list[SchemaProblem] = []
    latest = catalog.latest(event_type).event_version
    for version in sorted(v for v in files if v > latest):
        problems.append(
            SchemaProblem(
                event_type,
                version,
                f"published, but the catalog's latest version is v{latest}: a version was removed from the catalog",
                files[version],
            )
        )
    registered = {m.event_version for m in catalog if m.event_type == event_type}
    for version in range(1, latest):
        if version not in files and version not in registered:  # a registered one is reported as missing
            problems.append(
                SchemaProblem(
                    event_type,
                    version,
                    f"{schema_path(directory, event_type, version)} is missing: events of v{version} may be on the "
                    "log and their schema must stay published; restore it from version control",
                )
            )
    older = sorted(v for v in files if v < latest)
    if older:
        for version in range(older[0], latest):
            if not catalog.has_upcaster(event_type, version):
                needed = "" if version in files else f" (needed to bring v{older[0]} events up to v{latest})"
                problems.append(
                    SchemaProblem(event_type, version, f"v{version} has no upcaster to v{version + 1}{needed}")
                )
    return problems


# -- entry points for the CLI ---------------------------------------------------------------


def load_catalog(package: str = "bus.events") -> EventCatalog:
    """The process-wide catalog with every event module under `package` imported (so registered)."""
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        importlib.import_module(module.name)
    return CATALOG


def main_export(
    directory: Path = DEFAULT_DIRECTORY,
    catalog: EventCatalog | None = None,
    echo: Callable[[str], None] = print,
    documents: Sequence[Document] = (),
) -> int:
    """`risklab schemas export`: write the schemas; 0 on success, 1 when a breaking change is refused."""
    catalog = catalog if catalog is not None else load_catalog()
    try:
        exported = export(catalog, directory, documents)
    except SchemaCompatibilityError as exc:
        echo(str(exc))
        return 1
    changed = [e for e in exported if e.status != "unchanged"]
    for e in changed:
        echo(f"{e.status}: {e.path}")
    echo(f"{len(exported)} schemas in {directory}: {len(changed)} written, {len(exported) - len(changed)} unchanged")
    return 0


def main_check(
    directory: Path = DEFAULT_DIRECTORY,
    catalog: EventCatalog | None = None,
    echo: Callable[[str], None] = print,
    documents: Sequence[Document] = (),
) -> int:
    """`risklab schemas check`: print each problem; 0 when the schemas are current, 1 otherwise."""
    catalog = catalog if catalog is not None else load_catalog()
    problems = check_schemas(catalog, directory, documents)
    for problem in problems:
        echo(str(problem))
    if problems:
        echo(f"{len(problems)} schema problem{'s' if len(problems) > 1 else ''} in {directory}")
        return 1
    echo(f"schemas in {directory} match the event catalog")
    return 0
