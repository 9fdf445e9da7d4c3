"""The API reference pages, /docs (Swagger UI) and /redoc (ReDoc), served without a CDN.

FastAPI's own pages load their scripts from a CDN, so they are blank on a machine without
internet. These are FastAPI's pages with the asset URLs pointing at the app itself
(https://fastapi.tiangolo.com/how-to/custom-docs-ui-assets/); the files come from the
fastapi-standalone-docs package, which ships swagger-ui-dist 5 (OpenAPI 3.1 aware) and
ReDoc's standalone bundle and depends on FastAPI only. Like the pages, the assets need no key.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_standalone_docs
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_standalone_docs.__file__).resolve().parent / "static"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
#: FastAPI's favicon (FastAPI's pages take it from fastapi.tiangolo.com), shipped with the assets.
FAVICON_URL = f"{DOCS_URL}/fastapi/favicon.png"


def mount_docs(app: FastAPI) -> None:
    """Serve /docs, its OAuth2 redirect page and /redoc, with their assets under those paths.

    The app must be built with docs_url=None and redoc_url=None (FastAPI's CDN pages).
    """
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_URL}/swagger-ui.css",
            swagger_favicon_url=root + FAVICON_URL,
            oauth2_redirect_url=root + oauth2_redirect_url if oauth2_redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if oauth2_redirect_url:

        @app.get(oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{REDOC_URL}/redoc.standalone.js",
            redoc_favicon_url=root + FAVICON_URL,
            with_google_fonts=False,
        )

    # After the routes above: a mount at /docs answers only the /docs/<file> they do not. The
    # ReDoc bundle loads its footer logo from <page>/logo-mini.svg, hence its files at /redoc.
    app.mount(f"{DOCS_URL}/fastapi", StaticFiles(directory=ASSETS / "fastapi"), name="docs-icon")
    app.mount(DOCS_URL, StaticFiles(directory=ASSETS / "swagger"), name="docs-assets")
    app.mount(REDOC_URL, StaticFiles(directory=ASSETS / "redoc"), name="redoc-assets")


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under ("" at the root), as FastAPI's pages use it."""
    return str(request.scope.get("root_path", "")).rstrip("/")
