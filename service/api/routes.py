"""Every router the service serves, in the order create_app mounts them.

Routes are matched in this order: the prediction routes (the hot path) come first, and
`:predict` ahead of the generic /v1/models/{name} routes. Upload routers get the upload size
limit (settings.max_upload_bytes) in place of the app-wide JSON body limit; FastAPI applies a
router's own limit over the app's, so only these routes accept large bodies.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.api import (
    batch_predictions,
    datasets,
    explain,
    health,
    job_preview,
    jobs,
    mnist,
    models,
    predict,
    presets,
    spam,
    sweeps,
    v2,
    webhooks,
)
from service.config import Settings


def routers(settings: Settings) -> list[tuple[APIRouter, int | None]]:
    """(router, its body limit in bytes; None: the app's), in mounting order."""
    uploads = settings.max_upload_bytes
    return [
        (predict.router, None),
        (explain.router, None),
        (datasets.router, None),
        (datasets.upload_router, uploads),
        (models.router, None),
        (models.upload_router, uploads),
        (v2.public_router, None),
        (v2.router, None),
        (presets.router, None),
        # PNG uploads (photos) may be large; the route holds JSON bodies to max_body_bytes itself.
        (mnist.router, uploads),
        (spam.router, None),
        (health.router, None),
        (jobs.router, None),
        (batch_predictions.router, None),
        (job_preview.router, None),
        (sweeps.router, None),
        (webhooks.router, None),
    ]
