"""The registry of compute kinds: lookup, errors, combiners, and the engines' import boundary."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from engines import registry
from engines.registry import InvalidInputs, UnknownKind

ENGINES_ROOT = Path(registry.__file__).resolve().parent
OUR_PACKAGES = {"bus", "agents", "projections", "risklab"}


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register test kinds into a copy of the registry, so they vanish after the test."""
    registry.kinds()  # load the real kinds first
    monkeypatch.setattr(registry, "_kinds", dict(registry._kinds))


def test_builtin_kinds_are_listed() -> None:
    names = registry.kinds()
    assert {"bs.european_option", "mc.european_option"} <= set(names)
    assert names == sorted(names)
    assert registry.get("mc.european_option").chunkable
    assert registry.get("mc.european_option").summary.startswith("Monte Carlo")


def test_unknown_kind_names_it_and_lists_the_known_ones() -> None:
    with pytest.raises(UnknownKind) as info:
        registry.run("mc.asian_option", {}, 1)
    message = str(info.value)
    assert "'mc.asian_option'" in message and "mc.european_option" in message
    assert info.value.kind == "mc.asian_option"
    with pytest.raises(UnknownKind):
        registry.combine("no.such_kind", [{}])


def test_inputs_must_be_a_mapping_and_seed_a_non_negative_integer() -> None:
    with pytest.raises(InvalidInputs) as info:
        registry.run("bs.european_option", [1, 2, 3], None)  # type: ignore[arg-type]
    assert info.value.field == "inputs"
    for seed in (-1, 1.5, True, "7"):
        with pytest.raises(InvalidInputs) as info:
            registry.run("mc.european_option", {}, seed)  # type: ignore[arg-type]
        assert info.value.field == "seed", seed


@pytest.mark.usefixtures("scratch_registry")
def test_register_run_and_combine_a_kind() -> None:
    @registry.register("test.sum", combine=lambda rs: {"total": sum(r["total"] for r in rs)})
    def total(inputs: Any, seed: int | None) -> dict[str, Any]:
        """Adds numbers."""
        registry.check_fields(inputs, ["values"])
        return {"total": sum(inputs["values"]), "seed": seed}

    assert "test.sum" in registry.kinds()
    assert registry.run("test.sum", {"values": [1, 2]}, 5) == {"total": 3, "seed": 5}
    assert registry.combine("test.sum", [{"total": 3}, {"total": 4}]) == {"total": 7}
    with pytest.raises(ValueError, match="no chunk results"):
        registry.combine("test.sum", [])
    with pytest.raises(InvalidInputs, match=r"^values: is required"):
        registry.run("test.sum", {}, None)


@pytest.mark.usefixtures("scratch_registry")
def test_a_kind_without_combiner_takes_exactly_one_chunk() -> None:
    @registry.register("test.single")
    def single(inputs: Any, seed: int | None) -> dict[str, Any]:
        return {"ok": True}

    assert not registry.get("test.single").chunkable
    assert registry.combine("test.single", [{"ok": True}]) == {"ok": True}
    with pytest.raises(ValueError, match="not chunkable"):
        registry.combine("test.single", [{"ok": True}, {"ok": True}])


@pytest.mark.usefixtures("scratch_registry")
def test_a_name_cannot_be_taken_twice_by_different_functions() -> None:
    def first(inputs: Any, seed: int | None) -> dict[str, Any]:
        return {}

    def second(inputs: Any, seed: int | None) -> dict[str, Any]:
        return {}

    registry.register("test.twice")(first)
    registry.register("test.twice")(first)  # re-importing the same module is fine
    with pytest.raises(ValueError, match="already registered"):
        registry.register("test.twice")(second)
    with pytest.raises(ValueError, match="without spaces"):
        registry.register("bad name")


@pytest.mark.parametrize(
    ("check", "inputs", "field", "reason"),
    [
        (lambda i: registry.number(i, "x"), {"x": "1"}, "x", "must be a number"),
        (lambda i: registry.number(i, "x", positive=True), {"x": -0.0}, "x", "must be positive"),
        (lambda i: registry.number(i, "x"), {"x": float("inf")}, "x", "must be finite"),
        (lambda i: registry.integer(i, "n", minimum=1), {"n": 0}, "n", "at least 1"),
        (lambda i: registry.integer(i, "n"), {"n": 2.5}, "n", "must be an integer"),
        (lambda i: registry.integer(i, "n"), {"n": False}, "n", "must be an integer"),
        (lambda i: registry.choice(i, "o", ("a", "b")), {"o": "c"}, "o", "must be one of 'a', 'b'"),
        (lambda i: registry.check_fields(i, ["a", "b"]), {"a": 1}, "b", "is required"),
        (lambda i: registry.check_fields(i, ["a"], ["b"]), {"a": 1, "z": 2}, "z", "is not an input"),
    ],
)
def test_input_checks_name_the_field(check: Any, inputs: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(InvalidInputs) as info:
        check(inputs)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


def test_integer_accepts_integral_floats() -> None:
    assert registry.integer({"n": 2e5}, "n") == 200_000


def test_engines_import_nothing_of_the_platform() -> None:
    offenders = []
    for path in sorted(ENGINES_ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(ENGINES_ROOT)}: {n}" for n in names if n.split(".")[0] in OUR_PACKAGES]
    offenders += [m for m in registry.ENGINE_MODULES if not m.startswith("engines.")]
    assert not offenders, offenders
