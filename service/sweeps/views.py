"""Reading sweeps for clients: rows to the response schemas, owner-scoped lookups.

Each lookup opens its own short session, so a long-lived SSE response holds no transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db import Database
from service.errors import NotFound
from service.models import Model, ModelVersion, Sweep, SweepTrial, TrainingJob, TrialState
from service.schemas.jobs import ModelVersionRef
from service.schemas.sweeps import (
    BestTrial,
    Objective,
    SweepLinks,
    SweepResponse,
    SweepSummary,
    TrialResponse,
)
from service.sweeps import records, study

SWEEPS_PATH = "/v1/sweeps"


def sweep_not_found(sweep_id: str) -> NotFound:
    return NotFound.for_field(
        "sweep_id", "no such sweep", summary=f"sweep {sweep_id[:60]!r} not found"
    )


def get_owned_sweep(session: Session, owner: str, sweep_id: str) -> Sweep:
    """The sweep if `owner` owns it; another owner's is reported exactly like a missing one."""
    sweep = session.scalar(select(Sweep).where(Sweep.id == sweep_id, Sweep.owner == owner))
    if sweep is None:
        raise sweep_not_found(sweep_id)
    return sweep


def counts(rows: Sequence[SweepTrial]) -> dict[str, int]:
    return {state.value: sum(row.state == state for row in rows) for state in TrialState}


def _version_ref(session: Session, version_id: int | None) -> ModelVersionRef | None:
    if version_id is None:
        return None
    row = session.execute(
        select(ModelVersion.id, ModelVersion.version, Model.name)
        .join(Model, Model.id == ModelVersion.model_id)
        .where(ModelVersion.id == version_id)
    ).first()
    return ModelVersionRef(id=row.id, model_name=row.name, version=row.version) if row else None


def to_response(session: Session, sweep: Sweep) -> SweepResponse:
    rows = records.trial_rows(session, sweep.id)
    job_ids = [row.job_id for row in rows if row.job_id]
    jobs = {
        row.id: row
        for row in session.execute(
            select(TrainingJob.id, TrainingJob.status, TrainingJob.epoch).where(
                TrainingJob.id.in_(job_ids)
            )
        )
    }
    values = records.intermediate_values(session, job_ids, sweep.objective_metric)
    trials = [
        TrialResponse(
            number=row.number,
            state=row.state,  # type: ignore[arg-type]
            params=row.params or {},
            value=row.value,
            job_id=row.job_id,
            job_status=jobs[row.job_id].status if row.job_id in jobs else None,
            epoch=jobs[row.job_id].epoch if row.job_id in jobs else 0,
            intermediate_values=values.get(row.job_id, {}) if row.job_id else {},
            failure_reason=row.failure_reason,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )
        for row in rows
    ]
    base = f"{SWEEPS_PATH}/{sweep.id}"
    return SweepResponse(
        id=sweep.id,
        status=sweep.status,  # type: ignore[arg-type]
        model_name=sweep.model_name,
        dataset=sweep.dataset_name,
        objective=Objective(metric=sweep.objective_metric, direction=sweep.direction),  # type: ignore[arg-type]
        n_trials=sweep.n_trials,
        max_parallel=sweep.max_parallel,
        sampler=sweep.sampler,
        pruner=sweep.pruner,
        seed=sweep.seed,
        search_space=sweep.search_space,
        spec=sweep.spec,
        counts=counts(rows),
        best_trial=_best(session, sweep, rows),
        importances=sweep.importances,
        cancel_requested=sweep.cancel_requested,
        failure_reason=sweep.failure_reason,
        trials=trials,
        created_at=sweep.created_at,
        finished_at=sweep.finished_at,
        links=SweepLinks(
            self=base,
            events=f"{base}/events",
            cancel=f"{base}/cancel",
            jobs=f"/v1/jobs?sweep_id={sweep.id}",
        ),
    )


def _best(session: Session, sweep: Sweep, rows: Sequence[SweepTrial]) -> BestTrial | None:
    """The registered best trial once the sweep succeeded; the best so far before that."""
    config = records.config_of(sweep)
    if sweep.best_trial_number is not None:
        best_number: int | None = sweep.best_trial_number
    else:
        found = study.best(
            config,
            [study.TrialRecord(r.number, r.state, {}, r.value) for r in rows],
        )
        best_number = found.number if found else None
    row = next((r for r in rows if r.number == best_number), None)
    if row is None or row.value is None:
        return None
    return BestTrial(
        number=row.number,
        job_id=row.job_id,
        params=row.params or {},
        value=row.value,
        model_version=_version_ref(session, sweep.model_version_id),
    )


def sweep_view(database: Database, owner: str, sweep_id: str) -> SweepResponse:
    with database.session() as session:
        return to_response(session, get_owned_sweep(session, owner, sweep_id))


def list_sweeps(
    database: Database, owner: str, limit: int, offset: int
) -> tuple[list[SweepSummary], int]:
    with database.session() as session:
        total = (
            session.scalar(select(func.count()).select_from(Sweep).where(Sweep.owner == owner)) or 0
        )
        sweeps = session.scalars(
            select(Sweep)
            .where(Sweep.owner == owner)
            .order_by(Sweep.created_at.desc(), Sweep.id.desc())
            .limit(limit)
            .offset(offset)
        ).all()
        items = []
        for sweep in sweeps:
            items.append(
                SweepSummary(
                    id=sweep.id,
                    status=sweep.status,  # type: ignore[arg-type]
                    model_name=sweep.model_name,
                    dataset=sweep.dataset_name,
                    n_trials=sweep.n_trials,
                    counts=counts(records.trial_rows(session, sweep.id)),
                    created_at=sweep.created_at,
                    finished_at=sweep.finished_at,
                )
            )
        return items, total
