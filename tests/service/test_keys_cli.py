"""`nn-service keys create/list/revoke` as a real subprocess against a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from server_process import NN_SERVICE
from service_helpers import make_settings

from service import auth, migrate
from service.db import Database
from service.errors import Unauthorized


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NN_SERVICE), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NNS_") and k != "DATABASE_URL"}
    env["NNS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'keys.db'}"
    env["NNS_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_keys_round_trip(cli_env: dict[str, str], tmp_path: Path) -> None:
    created = _run(cli_env, tmp_path, "keys", "create", "--owner", "alice", "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("nns_") and "\n" not in key
    assert "shown only once" in created.stderr and key not in created.stderr

    admin = _run(cli_env, tmp_path, "keys", "create", "--owner", "root", "--admin")
    assert admin.returncode == 0, admin.stderr

    listed = _run(cli_env, tmp_path, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["owner"], r["name"], r["is_admin"], r["revoked_at"]) for r in rows] == [
        ("alice", "ci", False, None),
        ("root", "", True, None),
    ]
    secret = key.split("_", 2)[2]
    assert secret not in listed.stdout
    prefix = rows[0]["prefix"]
    assert key.startswith(prefix + "_")

    table = _run(cli_env, tmp_path, "keys", "list")
    assert table.returncode == 0 and prefix in table.stdout and secret not in table.stdout

    settings = make_settings(cli_env["NNS_DATABASE_URL"], tmp_path / "data")
    database = Database(settings)
    try:
        assert auth.authenticate(database, key).owner == "alice"

        revoked = _run(cli_env, tmp_path, "keys", "revoke", prefix)
        assert revoked.returncode == 0, revoked.stderr
        assert "revoked" in revoked.stdout
        with pytest.raises(Unauthorized, match="revoked"):
            auth.authenticate(database, key)
    finally:
        database.dispose()

    rows = json.loads(_run(cli_env, tmp_path, "keys", "list", "--json").stdout)
    assert rows[0]["revoked_at"] is not None and rows[1]["revoked_at"] is None

    by_id = _run(cli_env, tmp_path, "keys", "revoke", str(rows[1]["id"]))
    assert by_id.returncode == 0, by_id.stderr


def test_revoking_an_unknown_key_fails(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = _run(cli_env, tmp_path, "keys", "revoke", "nns_0123456789ab")
    assert result.returncode == 1
    assert "no such key" in result.stderr


def test_migrate_command(cli_env: dict[str, str], tmp_path: Path) -> None:
    result = _run(cli_env, tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert f"revision {migrate.head_revision()}" in result.stdout


def test_usage_errors_exit_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    assert _run(cli_env, tmp_path, "keys", "create").returncode == 2  # --owner is required
    assert _run(cli_env, tmp_path).returncode == 2
