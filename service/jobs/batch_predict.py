"""The "batch_predict" job kind: predict every row of a dataset with a model version, to a file.

It goes through the same submit, runner and claim as a training job (so it runs on the RQ
workers when the service is scaled out); `run_training` hands such a job here before loading
any training data. The options (model, version id, split, format) live in the job's
hyperparameters; progress is the job's epoch = rows written of total_epochs = rows to
predict, with one metric point per chunk, so GET /v1/jobs/{id} and its SSE stream report it.

Memory: the input X of the chosen split is loaded whole (datasets are stored as one blob);
the output is not. Rows are predicted `settings.batch_chunk_rows` (NNS_BATCH_CHUNK_ROWS,
default 10,000) at a time and each chunk is appended to the file on disk (CSV directly; NPZ
through .npy memory maps zipped at the end), so beyond X the job holds one chunk's input,
output and decoded labels. The file lives in settings.data_dir/batch-predictions/, which
API and workers must share. Success writes the result's description on the job's `metrics`,
the `succeeded` status and the `batch_prediction.finished` webhook event in one fenced
transaction; a crashed run starts again from row 0 (its file is rewritten).
"""

from __future__ import annotations

import csv
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, update

from nn_core.heads import Decoded
from nn_core.model import Model as NNModel
from nn_core.serialize import load_model
from service import predictor
from service.config import Settings
from service.datasets_store import find_upload, load_training_data, upload_arrays, upload_split
from service.db import Database
from service.errors import NotFound, ServiceError
from service.jobs import store
from service.jobs.heartbeat import Heartbeat
from service.jobs.outcome import JobOutcome
from service.jobs.registry import LostOwnership
from service.jobs.retry import retry_db
from service.models import JobStatus, MetricPoint, ModelVersion, TrainingJob, utcnow
from service.private_files import private_dir, private_file
from service.registry import reads
from service.webhooks import events, outbox

KIND = "batch_predict"
OPTIONS_KEY = "batch"
RESULT_KEY = "batch_prediction"
RESULT_DIR = "batch-predictions"

log = logging.getLogger(__name__)


def is_batch_predict(job: TrainingJob) -> bool:
    return (job.hyperparameters or {}).get("kind") == KIND


def options(job: TrainingJob) -> dict[str, Any]:
    return dict((job.hyperparameters or {}).get(OPTIONS_KEY) or {})


def result_path(settings: Settings, job_id: str, fmt: str) -> Path:
    return settings.data_dir / RESULT_DIR / f"{job_id}.{fmt}"


def stored_result(job: TrainingJob) -> dict[str, Any] | None:
    """What a succeeded batch stored on its row (rows, columns); None before that."""
    metrics = job.metrics
    result = metrics.get(RESULT_KEY) if isinstance(metrics, dict) else None
    return result if isinstance(result, dict) else None


# ----------------------------------------------------------------------------- loading


def load_rows(database: Database, settings: Settings, job: TrainingJob) -> Any:
    """The input rows of the job's split, in stored order (train then test for built-ins)."""
    split = options(job).get("split", "all")
    with database.session() as session:
        if job.dataset_id is not None:
            upload = find_upload(session, job.owner, job.dataset_id, with_data=True)
            if upload is None:
                raise NotFound.for_field(
                    "dataset", "deleted", summary="the dataset was deleted after the submit"
                )
            x, y, _ = upload_arrays(settings, upload)
            if split == "all":
                return x
            train, test = upload_split(upload, y)
            return x[train] if split == "train" else x[test]
        data = load_training_data(session, settings, job.owner, job.dataset_name)
    if split == "train":
        return data.X_train
    if split == "test":
        return data.X_test
    return np.concatenate([data.X_train, data.X_test])


def load_version(database: Database, version_id: int) -> tuple[NNModel, float | None]:
    """The version's model and decision threshold, as :predict uses them."""
    with database.session() as session:
        threshold = session.scalar(
            select(ModelVersion.threshold).where(ModelVersion.id == version_id)
        )
        return load_model(reads.read_weights(session, version_id)), threshold


# ----------------------------------------------------------------------------- writers


def columns(decoded: Decoded) -> list[str]:
    """The CSV header (NPZ: the array names are labels and probabilities/scores/values)."""
    if decoded.labels is None:
        assert decoded.values is not None
        width = decoded.values.shape[1]
        return ["row", *(["value"] if width == 1 else [f"value_{i}" for i in range(width)])]
    if decoded.probabilities is None:
        return ["row", "label", "score"]
    return ["row", "label", *(f"p_{c}" for c in decoded.classes)]


def outputs(decoded: Decoded) -> tuple[np.ndarray | None, str, np.ndarray]:
    """(labels or None, the name of the numbers, the numbers) of one decoded chunk."""
    if decoded.labels is None:
        assert decoded.values is not None
        return None, "values", decoded.values
    if decoded.probabilities is None:
        assert decoded.values is not None
        return _labels(decoded), "scores", decoded.values[:, 0]
    return _labels(decoded), "probabilities", decoded.probabilities


def _labels(decoded: Decoded) -> np.ndarray:
    assert decoded.labels is not None
    if decoded.multilabel:
        raise ServiceError(
            "batch predictions do not support multi-label models yet; use :predict",
            status=422,
            type="unsupported_model",
        )
    dtype = np.asarray(decoded.classes).dtype if decoded.classes else None
    return np.asarray(decoded.labels, dtype=dtype)


