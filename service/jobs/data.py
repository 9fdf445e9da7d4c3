"""The training data of a job, through the one loader the service has for datasets."""

from __future__ import annotations

from service.config import Settings
from service.datasets_store import TrainingData, load_training_data
from service.db import Database
from service.models import TrainingJob


def load_job_data(database: Database, settings: Settings, job: TrainingJob) -> TrainingData:
    """The job's train/test split; the same on every attempt, so a resumed job sees the same
    rows (uploads split with a fixed seed or tested on their own test file or test dataset,
    built-ins with their own or a seeded split)."""
    hyper = job.hyperparameters or {}
    test_fraction = hyper.get("test_fraction")
    with database.session() as session:
        return load_training_data(
            session,
            settings,
            job.owner,
            job.dataset_id or job.dataset_name,
            test_fraction=float(test_fraction) if test_fraction is not None else None,
            n_samples=hyper.get("n_samples"),
            noise=hyper.get("noise"),
            test_dataset=job.test_dataset_id,
        )
