"""Helpers shared by the service tests (a uniquely named module: test dirs have no __init__)."""

from __future__ import annotations

import shutil
from pathlib import Path

from service.config import Settings


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: explicit values only, never the developer's .env file."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, data_dir=data_dir, **overrides
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def settings_on_copy(migrated_sqlite: Path, tmp_path: Path, **overrides: object) -> Settings:
    """Settings on a SQLite file of its own: a copy of the session's migrated one."""
    db_file = tmp_path / "db" / "nns.db"
    db_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite, db_file)
    return make_settings(f"sqlite:///{db_file}", tmp_path / "data", **overrides)
