"""Fixtures for the property-based API fuzzing: a seeded app per backend and a request counter.

It runs on SQLite, and on Postgres as well with NNS_TEST_ALL_BACKENDS=1 (as in CI).
The fuzzed app lives for the whole module (starting one per example would dwarf the requests)
and is seeded with a model, an alias, a dataset and a job, so generated requests can hit real
resources as well as missing ones. The terminal summary reports how many requests were sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from environment import all_backends
from fastapi import FastAPI
from fuzz_state import SEEDED_PATHS, STATS, Seeded
from schemathesis.python import asgi
from service_helpers import make_settings
from serving_helpers import spam_model_file, xor_model_file
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from nn_core.serialize import save_model
from nn_core.spec import build_model
from nn_core.training import train
from service.app import create_app
from service.config import Settings


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STATS.requests:
        classes = ", ".join(f"{k}: {v}" for k, v in sorted(STATS.by_status.items()))
        terminalreporter.write_line(f"schemathesis fuzzing: {STATS.requests} requests ({classes})")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist: hand this worker's counts to the controller (tests/conftest.py)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["fuzz_requests_by_status"] = dict(STATS.by_status)


def _postgres_schema(postgres_url: str) -> tuple[str, Any]:
    """A URL whose connections live in a new, empty schema, and a function dropping it."""
    schema = f"nns_fuzz_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), drop


def _seed(app: FastAPI, settings: Settings) -> Seeded:
    """The admin key, owning a model version with an alias, a dataset and a finished job."""
    key = settings.admin_key_path.read_text().strip()
    headers = {"Authorization": f"Bearer {key}"}
    with asgi.get_client(app) as http:
        created = http.post(
            "/v1/models/xor/versions", headers=headers, files={"file": ("m.npz", xor_model_file())}
        )
        assert created.status_code == 201, created.text
        for name, data in (("spam", spam_model_file()), ("mnist", _digit_model_file())):
            task_model = http.post(
                f"/v1/models/{name}/versions", headers=headers, files={"file": ("m.npz", data)}
            )
            assert task_model.status_code == 201, task_model.text
        alias = http.put("/v1/models/xor/aliases/production", headers=headers, json={"version": 1})
        assert alias.status_code == 200, alias.text
        csv = "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
        dataset = http.post(
            "/v1/datasets",
            headers=headers,
            files={"file": ("pts.csv", csv.encode())},
            data={"label_column": "y"},
        )
        assert dataset.status_code == 201, dataset.text
        job = http.post(
            "/v1/jobs",
            headers=headers,
            json={"dataset": "pts", "model_name": "xor", "spec": xor_job_spec()},
        )
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        # Finished, so its event stream ends (no runner runs in the fuzzed app).
        assert http.post(f"/v1/jobs/{job_id}/cancel", headers=headers).status_code == 200
    return Seeded(
        key=key,
        path_values={
            "name": ["xor"],
            "ref": ["pts", dataset.json()["id"], "xor_dataset_that_does_not_exist"],
            "job_id": [job_id],
            "version": ["1", "latest", "production"],
            "alias": ["production", "staging"],
        },
    )


def _digit_model_file() -> bytes:
    """A barely trained 784-input, 10-class softmax model: what /v1/mnist/predict serves."""
    spec = {
        "input_dim": 784,
        "layers": [{"type": "dense", "units": 10, "activation": "softmax"}],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.01},
    }
    model = build_model(spec)
    x = np.random.default_rng(0).random((20, 784), dtype=np.float32)
    train(model, x, np.arange(20) % 10)
    return save_model(model)


def xor_job_spec() -> dict[str, Any]:
    return {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": 4, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.05},
        "training": {"epochs": 2, "batch_size": 8, "seed": 1},
    }


#: SQLite; Postgres too with NNS_TEST_ALL_BACKENDS=1 (CI), like every `database_url` test. What
#: Postgres refuses and SQLite stores (NUL characters, out-of-range integers) is tested on both
#: in every run by test_serving_hostile.py's `both_backends` tests.
BACKENDS = ["sqlite"] + (
    [pytest.param("postgres", marks=pytest.mark.postgres)] if all_backends() else []
)


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Seeded, FastAPI]]:
    """A started, seeded app on each backend; its lifespan is run by schemathesis's client."""
    tmp = tmp_path_factory.mktemp("fuzz")
    drop = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'nns.db'}"
    else:
        url, drop = _postgres_schema(request.getfixturevalue("postgres_url"))
    settings = make_settings(
        url,
        tmp / "data",
        max_epochs=50,
        max_model_params=20_000,
        max_jobs_per_key=1_000_000,
        predict_rate_limit=0,
    )
    app = create_app(settings, start_runner=False)
    try:
        with asgi.get_client(app):  # runs the lifespan: migrations and the admin key
            seeded = _seed(app, settings)
        SEEDED_PATHS.clear()
        SEEDED_PATHS.update(seeded.path_values)
        yield settings, seeded, app
    finally:
        SEEDED_PATHS.clear()
        asgi.shutdown_lifespans()
        if drop is not None:
            drop()
