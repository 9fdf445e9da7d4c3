"""The web dashboard: GET / answers the page, /static/ its CSS and ES modules.

Plain files, no build step. Only `/` and `/static/*` belong to the dashboard, so no API route,
/docs, /openapi.json, /metrics or /healthz can be shadowed, and unknown API paths still get
the JSON error shape. The page talks to the API with the user's key like any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def mount_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at / (index.html) with its assets under /static."""

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        # no-cache: the page is tiny and must pick up new asset versions after an upgrade.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
