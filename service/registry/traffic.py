"""Weighted aliases: an alias may split traffic between versions by weight and mirror each
request to a shadow version (whose answers are compared, never returned; service/shadow.py).

Stored on the alias row (`ModelAlias.traffic`, NULL for a plain alias) as version ids, so a
version never changes meaning under an alias: {"split": [[version_id, weight], ...],
"shadow": version_id | null}. `ModelAlias.version_id` stays the heaviest share, so listings
and a plain alias's hot path read it without decoding anything. The database is the source
of truth: every request draws afresh from the row it just read, so moving an alias takes
effect on the next request in every API process.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import invalid
from service.models import Model, ModelAlias, ModelVersion
from service.registry.names import shown

#: At most this many versions share one alias's traffic.
MAX_SPLIT = 10
#: Weights are positive integers up to this (any scale: 90/10, 9/1 and 900/100 are alike).
MAX_WEIGHT = 1_000_000

#: One generator per process; draws need to be uniform, not unpredictable.
_rng = random.Random()


@dataclass(frozen=True)
class Share:
    """One version's share of an alias's traffic, as the API shows it."""

    version: int
    weight: int


@dataclass(frozen=True)
class Routing:
    """What an alias does with a request: the split (one share for a plain alias) and the
    shadow version mirrored, if any."""

    split: list[Share]
    shadow: int | None = None


def pick(stored: Any, draw: float | None = None) -> tuple[int, int | None]:
    """(version id to answer, shadow version id or None) for one request, drawn by weight.

    `draw` in [0, 1) replaces the random draw (tests); the hot path passes nothing."""
    split = stored["split"]
    point = (_rng.random() if draw is None else draw) * sum(weight for _, weight in split)
    for version_id, weight in split:
        point -= weight
        if point < 0:
            return int(version_id), stored.get("shadow")
    return int(split[-1][0]), stored.get("shadow")


def build(
    session: Session,
    model: Model,
    split: Sequence[tuple[int, int]],
    shadow: int | None,
    field: str = "body.traffic",
) -> tuple[int, dict[str, Any] | None]:
    """Check a requested split of (version number, weight) and shadow number; returns the
    heaviest version's id and the value to store (None for 100% to one version, no shadow).
    A bad entry answers 422 naming it, e.g. body.traffic.1.version."""
    if not 1 <= len(split) <= MAX_SPLIT:
        raise invalid(field, f"give 1 to {MAX_SPLIT} versions")
    ids = _version_ids(session, model, [n for n, _ in split] + ([shadow] if shadow else []))
    seen: set[int] = set()
    for i, (number, weight) in enumerate(split):
        where = f"{field}.{i}"  # as pydantic names body.traffic.1.weight
        if number in seen:
            raise invalid(f"{where}.version", f"version {number} is listed twice")
        if not 1 <= weight <= MAX_WEIGHT:
            raise invalid(f"{where}.weight", f"must be a whole number from 1 to {MAX_WEIGHT}")
        if number not in ids:
            raise _no_version(model, f"{where}.version", number)
        seen.add(number)
    if shadow is not None and shadow not in ids:
        raise _no_version(model, "body.shadow.version", shadow)
    heaviest = max(split, key=lambda share: share[1])  # the first of equals
    if len(split) == 1 and shadow is None:
        return ids[heaviest[0]], None
    stored = {
        "split": [[ids[number], weight] for number, weight in split],
        "shadow": None if shadow is None else ids[shadow],
    }
    return ids[heaviest[0]], stored


def routing(session: Session, record: ModelAlias) -> Routing:
    """How an alias row routes, in version numbers (for GET and PUT answers)."""
    if record.traffic is None:
        number = session.scalar(
            select(ModelVersion.version).where(ModelVersion.id == record.version_id)
        )
        return Routing([Share(int(number or 0), 100)])
    numbers = _numbers(session, record)
    split = [Share(numbers[vid], int(weight)) for vid, weight in record.traffic["split"]]
    shadow = record.traffic.get("shadow")
    return Routing(split, None if shadow is None else numbers[shadow])


def routings(session: Session, model: Model) -> dict[str, Routing]:
    """alias -> routing for a model's aliases that split traffic or have a shadow."""
    query = select(ModelAlias).where(
        ModelAlias.model_id == model.id, ModelAlias.traffic.is_not(None)
    )
    return {r.alias: routing(session, r) for r in session.scalars(query.order_by(ModelAlias.alias))}


def aliases_using(session: Session, model: Model, version_id: int) -> list[str]:
    """Aliases whose split or shadow includes `version_id` (it must not be deleted)."""
    query = select(ModelAlias.alias, ModelAlias.traffic).where(
        ModelAlias.model_id == model.id, ModelAlias.traffic.is_not(None)
    )
    return [alias for alias, stored in session.execute(query) if version_id in _ids_of(stored)]


def _ids_of(stored: Any) -> set[int]:
    ids = {int(vid) for vid, _ in stored["split"]}
    return ids if stored.get("shadow") is None else ids | {int(stored["shadow"])}


def _numbers(session: Session, record: ModelAlias) -> dict[int, int]:
    ids = _ids_of(record.traffic)
    query = select(ModelVersion.id, ModelVersion.version).where(ModelVersion.id.in_(ids))
    return {vid: number for vid, number in session.execute(query)}


def _version_ids(session: Session, model: Model, numbers: list[int]) -> dict[int, int]:
    query = select(ModelVersion.version, ModelVersion.id).where(
        ModelVersion.model_id == model.id, ModelVersion.version.in_(set(numbers))
    )
    return {number: vid for number, vid in session.execute(query)}


def _no_version(model: Model, field: str, number: int) -> Exception:
    return invalid(
        field,
        "no such version",
        summary=f"model {shown(model.name)!r} has no version {number}",
    )
