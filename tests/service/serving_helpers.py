"""Tiny real models for the model-registry and prediction tests (trained with nn_core here)."""

from __future__ import annotations

from functools import cache

import httpx
import numpy as np
from fastapi import FastAPI

from nn_core.serialize import save_model
from nn_core.spec import build_model
from nn_core.training import train
from service.db import Database
from service.models import TrainingJob

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, dtype=np.float32)
XOR_Y = np.array(["no", "yes", "yes", "no"] * 10)


@cache
def xor_model_file() -> bytes:
    """A softmax classifier that has learned XOR with string labels "no"/"yes"."""
    model = build_model(
        {
            "input_dim": 2,
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.05},
            "training": {"epochs": 100, "batch_size": 8, "seed": 0},
        }
    )
    train(model, XOR_X, XOR_Y)
    return save_model(model)


@cache
def spam_model_file() -> bytes:
    """A sigmoid text classifier over hashed features (takes raw strings)."""
    model = build_model(
        {
            "preprocess": [{"type": "text_features", "n_features": 64}],
            "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}],
            "loss": "binary_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.1},
            "training": {"epochs": 30, "batch_size": 4, "seed": 0},
        }
    )
    texts = np.array(["win money now", "hello friend", "free prize win", "see you later"] * 5)
    labels = np.array(["spam", "ham", "spam", "ham"] * 5)
    train(model, texts, labels)
    return save_model(model)


@cache
def binary_model_file() -> bytes:
    """One sigmoid unit over two numbers: "yes" where x0 > x1, else "no"."""
    model = build_model(
        {
            "input_dim": 2,
            "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}],
            "loss": "binary_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.1},
            "training": {"epochs": 50, "batch_size": 8, "seed": 0},
        }
    )
    x = np.random.default_rng(0).uniform(-1, 1, size=(64, 2)).astype(np.float32)
    train(model, x, np.where(x[:, 0] > x[:, 1], "yes", "no"))
    return save_model(model)


@cache
def regression_model_file() -> bytes:
    """y = 2x + 1, one input, one output."""
    model = build_model(
        {
            "input_dim": 1,
            "layers": [{"type": "dense", "units": 1, "activation": "identity"}],
            "loss": "mse",
            "optimizer": {"name": "adam", "lr": 0.1},
            "training": {"epochs": 200, "batch_size": 8, "seed": 0},
        }
    )
    x = np.linspace(-1, 1, 32).reshape(-1, 1)
    train(model, x, 2 * x + 1)
    return save_model(model)


def db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


def register_job_version(
    app: FastAPI, owner: str, name: str, weights: bytes, metrics: dict[str, object]
) -> int:
    """Register a version the way a succeeded training job does."""
    from nn_core.serialize import load_model
    from nn_core.spec import model_to_spec
    from service.registry.writes import add_version

    spec = model_to_spec(load_model(weights))
    with db(app).write_session() as session:
        job = TrainingJob(owner=owner, spec=spec, model_name=name, status="succeeded")
        session.add(job)
        session.flush()
        version = add_version(
            session,
            owner=owner,
            name=name,
            spec=spec,
            metrics=metrics,
            weights=weights,
            job_id=job.id,
        )
        return version.version


async def upload_model(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, data: bytes
) -> httpx.Response:
    return await client.post(
        f"/v1/models/{name}/versions", headers=headers, files={"file": ("model.npz", data)}
    )
