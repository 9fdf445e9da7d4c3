"""Optuna over our own tables: each decision rebuilds an in-memory study from the sweep's rows.

Where the study state lives: in `sweeps` and `sweep_trials` (plus each trial job's metric
points, its intermediate values), all Alembic-managed and the same on SQLite and Postgres.
No Optuna storage exists; a decision (ask the next trial's parameters, prune a trial, rank
the trials) builds a fresh `optuna.Study` with `add_trial` per row, asks it, and writes back
what changed (parameters, and the trial's system attributes that samplers such as CMA-ES and
pruners such as successive halving keep there). So a sweep survives any restart, and any
machine that reaches the database can take the next decision.

The study's name is the sweep id (Hyperband assigns brackets from it) and trials are added
in number order, so Optuna's trial numbers are ours. A sampler is seeded with the sweep's
seed plus the trial number: rebuilt each time, a fixed seed would propose the same point
(except the grid sampler, whose seed only fixes the order of the grid).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from service.errors import invalid
from service.models import TrialState
from service.sweeps import space

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "successive_halving", "hyperband", "none")
PRUNER_OPTIONS: dict[str, dict[str, type]] = {
    "median": {"n_startup_trials": int, "n_warmup_steps": int, "interval_steps": int},
    "successive_halving": {"min_resource": int, "reduction_factor": int},
    "hyperband": {"min_resource": int, "reduction_factor": int},
    "none": {},
}
_STATES = {
    TrialState.RUNNING: OptunaState.RUNNING,
    TrialState.COMPLETE: OptunaState.COMPLETE,
    TrialState.PRUNED: OptunaState.PRUNED,
    TrialState.FAILED: OptunaState.FAIL,
    TrialState.CANCELLED: OptunaState.FAIL,
}


@dataclass
class TrialRecord:
    """What a decision needs of one trial row (and its job's objective per epoch)."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyConfig:
    """The sweep's settings that shape its study."""

    sweep_id: str
    search_space: dict[str, Any]
    sampler: str
    pruner: dict[str, Any]
    direction: str
    seed: int
    total_epochs: int

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return space.distributions(self.search_space, self.sampler)


def check_pruner(value: Any) -> dict[str, Any]:
    """`"median"` or `{"name": "median", "n_startup_trials": 2}` -> the stored object."""
    config = {"name": value} if isinstance(value, str) else value
    if not isinstance(config, dict) or config.get("name") not in PRUNERS:
        raise invalid("pruner", f"must be one of {', '.join(PRUNERS)} (or an object with a name)")
    options = PRUNER_OPTIONS[config["name"]]
    for key, item in config.items():
        if key == "name":
            continue
        if key not in options:
            raise invalid(f"pruner.{key}", f"is not an option of the {config['name']} pruner")
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 10_000:
            raise invalid(f"pruner.{key}", "must be an integer from 0 to 10000")
    if "reduction_factor" in config and config["reduction_factor"] < 2:
        raise invalid("pruner.reduction_factor", "must be at least 2")
    if "min_resource" in config and config["min_resource"] < 1:
        raise invalid("pruner.min_resource", "must be at least 1")
    return dict(config)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    options = {k: v for k, v in config.pruner.items() if k != "name"}
    name = config.pruner.get("name", "none")
    if name == "median":
        return optuna.pruners.MedianPruner(**options)
    if name == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(**options)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(max_resource=max(1, config.total_epochs), **options)
    return optuna.pruners.NopPruner()


def make_sampler(config: StudyConfig, number: int) -> optuna.samplers.BaseSampler:
    seed = (config.seed + number) % (2**32)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "grid":  # its seed only shuffles the grid: the same every time
        return optuna.samplers.GridSampler(space.grid(config.distributions), seed=config.seed)
    if config.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def rebuild(
    config: StudyConfig, trials: Sequence[TrialRecord], *, sampler_for: int | None = None
) -> optuna.Study:
    """An in-memory study holding `trials` (in number order); its sampler is seeded for trial
    number `sampler_for` (the next trial's, when asking)."""
    number = len(trials) if sampler_for is None else sampler_for
    study = optuna.create_study(
        study_name=config.sweep_id,
        direction="maximize" if config.direction == "maximize" else "minimize",
        sampler=make_sampler(config, number),
        pruner=make_pruner(config),
    )
    dists = config.distributions
    for record in sorted(trials, key=lambda t: t.number):
        state = _STATES[TrialState(record.state)]
        value = record.value if state == OptunaState.COMPLETE else None
        if state == OptunaState.COMPLETE and (value is None or not math.isfinite(value)):
            state, value = OptunaState.FAIL, None
        params = {k: v for k, v in record.params.items() if k in dists}
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=value,
                params=params,
                distributions={k: dists[k] for k in params},
                intermediate_values=record.intermediate,
                system_attrs=record.system_attrs,
            )
        )
    return study


@dataclass(frozen=True)
class Asked:
    params: dict[str, Any]
    system_attrs: dict[str, Any]


def ask(
    config: StudyConfig,
    trials: Sequence[TrialRecord],
    initial: Sequence[Mapping[str, Any]] | None = None,
) -> Asked:
    """The next trial's parameters (an initial trial's, while any are left)."""
    number = len(trials)
    if initial and number < len(initial):
        return Asked(dict(initial[number]), {})
    study = rebuild(config, trials)
    trial = study.ask(config.distributions)
    frozen = study._storage.get_trial(trial._trial_id)
    return Asked(dict(trial.params), _json_attrs(frozen.system_attrs))


@dataclass(frozen=True)
class PruneDecision:
    prune: bool
    system_attrs: dict[str, Any]


def should_prune(config: StudyConfig, trials: Sequence[TrialRecord], number: int) -> PruneDecision:
    """Ask the pruner about running trial `number`, given every trial's values so far."""
    study = rebuild(config, trials)
    frozen: FrozenTrial = study.get_trials(deepcopy=False)[number]
    prune = bool(make_pruner(config).prune(study, frozen))
    after = study._storage.get_trial(frozen._trial_id).system_attrs
    return PruneDecision(prune, _json_attrs(after))


def best(config: StudyConfig, trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The complete trial with the best finite value (the lowest number on a tie)."""
    complete = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    if not complete:
        return None
    sign = -1.0 if config.direction == "maximize" else 1.0
    return min(complete, key=lambda t: (sign * float(t.value or 0.0), t.number))


def importances(config: StudyConfig, trials: Sequence[TrialRecord]) -> dict[str, float] | None:
    """Optuna's parameter importances (its default evaluator), or None with too few
    complete trials or no variation to explain."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if len(complete) < 2 or len(config.search_space) < 1:
        return None
    try:
        study = rebuild(config, trials)
        found = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        log.info("sweep %s: no parameter importances: %s", config.sweep_id, exc)
        return None
    return {name: float(value) for name, value in found.items() if math.isfinite(value)}


def _json_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """System attributes are JSON-serializable by Optuna's contract (RDB storage relies on it)."""
    return dict(attrs)
