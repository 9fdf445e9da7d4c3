"""Settings come from NNS_* variables, DATABASE_URL and a .env file, with safe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DATABASE_URL", "NNS_DATABASE_URL", "NNS_DATA_DIR", "NNS_PORT", "NNS_RUNNER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_put_the_sqlite_file_in_the_data_dir() -> None:
    settings = Settings()
    assert settings.data_dir == Path("data")
    assert settings.database_url == "sqlite:///data/nns.db"  # i.e. ./data/nns.db
    assert (settings.host, settings.port, settings.runner) == ("127.0.0.1", 8000, "embedded")
    assert settings.max_concurrent_jobs == 2
    assert settings.lease_seconds > settings.heartbeat_seconds
    assert settings.admin_key_path == Path("data") / "admin-key"


def test_data_dir_moves_the_default_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNS_DATA_DIR", "/srv/nns")
    assert Settings().database_url == "sqlite:////srv/nns/nns.db"


def test_plain_database_url_is_accepted_and_nns_prefix_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/one")
    assert Settings().database_url == "postgresql+psycopg://db/one"
    monkeypatch.setenv("NNS_DATABASE_URL", "postgresql+psycopg://db/two")
    assert Settings().database_url == "postgresql+psycopg://db/two"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NNS_PORT=9123\nNNS_RUNNER=rq\nUNRELATED=1\n")
    settings = Settings()
    assert (settings.port, settings.runner) == (9123, "rq")


def test_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NNS_PORT=9123\n")
    monkeypatch.setenv("NNS_PORT", "9456")
    assert Settings().port == 9456


@pytest.mark.parametrize(
    "overrides",
    [
        {"runner": "celery"},
        {"max_concurrent_jobs": 0},
        {"port": 70000},
        {"heartbeat_seconds": 10, "lease_seconds": 5},
    ],
)
def test_bad_values_are_rejected(overrides: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**overrides)  # type: ignore[arg-type]
