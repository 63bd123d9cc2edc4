"""docker-compose.yml agrees with the code: commands the CLI knows, variables `Settings` reads,
health checks on every service.

The file is read with PyYAML, which resolves the `x-risklab` anchor and its `<<` merges, so each
service is checked as compose would run it. Commands are resolved against typer's command tree and
their arguments parsed by the command itself, so an unknown subcommand or option fails here rather
than in a crash-looping container.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import yaml
from typer.core import TyperGroup
from typer.testing import CliRunner

from risklab.cli import app
from risklab.groups import ACTOR_GROUPS
from risklab.settings import Settings

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
RUN_TARGETS = {*ACTOR_GROUPS, "api"}
_VARIABLE = re.compile(r"\bRISKLAB_[A-Z0-9_]+\b")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def risklab_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if str(s.get("image", "")).split(":")[0] == "risklab"}


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def healthcheck_argv(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    kind, *rest = test
    assert kind in ("CMD", "CMD-SHELL"), test
    return rest if kind == "CMD" else shlex.split(rest[0])


def resolve(args: list[str]) -> tuple[list[str], Any, dict[str, Any]]:
    """The path of subcommands `risklab <args>` runs, the command and the arguments it gets; the
    arguments are parsed by the command (a `typer.TyperException` on an unknown option or a
    missing argument). Typer bundles its own click, so its command tree is walked as typer's."""
    assert args[0] == "risklab", f"{args}: a risklab service runs the risklab command"
    root = typer.main.get_command(app)
    ctx = root.make_context("risklab", list(args[1:]), resilient_parsing=False)
    command: Any = root
    path: list[str] = []
    rest = list(args[1:])
    while isinstance(command, TyperGroup):
        assert rest, f"{args}: names a group of commands, not a command"
        name, *rest = rest
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{args}: no such command {name!r}; known: {sorted(command.list_commands(ctx))}"
        path.append(name)
        command = sub
        ctx = command.make_context(name, list(rest), parent=ctx, resilient_parsing=False)
    return path, command, dict(ctx.params)


# -- the file's structure --------------------------------------------------------------------


def test_risklab_services_are_found() -> None:
    assert set(risklab_services()) >= {"projector", "platform", "engine-worker", "api"}


@pytest.mark.parametrize("name", ["kafka", "postgres"])
def test_servers_exist_with_healthchecks(name: str) -> None:
    service = services()[name]
    assert service["image"].split(":")[0] == {"kafka": "apache/kafka", "postgres": "postgres"}[name]
    check = healthcheck_argv(service)
    assert check, f"{name} has an empty health check"
    assert {"kafka": "kafka-broker-api-versions.sh", "postgres": "pg_isready"}[name] in " ".join(check)
    assert service["healthcheck"]["retries"] >= 1


@pytest.mark.parametrize("name", sorted(risklab_services()))
def test_risklab_service_waits_for_healthy_servers(name: str) -> None:
    depends = risklab_services()[name]["depends_on"]
    assert depends == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


# -- commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(risklab_services()))
def test_command_is_a_real_cli_command(name: str) -> None:
    service = risklab_services()[name]
    assert "command" in service, f"{name} has no command"
    args = argv(service["command"])
    path, _, params = resolve(args)
    if path == ["run"]:
        assert params["group"] in RUN_TARGETS, f"{name}: unknown group {params['group']!r}; known: {RUN_TARGETS}"
    help_result = CliRunner().invoke(app, [*path, "--help"])
    assert help_result.exit_code == 0, help_result.output


@pytest.mark.parametrize("name", sorted(risklab_services()))
def test_risklab_service_has_a_healthcheck(name: str) -> None:
    service = risklab_services()[name]
    assert "healthcheck" in service, f"{name} has no health check"
    check = healthcheck_argv(service)
    assert check, f"{name} has an empty health check"
    if check[0] == "risklab":
        path, _, params = resolve(check)
        assert path == ["health"], f"{name}: health check runs `risklab {' '.join(path)}`"
        group = params["group"]
        assert group is None or group in ACTOR_GROUPS, f"{name}: health check names unknown group {group!r}"
        run_path, _, run_params = resolve(argv(service["command"]))
        if run_path == ["run"] and run_params["group"] in ACTOR_GROUPS:
            assert group == run_params["group"], f"{name} runs {run_params['group']} but checks {group}"
    else:
        assert name == "api", f"{name}: only the API is checked over HTTP"
        port = service["environment"]["RISKLAB_API_PORT"]
        assert f"http://127.0.0.1:{port}/health" in " ".join(check)


def test_every_actor_group_and_the_api_are_deployed() -> None:
    deployed = set()
    for service in risklab_services().values():
        path, _, params = resolve(argv(service["command"]))
        if path == ["run"]:
            deployed.add(params["group"])
    assert deployed == RUN_TARGETS


def test_the_api_publishes_its_port() -> None:
    api = risklab_services()["api"]
    port = api["environment"]["RISKLAB_API_PORT"]
    assert api["environment"]["RISKLAB_API_HOST"] == "0.0.0.0"
    assert f"{port}:{port}" in api["ports"]


def test_resolve_refuses_what_the_cli_does_not_know() -> None:
    with pytest.raises(AssertionError, match="no such command 'serve'"):
        resolve(["risklab", "serve", "projector"])
    with pytest.raises(typer.TyperException, match="No such option: --groupe"):
        resolve(["risklab", "health", "--groupe", "projector"])
    with pytest.raises(typer.TyperException):  # a group alone: typer answers with its help
        resolve(["risklab", "schemas"])
    with pytest.raises(typer.TyperException, match="Missing parameter: group"):
        resolve(["risklab", "run"])


# -- environment ------------------------------------------------------------------------------


def test_every_risklab_variable_is_a_settings_field() -> None:
    text = COMPOSE_FILE.read_text()
    used = set(_VARIABLE.findall(text))  # environment blocks, the x-risklab anchor, health checks, ${...}
    assert {"RISKLAB_KAFKA_BOOTSTRAP", "RISKLAB_DATABASE_URL", "RISKLAB_API_TOKENS"} <= used
    fields = set(Settings.model_fields)
    unknown = {v for v in used if v.removeprefix("RISKLAB_").lower() not in fields}
    assert not unknown, f"variables Settings does not read: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(risklab_services()))
def test_service_environment_gives_valid_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RISKLAB_"):
            monkeypatch.delenv(key)
    environment = risklab_services()[name]["environment"]
    assert isinstance(environment, dict)
    for key, value in environment.items():
        assert _VARIABLE.fullmatch(key), f"{name}: {key} is not a RISKLAB_ variable"
        if "${" in str(value):
            continue  # set by whoever runs compose
        monkeypatch.setenv(key, str(value))
    settings = Settings()
    assert settings.transport == "kafka"
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.database_url is not None
    assert "@postgres:5432/" in settings.database_url.get_secret_value()


def test_variables_found_in_the_merged_services_match_the_text() -> None:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(k)
                walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            found.update(_VARIABLE.findall(node))

    walk(compose())
    assert found == set(_VARIABLE.findall(COMPOSE_FILE.read_text()))
