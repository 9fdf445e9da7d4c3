"""tools/check_lock_age.py asks PyPI which pins are outdated; its judgement is checked here
offline, on made-up release lists (the script itself is run by hand, not by the suite)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from packaging.specifiers import SpecifierSet
from packaging.version import Version

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "check_lock_age.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock_age", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def _files(*, yanked: bool = False, requires: str | None = None) -> list[dict[str, object]]:
    return [{"yanked": yanked, "requires_python": requires}]


def test_newest_admissible_release_per_pin() -> None:
    tool = _script()
    releases = {
        "1.0": _files(),
        "1.5": _files(),
        "2.0": _files(),
        "2.1": _files(yanked=True),
        "2.2rc1": _files(),
        "2.3": _files(requires=">=3.12"),
        "2.4": [],
    }
    versions = tool.admissible(releases, Version("3.11"))
    assert sorted(versions) == [Version("1.0"), Version("1.5"), Version("2.0")]
    pins = {"direct": Version("1.0"), "capped": Version("1.0"), "fresh": Version("2.0")}
    specs = {"direct": SpecifierSet(">=1"), "capped": SpecifierSet(">=1,<2")}
    found = tool.outdated(pins, specs, {name: versions for name in pins})
    assert [(o.name, str(o.newest), o.direct) for o in found] == [
        ("capped", "1.5", True),
        ("direct", "2.0", True),
    ]


def test_reads_the_real_locks_and_pyproject() -> None:
    tool = _script()
    extras = {}
    for path in tool.LOCKS:
        lock = path.read_text(encoding="utf-8")
        pins = tool.read_pins(lock)
        assert "numpy" in pins and tool.lock_python(lock) == Version("3.11")
        extras[path.parent.name] = tool.lock_extras(lock)
        specs = tool.direct_specifiers(
            tool.PYPROJECT.read_text(encoding="utf-8"), extras[path.parent.name]
        )
        assert set(specs) <= set(pins), path
    assert extras == {"docker": ("scale",), ".ci": ("dev", "scale")}
