"""docker/compose.yaml as an operator signs it off (no container engine runs here).

The file is validated against the Compose Specification's JSON schema (vendored: COMPOSE_SPEC.md),
before and after interpolation with the secrets file its header makes; its promises are checked
on the interpolated result: the API on 127.0.0.1 unless NNS_PUBLISH widens it, no secret in the
file, limits, health checks, hardened containers, and a one-shot migration the others wait for.
The Redis command and health check are run for real with the local redis-server.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_env import MissingVariable, interpolate, read_env_file, variables
from environment import missing
from jsonschema import Draft7Validator

from service.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
ENV_EXAMPLE = ROOT / "docker" / ".env.example"
SCHEMA = Path(__file__).with_name("compose-spec.json")
APP_SERVICES = ("api", "worker", "migrate")
SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    """What docker/.env holds once made: the passwords (hex, as the header's command makes)."""
    return {name: secrets.token_hex(32) for name in SECRETS}


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The file as Compose hands it to the engine with that docker/.env."""
    result = interpolate(raw, env)
    assert isinstance(result, dict)
    return result


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in compose["services"], f"compose.yaml has no {name} service"
    service = compose["services"][name]
    assert isinstance(service, dict)
    return service


def _validate(document: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


# ----------------------------------------------------------------------------- the schema


def test_compose_validates_against_the_compose_spec_schema(
    raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    _validate(raw)
    _validate(compose)


def test_the_schema_catches_a_misspelt_key(raw: dict[str, Any]) -> None:
    """The validation has teeth: the vendored schema rejects what Compose would reject."""
    broken = json.loads(json.dumps(raw))
    broken["services"]["api"]["read_onyl"] = True
    with pytest.raises(AssertionError, match="read_onyl"):
        _validate(broken)


# ----------------------------------------------------------------------------- secrets


def test_the_file_holds_no_secret_and_refuses_to_start_without_each(
    raw: dict[str, Any], env: dict[str, str]
) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "nns:nns@" not in text
    for name in SECRETS:
        # Every use is ${NAME:?...} with a message saying where to set it (also when empty,
        # as in docker/.env.example copied unchanged).
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, f"compose.yaml does not use {name}"
        for use in uses:
            assert use.startswith(":?") and "docker/.env" in use, use
        for without in ({k: v for k, v in env.items() if k != name}, {**env, name: ""}):
            with pytest.raises(MissingVariable, match=f"{name}.*docker/.env"):
                interpolate(raw, without)
    for service in raw["services"].values():
        for key, value in dict(service.get("environment", {})).items():
            if re.search(r"PASSWORD|SECRET|AUTH|TOKEN|_KEY", key) or "@" in str(value):
                assert re.search(r"\$\{[A-Z_]+:\?", str(value)), f"{key} holds a literal: {value}"


def test_the_services_get_the_passwords_from_docker_env(
    compose: dict[str, Any], env: dict[str, str]
) -> None:
    postgres, redis = env["POSTGRES_PASSWORD"], env["REDIS_PASSWORD"]
    for name in APP_SERVICES:
        environment = _service(compose, name)["environment"]
        assert environment["NNS_DATABASE_URL"] == (
            f"postgresql+psycopg://nns:{postgres}@postgres:5432/nns"
        )
        assert environment["NNS_REDIS_URL"] == f"redis://:{redis}@redis:6379/0"
        assert environment["NNS_RUNNER"] == "rq"
    assert _service(compose, "postgres")["environment"]["POSTGRES_PASSWORD"] == postgres
    assert _service(compose, "redis")["environment"]["REDISCLI_AUTH"] == redis


def _header_command() -> str:
    """The one command the compose file's header gives for making docker/.env."""
    lines = COMPOSE.read_text(encoding="utf-8").splitlines()
    start = lines.index(
        "# Once: make the secrets file this compose file reads "
        "(docker/.env, ignored by git; mode 0600):"
    )
    end = lines.index("# Then:")
    return "\n".join(line.removeprefix("#   ") for line in lines[start + 1 : end])


def test_the_documented_command_makes_a_working_private_env_file(
    tmp_path: Path, raw: dict[str, Any]
) -> None:
    command = _header_command()
    assert command in (ROOT / "README.md").read_text(encoding="utf-8"), "README differs"
    (tmp_path / "docker").mkdir()
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    made = tmp_path / "docker" / ".env"
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    values = read_env_file(made)
    assert set(values) == set(SECRETS)
    assert all(re.fullmatch(r"[0-9a-f]{64}", value) for value in values.values())
    _validate(interpolate(raw, values))


def test_env_example_names_every_variable_and_docker_env_stays_private() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))
    assert variables(COMPOSE.read_text(encoding="utf-8")) <= documented
    assert read_env_file(ENV_EXAMPLE) == {name: "" for name in SECRETS}
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT)
    assert ignored.returncode == 0, "docker/.env must be ignored by git"
    example = subprocess.run(["git", "check-ignore", "-q", "docker/.env.example"], cwd=ROOT)
    assert example.returncode == 1, "docker/.env.example is the committed template"


# ----------------------------------------------------------------------------- publishing


