"""Checks of docker/Dockerfile and .dockerignore (no container engine).

Building and running the image needs Docker or podman and is done by hand (docker/Dockerfile's
header); these tests keep the files' promises from drifting: multi-stage slim build, non-root user,
health check (docker/compose.yaml has its own tests: test_compose.py). The one promise the image
takes from the program, that `nn-service serve` migrates before its port opens, is checked by
running it for real.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
import shlex
import socket
import sqlite3
import time
from pathlib import Path

import httpx
from server_process import ServerProcess

from service import migrate
from service.models import Base

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


# ----------------------------------------------------------------------------- Dockerfile


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _instructions(DOCKERFILE):
        if keyword == "FROM":
            stages.append([])
        assert stages, f"{keyword} before the first FROM"
        stages[-1].append((keyword, rest))
    return stages


def _args(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for kw, rest in stage if kw == keyword]


def _exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), rest
    return [str(part) for part in value]


def test_multi_stage_build_from_slim_python() -> None:
    stages = _stages()
    assert len(stages) >= 2, "builder and runtime stages"
    images = [shlex.split(_args(stage, "FROM")[0]) for stage in stages]
    for image in images:
        tag, _, digest = image[0].partition("@")
        assert tag == "python:3.11-slim"
        # Pinned by digest, the tag beside it for people (reproducible builds).
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{image[0]}: pin the base by digest"
    assert len({image[0] for image in images}) == 1, "both stages from the same base image"
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^#.*python:3\.11-slim as published on \d{4}-\d{2}-\d{2}", text, re.M), (
        "say in a comment which tag the digest is, and as of when"
    )
    assert [part.lower() for part in images[0][1:]] == ["as", "builder"]
    # The runtime stage starts from the slim base, not from the builder.
    assert "builder" not in [part.lower() for part in images[-1]]


def test_builder_installs_the_lock_then_the_project_into_a_venv() -> None:
    """The dependencies (with the scale extra's) come only from docker/requirements.lock, which
    tests/deploy/test_requirements_lock.py checks against pyproject.toml."""
    builder = _stages()[0]
    runs = _args(builder, "RUN")
    assert any("-m venv /opt/venv" in run for run in runs)
    locked = [run for run in runs if "-r requirements.lock" in run]
    assert len(locked) == 1, runs
    # Wheels only: nothing is compiled, so no compiler is needed in either stage.
    assert "--only-binary=:all:" in locked[0] and "--require-hashes" in locked[0]
    assert "docker/requirements.lock ./" in _args(builder, "COPY")
    project = [run for run in runs if "/opt/venv/bin/pip install --no-deps . " in run + " "]
    assert len(project) == 1, runs
    assert runs.index(locked[0]) < runs.index(project[0])
    assert "pip check" in project[0]


def test_builder_copies_only_what_the_package_needs_and_it_exists() -> None:
    copies = _args(_stages()[0], "COPY")
    sources = [src for line in copies for src in shlex.split(line)[:-1] if not src.startswith("--")]
    assert sources, "the builder copies the project"
    for src in sources:
        assert (ROOT / src).exists(), f"COPY source {src} is missing from the build context"
        assert not _dockerignored(src.rstrip("/")), f".dockerignore excludes COPY source {src}"
    assert {"pyproject.toml", "README.md", "nn_core/", "service/", "migrations/"} <= set(sources)


def test_runtime_stage_copies_only_the_venv_and_has_no_compilers() -> None:
    runtime = _stages()[-1]
    copies = _args(runtime, "COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    runs = " ".join(_args(runtime, "RUN")).lower()
    for tool in ("apt-get install", "gcc", "build-essential", "pip install"):
        assert tool not in runs, f"the runtime stage should not run {tool!r}"


def test_runtime_runs_as_a_non_root_user_owning_data() -> None:
    runtime = _stages()[-1]
    users = _args(runtime, "USER")
    assert users, "no USER in the runtime stage: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001"
    runs = " ".join(_args(runtime, "RUN"))
    assert "--uid 10001" in runs
    assert "-o 10001" in runs and "/data" in runs


def test_runtime_environment_port_and_volume() -> None:
    runtime = _stages()[-1]
    env = " ".join(_args(runtime, "ENV")).split()
    for setting in ("NNS_DATA_DIR=/data", "NNS_HOST=0.0.0.0", "NNS_PORT=8000"):
        assert setting in env
    assert "PATH=/opt/venv/bin:$PATH" in env
    assert _args(runtime, "EXPOSE") == ["8000"]
    assert _args(runtime, "VOLUME") == ['["/data"]']


def test_healthcheck_probes_healthz_with_python() -> None:
    checks = _args(_stages()[-1], "HEALTHCHECK")
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = _exec_form(command)
    assert argv[:2] == ["/opt/venv/bin/python", "-c"]
    assert "curl" not in argv[2] and "/healthz" in argv[2] and "urllib.request" in argv[2]
    compile(argv[2], "<healthcheck>", "exec")


def test_container_command_is_nn_service_serve() -> None:
    runtime = _stages()[-1]
    commands = _args(runtime, "CMD")
    assert len(commands) == 1
    argv = _exec_form(commands[0])
    assert Path(argv[0]).name == "nn-service"
    assert argv[1:] == ["serve"]
    assert not _args(runtime, "ENTRYPOINT"), "compose's worker command replaces CMD whole"


def _schema(path: Path) -> tuple[set[str], list[str]]:
    """(table names, alembic_version rows) of a SQLite file, read without writing to it."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {name for (name,) in rows}
        versions = (
            [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
            if "alembic_version" in tables
            else []
        )
    return tables, versions


def test_serve_has_migrated_the_database_when_its_port_opens(tmp_path: Path) -> None:
    """The image runs `nn-service serve` on an empty volume and health-checks the port: the
    first connection the port accepts must already find the schema at head (no request may
    ever meet a half-made database)."""
    database = tmp_path / "fresh" / "nns.db"
    server = ServerProcess(tmp_path, f"sqlite:///{database}")
    server.launch()
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.process is not None and server.process.poll() is None, (
                server.log_path.read_text()
            )
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                    break  # the port accepts connections: check the database right now
            except OSError:
                assert time.monotonic() < deadline, server.log_path.read_text()
                time.sleep(0.01)
        tables, versions = _schema(database)
        assert versions == [migrate.head_revision()]
        assert set(Base.metadata.tables) <= tables
        # ...and the first request it answers is served from that schema.
        server.wait_ready()
        assert httpx.get(f"{server.base}/healthz").json() == {"status": "ok"}
    finally:
        server.stop()


# ----------------------------------------------------------------------------- .dockerignore


def _dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _dockerignored(path: str) -> bool:
    """Whether a path is excluded (enough of Docker's rules for these files): a pattern that
    matches the path or one of its parent directories excludes it, `!` includes it again, and
    the last matching pattern wins."""
    parts = path.strip("/").split("/")
    paths = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    ignored = False
    for line in _dockerignore_patterns():
        pattern = line.removeprefix("!").rstrip("/")
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))
            for p in paths
        ):
            ignored = not line.startswith("!")
    return ignored


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_context() -> None:
    for path in (".git", ".venv", "data", ".env", "nns.db", ".pytest_cache", ".mypy_cache"):
        assert _dockerignored(path), f"{path} should be in .dockerignore"
    assert not _dockerignored("pyproject.toml")
    assert _dockerignored("docker/Dockerfile") and _dockerignored("tools/postman/node_modules")
    assert not _dockerignored("docker/requirements.lock")  # the builder installs it
