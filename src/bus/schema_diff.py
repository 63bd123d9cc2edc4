"""Which changes to a JSON Schema break its readers: a small diff for pydantic-generated schemas.

`breaking_changes(old, new)` lists, in words, every way in which `new` refuses a document that
`old` accepted: the events already on the log were written against `old`, and the code reading
them will validate against `new`. A removed or retyped property, a new required one, a value
dropped from an enum or a tightened bound is breaking; a new optional property, a loosened bound
or a changed description is not.

It understands what pydantic emits: `$ref` into `$defs`, `anyOf` (with `null` for optional
fields), `const` and `enum`, nested objects and `additionalProperties`, arrays and tuples,
numeric and string constraints. A validation keyword it does not analyse is compared literally:
adding or changing one is reported as breaking, since it may refuse old documents.
"""

from __future__ import annotations

import math
from typing import Any

Schema = dict[str, Any]

ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$defs",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "discriminator",  # an OpenAPI hint; the variants themselves are compared
    }
)
"""Keywords that do not change which documents are accepted (and `$defs`, reached via `$ref`)."""

_ANALYSED = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "allOf",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "format",
    }
)

_NOTHING: Schema = {"not": {}}


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Every way in which `new` refuses documents that `old` accepted; empty when compatible.

    Both are whole schema documents: their `$ref`s are resolved against their own `$defs`.
    """
    return _Differ(old, new).compare(old, new, "")


class _Differ:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self._in_progress: set[tuple[str, str]] = set()

    # -- entry point for one pair of nodes -------------------------------------------------

    def compare(self, old: Any, new: Any, where: str) -> list[str]:
        old, old_ref = _resolve(_as_schema(old), self.old_root)
        new, new_ref = _resolve(_as_schema(new), self.new_root)
        if old_ref or new_ref:
            pair = (old_ref, new_ref)
            if pair in self._in_progress:  # a recursive model: assume compatible (coinduction)
                return []
            self._in_progress.add(pair)
            try:
                return self._compare_resolved(old, new, where)
            finally:
                self._in_progress.discard(pair)
        return self._compare_resolved(old, new, where)

    def fits(self, old: Any, new: Any) -> bool:
        """Whether `new` accepts everything `old` does (a trial, without reporting)."""
        trial = _Differ(self.old_root, self.new_root)
        trial._in_progress = set(self._in_progress)
        return not trial.compare(old, new, "")

    def _compare_resolved(self, old: Schema, new: Schema, where: str) -> list[str]:
        if old == _NOTHING:  # nothing was accepted, so nothing can be refused
            return []
        if new == _NOTHING:
            return [f"{_at(where)}: no longer accepts any value"]
        if _variants(old) is not None or _variants(new) is not None:
            return self._compare_unions(old, new, where)
        return self._compare_single(old, new, where)

    # -- anyOf / oneOf ---------------------------------------------------------------------

    def _compare_unions(self, old: Schema, new: Schema, where: str) -> list[str]:
        old_variants = _variants(old) or [_without_union(old)]
        new_variants = _variants(new) or [_without_union(new)]
        out: list[str] = []
        for variant in old_variants:
            variant, _ = _resolve(_as_schema(variant), self.old_root)
            if any(self.fits(variant, candidate) for candidate in new_variants):
                continue
            out.extend(self._explain_misfit(variant, new_variants, where))
        # keywords beside a new union apply to every variant
        if _variants(new) is not None:
            out.extend(self._compare_single(_without_union(old), _without_union(new), where))
        return out

    def _explain_misfit(self, variant: Schema, candidates: list[Any], where: str) -> list[str]:
        """Why no new variant accepts an old one: the differences to the closest candidate."""
        variant_types = _types(variant)
        near: list[Schema] = []
        for candidate in candidates:
            resolved, _ = _resolve(_as_schema(candidate), self.new_root)
            candidate_types = _types(resolved)
            if variant_types is None or candidate_types is None:
                near.append(candidate)
            elif any(_type_fits(t, candidate_types) for t in variant_types):
                near.append(candidate)
        if len(near) > 1:  # a union of models: explain against the model of the same name, if any
            title = variant.get("title")
            near = [c for c in near if _resolve(_as_schema(c), self.new_root)[0].get("title") == title]
        if len(near) == 1:
            diffs = self.compare(variant, near[0], where)
            if diffs:
                return diffs
        return [f"{_at(where)}: no longer accepts {_describe(variant)}"]

    # -- one schema against another --------------------------------------------------------

    def _compare_single(self, old: Schema, new: Schema, where: str) -> list[str]:
        old_types, new_types = _types(old), _types(new)
        if new_types is not None:
            if old_types is None:
                return [f"{_at(where)}: now restricted to type {_names(new_types)}"]
            lost = sorted(t for t in old_types if not _type_fits(t, new_types))
            if lost:
                return [f"{_at(where)}: type changed from {_names(old_types)} to {_names(new_types)}"]

        out: list[str] = []
        out += _compare_enum(old, new, where)
        out += _compare_numbers(old, new, where)
        out += _compare_strings(old, new, where)
        out += self._compare_arrays(old, new, where)
        out += self._compare_objects(old, new, where)
        for keyword in sorted(set(new) - _ANALYSED - ANNOTATIONS):
            if keyword.startswith("x-"):
                continue
            if keyword not in old:
                out.append(f"{_at(where)}: new constraint {keyword}={_show(new[keyword])}")
            elif old[keyword] != new[keyword]:
                out.append(
                    f"{_at(where)}: {keyword} changed from {_show(old[keyword])} to {_show(new[keyword])} "
                    "(not analysed, so treated as breaking)"
                )
        return out

    def _compare_arrays(self, old: Schema, new: Schema, where: str) -> list[str]:
        keys = ("items", "prefixItems", "minItems", "maxItems", "uniqueItems")
        if not any(k in old or k in new for k in keys):
            return []
        out = _compare_bounds(old, new, where, "minItems", "maxItems", "items")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            out.append(f"{_at(where)}: items must now be unique")
        old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
        for i in range(max(len(old_prefix), len(new_prefix))):
            out += self.compare(_item(old, i), _item(new, i), f"{where}[{i}]")
        out += self.compare(old.get("items", {}), new.get("items", {}), f"{where}[]")
        return out

    def _compare_objects(self, old: Schema, new: Schema, where: str) -> list[str]:
        keys = ("properties", "required", "additionalProperties")
        if not any(k in old or k in new for k in keys):
            return []
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        out: list[str] = []
        for name in old_props:
            path = _join(where, name)
            if name in new_props:
                out += self.compare(old_props[name], new_props[name], path)
                if name in new_required and name not in old_required:
                    out.append(f"{path}: now required")
            elif new_extra is False:
                out.append(f"removed property {path}")
            else:
                diffs = self.compare(old_props[name], new_extra, path)
                if diffs:
                    out.append(f"removed property {path} (additional properties do not accept it: {'; '.join(diffs)})")
        for name in new_props:
            if name in old_props:
                continue
            path = _join(where, name)
            if name in new_required:
                out.append(f"new required property {path}")
            elif old_extra is not False:  # old documents may carry this name as an extra property
                out += self.compare(old_extra, new_props[name], path)
        for name in sorted(new_required - old_required - set(new_props)):
            out.append(f"new required property {_join(where, name)}")
        if old_extra is not False:
            if new_extra is False:
                out.append(f"{_at(where)}: no longer accepts additional properties")
            else:
                out += self.compare(old_extra, new_extra, _join(where, "*"))
        return out


# -- keyword groups without recursion ---------------------------------------------------------


def _compare_enum(old: Schema, new: Schema, where: str) -> list[str]:
    new_values = _enum(new)
    if new_values is None:
        return []
    old_values = _enum(old)
    if old_values is None:
        return [f"{_at(where)}: now restricted to {_show(new_values)}"]
    dropped = [v for v in old_values if not any(_same_value(v, w) for w in new_values)]
    if dropped:
        return [f"{_at(where)}: no longer accepts {', '.join(_show(v) for v in dropped)}"]
    return []


def _compare_numbers(old: Schema, new: Schema, where: str) -> list[str]:
    out: list[str] = []
    old_low, new_low = _bound(old, "minimum", "exclusiveMinimum", max), _bound(new, "minimum", "exclusiveMinimum", max)
    if new_low is not None and (
        old_low is None or new_low[0] > old_low[0] or (new_low[0] == old_low[0] and new_low[1] and not old_low[1])
    ):
        out.append(
            f"{_at(where)}: lower bound tightened from {_show_bound(old_low, '>')} to {_show_bound(new_low, '>')}"
        )
    old_high, new_high = (
        _bound(old, "maximum", "exclusiveMaximum", min),
        _bound(new, "maximum", "exclusiveMaximum", min),
    )
    if new_high is not None and (
        old_high is None
        or new_high[0] < old_high[0]
        or (new_high[0] == old_high[0] and new_high[1] and not old_high[1])
    ):
        out.append(
            f"{_at(where)}: upper bound tightened from {_show_bound(old_high, '<')} to {_show_bound(new_high, '<')}"
        )
    new_step, old_step = new.get("multipleOf"), old.get("multipleOf")
    if new_step is not None and (old_step is None or not _is_multiple(old_step, new_step)):
        out.append(f"{_at(where)}: must now be a multiple of {new_step} (was {old_step if old_step else 'any'})")
    return out


def _compare_strings(old: Schema, new: Schema, where: str) -> list[str]:
    out = _compare_bounds(old, new, where, "minLength", "maxLength", "characters")
    for keyword in ("pattern", "format"):
        if keyword in new and old.get(keyword) != new[keyword]:
            was = _show(old[keyword]) if keyword in old else "none"
            out.append(f"{_at(where)}: {keyword} changed from {was} to {_show(new[keyword])}")
    return out


def _compare_bounds(old: Schema, new: Schema, where: str, low: str, high: str, unit: str) -> list[str]:
    out: list[str] = []
    if new.get(low, 0) > old.get(low, 0):
        out.append(f"{_at(where)}: {low} raised from {old.get(low, 0)} to {new[low]} {unit}")
    if high in new and (high not in old or new[high] < old[high]):
        out.append(f"{_at(where)}: {high} lowered from {old.get(high, 'unbounded')} to {new[high]} {unit}")
    return out


# -- helpers ----------------------------------------------------------------------------------


def _as_schema(node: Any) -> Schema:
    if node is True:
        return {}
    if node is False:
        return _NOTHING
    if not isinstance(node, dict):
        raise ValueError(f"not a JSON Schema: {node!r}")
    return node


def _resolve(node: Schema, root: Schema) -> tuple[Schema, str]:
    """The node with its `$ref` (or single-element `allOf`, as older pydantic emits) inlined."""
    ref = ""
    seen: set[str] = set()
    while True:
        if "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise ValueError(f"$ref cycle through {ref}")
            seen.add(ref)
            target = _as_schema(_pointer(root, ref))
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings}
        elif isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            siblings = {k: v for k, v in node.items() if k != "allOf"}
            node = {**_as_schema(node["allOf"][0]), **siblings}
        else:
            return node, ref


def _pointer(root: Schema, ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref are supported, not {ref!r}")
    node: Any = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError):
            raise ValueError(f"$ref {ref!r} does not resolve") from None
    return node


def _variants(node: Schema) -> list[Any] | None:
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            return list(node[keyword])
    return None


def _without_union(node: Schema) -> Schema:
    return {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}


def _item(node: Schema, index: int) -> Any:
    prefix = node.get("prefixItems", [])
    return prefix[index] if index < len(prefix) else node.get("items", {})


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _types(node: Schema) -> set[str] | None:
    """The JSON types a node accepts, or None for any."""
    if "type" in node:
        declared = node["type"]
        return {declared} if isinstance(declared, str) else set(declared)
    values = _enum(node)
    if values is not None:
        return {_json_type(v) for v in values}
    return None


def _type_fits(json_type: str, accepted: set[str]) -> bool:
    return json_type in accepted or (json_type == "integer" and "number" in accepted)


def _enum(node: Schema) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def _same_value(a: Any, b: Any) -> bool:
    return _json_type(a) == _json_type(b) and a == b


def _bound(node: Schema, inclusive: str, exclusive: str, tighter: Any) -> tuple[float, bool] | None:
    """The effective bound as (value, is_exclusive); `tighter` is max for lower, min for upper bounds."""
    bounds = []
    if isinstance(node.get(inclusive), int | float):
        bounds.append((node[inclusive], False))
    if isinstance(node.get(exclusive), int | float):
        bounds.append((node[exclusive], True))
    if not bounds:
        return None
    value = tighter(b[0] for b in bounds)
    return value, any(b[1] for b in bounds if b[0] == value)


def _show_bound(bound: tuple[float, bool] | None, sign: str) -> str:
    if bound is None:
        return "none"
    return f"{sign}{'' if bound[1] else '='} {bound[0]}"


def _is_multiple(value: float, step: float) -> bool:
    quotient = value / step
    return math.isclose(quotient, round(quotient), rel_tol=0, abs_tol=1e-9)


def _describe(node: Schema) -> str:
    values = _enum(node)
    if values is not None:
        return ", ".join(_show(v) for v in values)
    types = _types(node)
    if types is None:
        return "some values"
    name = node.get("title") if types == {"object"} else None
    return f"{_names(types)} {name}" if name else _names(types)


def _names(types: set[str]) -> str:
    return " or ".join(sorted(types))


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str | list) else str(value)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _at(where: str) -> str:
    return where or "(root)"
