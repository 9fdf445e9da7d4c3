"""The data directory and the files the service writes there: readable by its own user only.

The data dir holds the SQLite database (API key hashes, webhook secrets, datasets, models), the
admin key and batch prediction results, so it is 0700 and its files 0600 whatever the process
umask is: `mkdir(mode=)` and `open(mode=)` are masked by the umask, and an existing directory or
file keeps its old mode, so each is chmod-ed as well. SQLite creates a database's -wal, -shm and
-journal files with the database file's own mode, so creating that file 0600 before SQLite
opens it covers them too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: Files SQLite keeps beside a database file.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and make it 0700; returns it.

    Only `path` itself is chmod-ed: its parents may be shared directories (/var/lib, a home).
    A directory owned by someone else (a mounted volume) keeps its mode, with a warning.
    """
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    _chmod(path, PRIVATE_DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty 0600 if it does not exist (an existing file is never truncated,
    only made 0600); returns it."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    _chmod(path, PRIVATE_FILE_MODE)
    return path


def private_sqlite_file(path: Path) -> None:
    """Before SQLite opens `path`: the file exists 0600 (an empty file is an empty database),
    and companions left by an older version are made 0600 too.

    A file that cannot be created (read-only or full disk) is left to SQLite, whose error
    the callers already turn into a one-line reason.
    """
    try:
        private_file(path)
    except OSError as exc:
        log.debug("cannot create %s before SQLite does: %s", path, exc)
        return
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _chmod(companion, PRIVATE_FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except OSError as exc:  # not ours (a volume's root), or a read-only filesystem
        log.warning("cannot make %s mode %o: %s", path, mode, exc.strerror or exc)