def test_the_api_is_published_on_loopback_unless_widened(
    raw: dict[str, Any], env: dict[str, str]
) -> None:
    assert _service(interpolate(raw, env), "api")["ports"] == ["127.0.0.1:8000:8000"]
    widened = interpolate(raw, {**env, "NNS_PUBLISH": "0.0.0.0:8000"})
    assert _service(widened, "api")["ports"] == ["0.0.0.0:8000:8000"]
    for name, service in raw["services"].items():
        if name != "api":
            assert "ports" not in service, f"{name} must not be published"


# ----------------------------------------------------------------------------- hardening


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_containers_are_read_only_without_capabilities(
    compose: dict[str, Any], name: str
) -> None:
    service = _service(compose, name)
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert "cap_add" not in service and "privileged" not in service
    tmpfs = [str(entry).split(":")[0] for entry in service["tmpfs"]]
    assert "/tmp" in tmpfs  # uploads in flight, the workers' heartbeat files
    assert service["init"] is True


@pytest.mark.parametrize(("name", "max_cpus"), [("api", 64), ("worker", 64)])
def test_api_and_workers_have_cpu_and_memory_limits(
    compose: dict[str, Any], name: str, max_cpus: int
) -> None:
    limits = _service(compose, name)["deploy"]["resources"]["limits"]
    assert 0 < float(limits["cpus"]) <= max_cpus
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?[kmg]b?", str(limits["memory"]).lower())
    assert int(limits["pids"]) > 0


# ----------------------------------------------------------------------------- health, order


def test_api_health_check_probes_healthz(compose: dict[str, Any]) -> None:
    api = _service(compose, "api")
    test = api["healthcheck"]["test"]
    assert test[0] == "CMD" and "/healthz" in test[-1]
    compile(test[-1], "<healthcheck>", "exec")
    assert any(str(volume).endswith(":/data") for volume in api["volumes"])


def test_worker_health_check_is_nn_service_worker_check(compose: dict[str, Any]) -> None:
    worker = _service(compose, "worker")
    test = worker["healthcheck"]["test"]
    assert test[0] == "CMD" and Path(test[1]).name == "nn-service"
    args = build_parser().parse_args(test[2:])  # an option the CLI really has
    assert args.command == "worker" and args.check is True
    assert worker["command"] == ["nn-service", "worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert worker["stop_grace_period"]


def test_migrate_runs_once_before_the_api_and_the_workers(compose: dict[str, Any]) -> None:
    migrate = _service(compose, "migrate")
    assert migrate["command"] == ["nn-service", "migrate"]
    assert build_parser().parse_args(migrate["command"][1:]).command == "migrate"
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker"):
        depends = _service(compose, name)["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_images_build_this_dockerfile_from_the_repository_root(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"migrate", "api", "worker", "postgres", "redis"}
    for name in APP_SERVICES:
        service = _service(compose, name)
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT
        assert (ROOT / service["build"]["dockerfile"]).resolve() == ROOT / "docker/Dockerfile"
        assert service["image"] == "nn-service:latest"


def test_postgres_has_a_volume_and_pg_isready(compose: dict[str, Any]) -> None:
    postgres = _service(compose, "postgres")
    assert str(postgres["image"]).startswith("postgres:16")
    assert any(str(volume).endswith(":/var/lib/postgresql/data") for volume in postgres["volumes"])
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"volume {source} is not declared"


# ----------------------------------------------------------------------------- Redis, for real


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _redis_cli(port: int, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], env=env, capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip()


def test_redis_runs_with_the_password_which_stays_out_of_its_command_line(
    tmp_path: Path, compose: dict[str, Any], env: dict[str, str]
) -> None:
    """The compose file's Redis command and health check, run with the local redis-server (on a
    private port and directory instead of the container's)."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        missing("redis-server and redis-cli are needed: apt-get install redis-server")
    redis = _service(compose, "redis")
    assert redis["user"] == "redis"  # the image's entrypoint drops root only for redis-server
    port = _free_port()
    argv = list(redis["command"])
    assert argv[:2] == ["sh", "-c"]
    script = argv[2].replace(
        "redis-server -", f"redis-server - --port {port} --bind 127.0.0.1 --dir {tmp_path}", 1
    )
    container_env = {"PATH": os.environ["PATH"], **redis["environment"]}
    process = subprocess.Popen(["sh", "-c", script], env=container_env, cwd=tmp_path)
    try:
        password = env["REDIS_PASSWORD"]
        deadline = time.monotonic() + 10
        while _redis_cli(port, container_env, "ping") != "PONG":
            assert process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)
        no_password = {"PATH": os.environ["PATH"]}
        assert "NOAUTH" in _redis_cli(port, no_password, "ping")
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        assert "redis-server" in cmdline and password not in cmdline
        health = redis["healthcheck"]["test"]
        assert health[0] == "CMD-SHELL"
        check = health[1].replace("redis-cli", f"redis-cli -p {port}")
        assert subprocess.run(["sh", "-c", check], env=container_env).returncode == 0
        assert subprocess.run(["sh", "-c", check], env=no_password).returncode != 0
    finally:
        process.terminate()
        process.wait(timeout=10)
