"""docker/requirements.lock, which the image installs, pins every dependency of pyproject.toml
(runtime and the scale extra) at a version its specifier allows, with hashes: adding or raising
a dependency without re-locking fails here, not in a build."""

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
LOCK = ROOT / "docker" / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
#: The extras the image installs besides the runtime dependencies (docker/Dockerfile).
IMAGE_EXTRAS = ("scale",)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def _relock_command() -> str:
    header = LOCK.read_text(encoding="utf-8").splitlines()[:3]
    commands = [line.lstrip("# ").strip() for line in header if "uv pip compile" in line]
    assert commands, f"{LOCK.name} should start with the command that re-locks it"
    return commands[0]


def _pins() -> dict[str, Version]:
    return {
        canonicalize_name(name): Version(version)
        for name, version in PIN.findall(LOCK.read_text(encoding="utf-8"))
    }


def _image_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in IMAGE_EXTRAS:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize("requirement", _image_requirements(), ids=str)
def test_lock_pins_each_dependency_within_its_specifier(requirement: Requirement) -> None:
    pins = _pins()
    name = canonicalize_name(requirement.name)
    relock = _relock_command()
    assert name in pins, f"{requirement} is not in {LOCK.name}; re-lock: {relock}"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"{LOCK.name} pins {name}=={pins[name]}, outside {requirement}; re-lock: {relock}"
    )


def test_lock_covers_the_extras_of_locked_dependencies() -> None:
    """uvicorn[standard] and psycopg[binary] bring more packages; those are pinned too."""
    pins = _pins()
    for name in ("uvloop", "httptools", "websockets", "watchfiles", "psycopg-binary"):
        assert name in pins, f"{name} (an extra of a dependency) is not in {LOCK.name}"


def test_every_pin_has_a_hash_and_the_command_locks_the_image_extras() -> None:
    """The Dockerfile installs with --require-hashes: a pin without a hash fails the build."""
    blocks = re.split(r"^(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    for block in blocks:
        if PIN.match(block):
            assert "--hash=sha256:" in block, f"no hash for {block.split()[0]}"
    relock = _relock_command()
    assert "--generate-hashes" in relock and "pyproject.toml" in relock
    for extra in IMAGE_EXTRAS:
        assert f"--extra {extra}" in relock


def _direct_pins() -> set[str]:
    """Pins the lock says come from pyproject.toml itself (its `# via` annotations)."""
    blocks = re.split(r"^(?=[A-Za-z0-9])", LOCK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {
        canonicalize_name(match.group(1))
        for block in blocks
        if (match := PIN.match(block)) and "nn-service (pyproject.toml)" in block
    }


def test_lock_has_no_direct_pin_that_pyproject_dropped() -> None:
    """A dependency removed from pyproject.toml (or moved to an extra the image does not
    install) leaves the lock out of step: the image would still install it."""
    wanted = {canonicalize_name(r.name) for r in _image_requirements()}
    stale = sorted(_direct_pins() - wanted)
    assert not stale, (
        f"{LOCK.name} pins {stale} for pyproject.toml, which no longer asks for them; "
        f"re-lock: {_relock_command()}"
    )
    assert wanted <= _direct_pins(), sorted(wanted - _direct_pins())


def test_lock_python_is_the_image_python_and_allowed_by_pyproject() -> None:
    """The lock is compiled for one Python version: the base image's, and one pyproject.toml
    admits (wheels for another Python would not install, or would differ)."""
    relock = _relock_command()
    found = re.search(r"--python-version\s+(\S+)", relock)
    assert found, f"the re-lock command should name --python-version: {relock}"
    python = Version(found.group(1))
    requires = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["requires-python"]
    assert SpecifierSet(requires).contains(python), f"{python} is outside {requires}"
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    bases = set(re.findall(r"^FROM\s+python:(\d+\.\d+)", dockerfile, flags=re.MULTILINE))
    assert bases == {str(python)}, f"the image's Python {bases} is not the lock's {python}"
