"""Creating a sweep: check everything a trial could fail on up front, insert the row.

The spec, dataset and options go through the jobs' own checks (service/jobs/submit.py), so a
sweep refuses exactly what a job would; the search space is then checked against that spec
at every bound and choice, naming the path at fault.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from nn_core.errors import SpecError
from nn_core.spec import normalize_spec
from service.config import Settings
from service.db import Database
from service.errors import invalid
from service.jobs import submit as job_submit
from service.models import Sweep, SweepStatus
from service.schemas.jobs import JobSubmit
from service.schemas.sweeps import SweepSubmit
from service.sweeps import space
from service.sweeps.study import check_pruner

#: Metrics every epoch logs (val_* with a validation split); accuracy only for classifiers.
TRAIN_METRICS = ("loss", "accuracy", "mae", "mse")


def job_body(body: SweepSubmit) -> JobSubmit:
    """The job a trial would be without its parameters (for the jobs' own checks)."""
    return JobSubmit(
        spec=body.spec,
        dataset=body.dataset,
        model_name=body.model_name,
        epochs=body.epochs,
        validation_split=body.validation_split,
        test_fraction=body.test_fraction,
        n_samples=body.n_samples,
        noise=body.noise,
    )


def check_objective(body: SweepSubmit, spec: dict[str, Any]) -> None:
    metric = body.objective.metric
    base = metric.removeprefix("val_")
    if base not in TRAIN_METRICS:
        raise invalid(
            "objective.metric",
            f"{metric!r} is not a per-epoch metric ({', '.join(TRAIN_METRICS)}, or val_ of one)",
        )
    if metric.startswith("val_") and not spec["training"].get("validation_split"):
        raise invalid(
            "objective.metric",
            f"{metric!r} needs validation data: set validation_split (or "
            "spec.training.validation_split)",
        )


def create_sweep(database: Database, settings: Settings, owner: str, body: SweepSubmit) -> Sweep:
    jobs_body = job_body(body)
    spec = job_submit.normalize(jobs_body, settings)
    with database.session() as session:
        lineage = job_submit.resolve_data(session, owner, jobs_body)
    job_submit.check_generator_options(jobs_body, lineage.dataset_id)
    check_objective(body, spec)
    pruner = check_pruner(body.pruner)
    dists = space.distributions(body.search_space, body.sampler)
    if body.sampler == "grid":
        space.grid(dists)
    space.check_against_spec(spec, dists, settings.max_model_params, settings.max_epochs)
    initial = [
        space.check_params(params, dists, f"initial_trials[{i}]")
        for i, params in enumerate(body.initial_trials or [])
    ]
    if len(initial) > body.n_trials:
        raise invalid("initial_trials", f"has more than n_trials ({body.n_trials}) entries")
    for i, params in enumerate(initial):
        try:
            normalize_spec(space.apply_params(spec, params), max_params=settings.max_model_params)
        except SpecError as exc:
            raise invalid(
                f"initial_trials[{i}]", f"makes the spec invalid: {exc.message}"
            ) from None
    if body.max_parallel > settings.max_jobs_per_key:
        raise invalid(
            "max_parallel",
            f"is {body.max_parallel}; this server runs at most {settings.max_jobs_per_key} "
            "jobs per key at once",
        )
    options = job_submit.hyperparameters(jobs_body)
    options.pop("epochs", None)
    options.pop("validation_split", None)
    with database.write_session() as session:
        sweep = Sweep(
            owner=owner,
            status=SweepStatus.QUEUED,
            model_name=body.model_name,
            dataset_id=lineage.dataset_id,
            dataset_name=body.dataset,
            spec=spec,
            search_space=body.search_space,
            objective_metric=body.objective.metric,
            direction=body.objective.direction,
            n_trials=body.n_trials,
            max_parallel=body.max_parallel,
            sampler=body.sampler,
            pruner=pruner,
            seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
            initial_trials=initial or None,
            job_options={"hyperparameters": options, "lineage": dataclasses.asdict(lineage)},
            cancel_requested=False,
        )
        session.add(sweep)
        session.flush()
        return sweep
