"""Mount the dataset, model and prediction routers on an app, with their per-app state.

One call from create_app. Upload routers get the upload size limit
(settings.max_upload_bytes) in place of the app-wide JSON body limit; FastAPI applies a
route's own limit over the app's, so only these routes accept large bodies. The model
loader cache and the prediction rate limiter live on app.state, so every app (tests run
several) has its own.
"""

from __future__ import annotations

from fastapi import FastAPI

from service.api import datasets, mnist, models, predict, presets, spam, v2
from service.config import Settings
from service.model_store import ModelCache
from service.rate_limit import TokenBucketLimiter


def include_routers(app: FastAPI, settings: Settings) -> None:
    app.state.model_cache = ModelCache()
    app.state.predict_limiter = TokenBucketLimiter(settings.predict_rate_limit)
    # :predict first: the hot path, and ahead of the generic /v1/models/{name} routes.
    app.include_router(predict.router)
    app.include_router(datasets.router)
    app.include_router(datasets.upload_router, max_body_size=settings.max_upload_bytes)
    app.include_router(models.router)
    app.include_router(models.upload_router, max_body_size=settings.max_upload_bytes)
    app.include_router(v2.public_router)
    app.include_router(v2.router)
    app.include_router(presets.router)
    # PNG uploads (photos) may be large; the route holds JSON bodies to max_body_bytes itself.
    app.include_router(mnist.router, max_body_size=settings.max_upload_bytes)
    app.include_router(spam.router)