class CsvWriter:
    """Appends chunks to a CSV file: row, label, probabilities (exact float reprs)."""

    def __init__(self, path: Path, total: int) -> None:
        self.handle = path.open("w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        self.header = False

    def write(self, start: int, decoded: Decoded) -> None:
        if not self.header:
            self.writer.writerow(columns(decoded))
            self.header = True
        labels, _, numbers = outputs(decoded)
        rows = np.arange(start, start + len(numbers)).tolist()
        table = numbers.reshape(len(numbers), -1).tolist()
        if labels is None:
            self.writer.writerows([r, *v] for r, v in zip(rows, table, strict=True))
        else:
            self.writer.writerows(
                [r, lab, *v] for r, lab, v in zip(rows, labels.tolist(), table, strict=True)
            )

    def close(self) -> list[str]:
        self.handle.close()
        return []

    def abort(self) -> None:
        self.handle.close()


class NpzWriter:
    """Fills .npy memory maps chunk by chunk, then zips them into an NPZ (no pickles)."""

    def __init__(self, path: Path, total: int) -> None:
        self.path, self.total = path, total
        self.arrays: dict[str, np.memmap] = {}

    def _array(self, name: str, like: np.ndarray) -> np.memmap:
        if name not in self.arrays:
            shape = (self.total, *like.shape[1:])
            file = self.path.with_name(f"{self.path.name}.{name}.npy")
            self.arrays[name] = np.lib.format.open_memmap(
                file, mode="w+", dtype=like.dtype, shape=shape
            )
        return self.arrays[name]

    def write(self, start: int, decoded: Decoded) -> None:
        labels, name, numbers = outputs(decoded)
        if labels is not None:
            self._array("labels", labels)[start : start + len(labels)] = labels
        self._array(name, numbers)[start : start + len(numbers)] = numbers

    def close(self) -> list[str]:
        with zipfile.ZipFile(self.path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, array in self.arrays.items():
                array.flush()
                file = Path(str(array.filename))
                del array
                archive.write(file, f"{name}.npy")
                file.unlink()
        names = list(self.arrays)
        self.arrays.clear()
        return names

    def abort(self) -> None:
        files = [Path(str(array.filename)) for array in self.arrays.values()]
        self.arrays.clear()
        for file in files:
            file.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- running


def run_batch_predict(
    database: Database, settings: Settings, job: TrainingJob, worker_id: str, heartbeat: Heartbeat
) -> JobOutcome:
    """Predict the job's rows chunk by chunk into its result file; settle the job."""
    opts = options(job)
    x = load_rows(database, settings, job)
    model, threshold = load_version(database, int(opts["version_id"]))
    total = len(x)
    _commit(database, job.id, worker_id, 0, total)
    fmt = opts.get("format", "csv")
    final = result_path(settings, job.id, fmt)
    private_dir(settings.data_dir)
    private_dir(final.parent)
    partial = private_file(final.with_name(f"{final.name}.partial"))  # the writers keep its mode
    writer = (CsvWriter if fmt == "csv" else NpzWriter)(partial, total)
    header: list[str] = []
    step = settings.batch_chunk_rows
    try:
        for start in range(0, total, step):
            chunk = x[start : start + step]
            rows = chunk.tolist() if model.raw_input else chunk
            decoded = predictor.run(
                model, predictor.model_input(model, rows, "dataset"), "dataset", threshold
            )
            header = header or columns(decoded)
            writer.write(start, decoded)
            done = start + len(chunk)
            if _commit(database, job.id, worker_id, done, total) or heartbeat.should_stop():
                break
        else:
            names = writer.close()
            os.replace(partial, final)
            result = {"rows": total, "format": fmt, "columns": names or header}
            return _settle(database, job, worker_id, result)
    finally:
        writer.abort()  # a no-op after close(); else drops the half-written files
        partial.unlink(missing_ok=True)
    if heartbeat.lost.is_set():
        raise LostOwnership(job.id)
    if not store.finish_job(database, job.id, worker_id, JobStatus.CANCELLED):
        raise LostOwnership(job.id)
    return JobOutcome.CANCELLED


def _commit(database: Database, job_id: str, worker_id: str, done: int, total: int) -> bool:
    """Progress after a chunk (a metric point per chunk); returns the cancel flag."""

    def once() -> bool:
        with database.write_session() as session:
            result = session.execute(
                update(TrainingJob)
                .where(store.fenced(job_id, worker_id))
                .values(epoch=done, total_epochs=total, heartbeat_at=utcnow())
            )
            if not getattr(result, "rowcount", 0):
                raise LostOwnership(job_id)
            if done:
                session.add(MetricPoint(job_id=job_id, epoch=done, metrics={"rows_done": done}))
            return bool(
                session.scalar(select(TrainingJob.cancel_requested).where(TrainingJob.id == job_id))
            )

    return retry_db(once, f"job {job_id}: {done} rows")


def _settle(
    database: Database, job: TrainingJob, worker_id: str, result: dict[str, Any]
) -> JobOutcome:
    opts = options(job)
    event = {
        "batch_prediction_id": job.id,
        "status": "succeeded",
        "model": job.model_name,
        "version": opts.get("version"),
        "dataset": job.dataset_name,
        "split": opts.get("split"),
        "format": result["format"],
        "rows": result["rows"],
        "result_url": f"/v1/batch-predictions/{job.id}/result",
    }

    def once() -> bool:
        with database.write_session() as session:
            updated = session.execute(
                update(TrainingJob)
                .where(store.fenced(job.id, worker_id))
                .values(metrics={RESULT_KEY: result}, heartbeat_at=utcnow())
            )
            if not getattr(updated, "rowcount", 0):
                return False
            if not store.finish(session, job.id, worker_id, JobStatus.SUCCEEDED):
                return False
            outbox.record(session, job.owner, events.BATCH_PREDICTION_FINISHED, event)
            return True

    if not retry_db(once, f"job {job.id}: settle the batch prediction"):
        raise LostOwnership(job.id)
    log.info("job %s: batch prediction of %d rows written", job.id, result["rows"])
    return JobOutcome.SUCCEEDED
