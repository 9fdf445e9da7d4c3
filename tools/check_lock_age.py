"""Report pins of the lock files older than the newest release their ranges admit.

docker/requirements.lock (what the image installs) and .ci/requirements.lock (what CI installs
before the README's test command) make every build install the same files; their cost is that
they age. Run this now and then (it asks PyPI's JSON API, so it needs the network and is not
part of the test suite; tests/deploy/test_requirements_lock.py checks both locks against
pyproject.toml offline):

    .venv/bin/python tools/check_lock_age.py            # a table of outdated pins, exit 0
    .venv/bin/python tools/check_lock_age.py --strict   # exit 1 when any pin is outdated

A direct dependency is compared with the newest final release its pyproject.toml specifier
admits; a transitive one with the newest final release. Releases whose files are all yanked,
or that do not support the lock's Python version, are skipped. Re-lock with the command at
the top of the lock file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = (ROOT / "docker" / "requirements.lock", ROOT / ".ci" / "requirements.lock")
PYPROJECT = ROOT / "pyproject.toml"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)
PYTHON_VERSION = re.compile(r"--python-version\s+(\S+)")
EXTRA = re.compile(r"--extra\s+(\S+)")


@dataclass(frozen=True)
class Outdated:
    """One pin with a newer admissible release."""

    name: str
    pinned: Version
    newest: Version
    direct: bool


def read_pins(lock_text: str) -> dict[str, Version]:
    return {canonicalize_name(n): Version(v) for n, v in PIN.findall(lock_text)}


def lock_python(lock_text: str) -> Version:
    """The Python version the lock was compiled for (its re-lock command says)."""
    found = PYTHON_VERSION.search(lock_text)
    return Version(found.group(1) if found else "3.11")


def lock_extras(lock_text: str) -> tuple[str, ...]:
    """The pyproject.toml extras the lock was compiled with (its re-lock command says)."""
    header = "\n".join(lock_text.splitlines()[:3])
    return tuple(EXTRA.findall(header))


def direct_specifiers(pyproject_text: str, extras: Iterable[str]) -> dict[str, SpecifierSet]:
    """pyproject.toml's runtime requirements and those of `extras`, by canonical name."""
    project = tomllib.loads(pyproject_text)["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    specs: dict[str, SpecifierSet] = {}
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        specs[name] = specs.get(name, SpecifierSet()) & requirement.specifier
    return specs


def admissible(releases: Mapping[str, list[dict[str, object]]], python: Version) -> list[Version]:
    """Final releases with at least one file that is not yanked and supports `python`."""
    found = []
    for text, files in releases.items():
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version.is_prerelease or version.is_devrelease or not files:
            continue
        if any(_usable(entry, python) for entry in files):
            found.append(version)
    return found


def _usable(entry: Mapping[str, object], python: Version) -> bool:
    if entry.get("yanked"):
        return False
    requires = entry.get("requires_python")
    if not requires:
        return True
    try:
        return SpecifierSet(str(requires)).contains(python, prereleases=True)
    except InvalidSpecifier:
        return True


def outdated(
    pins: Mapping[str, Version],
    specs: Mapping[str, SpecifierSet],
    available: Mapping[str, Iterable[Version]],
) -> list[Outdated]:
    """Pins older than the newest available version their range admits (pure: no network)."""
    result = []
    for name, pinned in sorted(pins.items()):
        spec = specs.get(name, SpecifierSet())
        candidates = [v for v in available.get(name, ()) if spec.contains(v)]
        newest = max(candidates, default=None)
        if newest is not None and newest > pinned:
            result.append(Outdated(name, pinned, newest, name in specs))
    return result


def fetch_releases(name: str, timeout: float = 20.0) -> dict[str, list[dict[str, object]]]:
    """PyPI's JSON API: {version: [file, ...]} for one project."""
    url = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        releases: dict[str, list[dict[str, object]]] = json.load(response)["releases"]
    return releases


def report(lock: Path, available: dict[str, list[Version]]) -> int:
    """Print one lock's outdated pins; the count of them."""
    lock_text = lock.read_text(encoding="utf-8")
    pins, python = read_pins(lock_text), lock_python(lock_text)
    specs = direct_specifiers(PYPROJECT.read_text(encoding="utf-8"), lock_extras(lock_text))
    for name in sorted(set(pins) - set(available)):
        try:
            available[name] = admissible(fetch_releases(name), python)
        except OSError as exc:
            print(f"{name}: could not ask PyPI ({exc})", file=sys.stderr)
    stale = outdated(pins, specs, available)
    where = lock.relative_to(ROOT)
    if not stale:
        print(f"all {len(pins)} pins of {where} are the newest their ranges admit")
        return 0
    width = max(len(item.name) for item in stale)
    print(f"{where}: {len(stale)} of {len(pins)} pins have newer releases (Python {python}):")
    for item in stale:
        kind = "direct" if item.direct else "transitive"
        print(f"  {item.name:<{width}}  {item.pinned} -> {item.newest}  ({kind})")
    print(f"re-lock with the command at the top of {where}")
    return len(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a pin is outdated")
    args = parser.parse_args(argv)
    available: dict[str, list[Version]] = {}
    stale = sum(report(lock, available) for lock in LOCKS)
    return 1 if stale and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
