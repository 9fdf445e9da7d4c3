"""The lock files pin every dependency of pyproject.toml they are for at a version its specifier
allows, with hashes: docker/requirements.lock (runtime and the scale extra), which the image
installs, and .ci/requirements.lock (runtime, dev and scale), which .ci/run installs before the
README's test command. Adding or raising a dependency without re-locking fails here, not in a
build."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
#: Each lock and the extras it installs besides the runtime dependencies.
LOCKS = {
    ROOT / "docker" / "requirements.lock": ("scale",),  # docker/Dockerfile
    ROOT / ".ci" / "requirements.lock": ("dev", "scale"),  # .ci/run
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def _relock_command(lock: Path) -> str:
    header = lock.read_text(encoding="utf-8").splitlines()[:3]
    commands = [line.lstrip("# ").strip() for line in header if "uv pip compile" in line]
    assert commands, f"{lock.name} should start with the command that re-locks it"
    return commands[0]


def _pins(lock: Path) -> dict[str, Version]:
    return {
        canonicalize_name(name): Version(version)
        for name, version in PIN.findall(lock.read_text(encoding="utf-8"))
    }


def _requirements(lock: Path) -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in LOCKS[lock]:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def _where(lock: Path) -> str:
    return str(lock.relative_to(ROOT))


@pytest.mark.parametrize(
    ("lock", "requirement"),
    [(lock, requirement) for lock in LOCKS for requirement in _requirements(lock)],
    ids=lambda value: _where(value) if isinstance(value, Path) else str(value),
)
def test_lock_pins_each_dependency_within_its_specifier(
    lock: Path, requirement: Requirement
) -> None:
    pins = _pins(lock)
    name = canonicalize_name(requirement.name)
    relock = _relock_command(lock)
    assert name in pins, f"{requirement} is not in {_where(lock)}; re-lock: {relock}"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"{_where(lock)} pins {name}=={pins[name]}, outside {requirement}; re-lock: {relock}"
    )


@pytest.mark.parametrize("lock", LOCKS, ids=_where)
def test_lock_covers_the_extras_of_locked_dependencies(lock: Path) -> None:
    """uvicorn[standard] and psycopg[binary] bring more packages; those are pinned too."""
    pins = _pins(lock)
    for name in ("uvloop", "httptools", "websockets", "watchfiles", "psycopg-binary"):
        assert name in pins, f"{name} (an extra of a dependency) is not in {_where(lock)}"


@pytest.mark.parametrize("lock", LOCKS, ids=_where)
def test_every_pin_has_a_hash_and_the_command_locks_its_extras(lock: Path) -> None:
    """The Dockerfile and .ci/run install with --require-hashes: a pin without a hash fails."""
    blocks = re.split(r"^(?=[A-Za-z0-9])", lock.read_text(encoding="utf-8"), flags=re.MULTILINE)
    for block in blocks:
        if PIN.match(block):
            assert "--hash=sha256:" in block, f"no hash for {block.split()[0]}"
    relock = _relock_command(lock)
    assert "--generate-hashes" in relock and "pyproject.toml" in relock
    assert f"--output-file {_where(lock)}" in relock
    for extra in LOCKS[lock]:
        assert f"--extra {extra}" in relock


def _direct_pins(lock: Path) -> set[str]:
    """Pins the lock says come from pyproject.toml itself (its `# via` annotations)."""
    blocks = re.split(r"^(?=[A-Za-z0-9])", lock.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {
        canonicalize_name(match.group(1))
        for block in blocks
        if (match := PIN.match(block)) and "nn-service (pyproject.toml)" in block
    }


@pytest.mark.parametrize("lock", LOCKS, ids=_where)
def test_lock_has_no_direct_pin_that_pyproject_dropped(lock: Path) -> None:
    """A dependency removed from pyproject.toml (or moved to an extra the lock is not for)
    leaves the lock out of step: the image or CI would still install it."""
    wanted = {canonicalize_name(r.name) for r in _requirements(lock)}
    direct = _direct_pins(lock)
    stale = sorted(direct - wanted)
    assert not stale, (
        f"{_where(lock)} pins {stale} for pyproject.toml, which no longer asks for them; "
        f"re-lock: {_relock_command(lock)}"
    )
    assert wanted <= direct, sorted(wanted - direct)


@pytest.mark.parametrize("lock", LOCKS, ids=_where)
def test_lock_python_is_the_image_python_and_allowed_by_pyproject(lock: Path) -> None:
    """A lock is compiled for one Python version: the base image's, and one pyproject.toml
    admits (wheels for another Python would not install, or would differ)."""
    relock = _relock_command(lock)
    found = re.search(r"--python-version\s+(\S+)", relock)
    assert found, f"the re-lock command should name --python-version: {relock}"
    python = Version(found.group(1))
    requires = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["requires-python"]
    assert SpecifierSet(requires).contains(python), f"{python} is outside {requires}"
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    bases = set(re.findall(r"^FROM\s+python:(\d+\.\d+)", dockerfile, flags=re.MULTILINE))
    assert bases == {str(python)}, f"the image's Python {bases} is not the lock's {python}"


def test_ci_installs_its_lock_before_the_readme_command() -> None:
    """.ci/run installs exactly .ci/requirements.lock, with hashes, into the venv that the
    README's command then reuses (pip keeps what already satisfies pyproject.toml)."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = "pip install -q --require-hashes -r .ci/requirements.lock"
    assert install in script
    assert script.index(install) < script.index(".venv/bin/pytest")
