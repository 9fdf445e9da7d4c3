"""Property-based fuzzing of every documented route with schemathesis.

Each operation gets generated requests (valid and invalid, per its OpenAPI document) sent with
an authenticated key to an app seeded with real resources, on SQLite (and on Postgres with
NNS_TEST_ALL_BACKENDS=1, as in CI). Every
response must be documented (status, content type, headers, body schema) and none may be a
5xx. Path parameters are sometimes swapped for the seeded names, so requests reach existing
resources too, not only 404s.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
from fuzz_state import SEEDED_PATHS, STATS, Seeded
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from service_helpers import make_settings

from service.app import create_app
from service.config import Settings

#: Generated requests per route and backend (plus schemathesis's explicit examples).
MAX_EXAMPLES = 40

#: Routes whose schema-valid requests may still be unusable (422 naming the field): a file's
#: bytes, a spec, or instances that do not fit the stored model cannot be described by OpenAPI;
#: nor can which versions exist (an alias's version, traffic and shadow), nor where a webhook
#: URL's host resolves to (the SSRF guard), nor whether a batch's split has rows or fits the
#: model (or names both a version and an alias).
CONTENT_CHECKED = {
    "POST /v1/batch-predictions",
    "POST /v1/webhooks",
    "PUT /v1/models/{name}/aliases/{alias}",
    "POST /v1/jobs",
    "POST /v1/sweeps",
    "POST /v1/datasets",
    "POST /v1/models/{name}/versions",
    "POST /v1/models/{name}:predict",
    "POST /v1/models/{name}:explain",
    "POST /v2/models/{name}/infer",
    "POST /v2/models/{name}/versions/{version}/infer",
    "POST /v1/mnist/predict",
}


def _document() -> dict[str, Any]:
    """The OpenAPI document, from an app that is built but never started (nor connected)."""
    settings = make_settings("sqlite://", Path(tempfile.gettempdir()) / "nns-fuzz-unused")
    return create_app(settings, start_runner=False).openapi()


schema = schemathesis.openapi.from_dict(_document())
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES
)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Each path parameter: the generated value or one naming a seeded resource."""
    if not path_parameters:
        return st.just(path_parameters)
    return st.fixed_dictionaries(
        {name: st.sampled_from(_choices(name, value)) for name, value in path_parameters.items()}
    )


def _choices(name: str, value: Any) -> list[Any]:
    """The generated value, plus the seeded ones of the same type (an integer stays one)."""
    seeded = SEEDED_PATHS.get(name, [])
    if isinstance(value, int):
        return [value, *(int(s) for s in seeded if s.isdigit())]
    return [value, *seeded]


@schema.hook
def after_call(context: Any, case: Case, response: Any) -> None:
    STATS.record(response.status_code)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_route_answers_as_documented(
    case: Case, fuzz_backend: tuple[Settings, Seeded, FastAPI]
) -> None:
    _, seeded, app = fuzz_backend
    # In-process through the app; checks that send follow-up requests (ignored_auth) use it too.
    case.operation.app = case.operation.schema.app = app
    excluded = [positive_data_acceptance] if case.operation.label in CONTENT_CHECKED else []
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        # The seeded key replaces any generated credentials on the wire, so they are not what
        # makes this case invalid: dropped from the case, it is judged by what it sends.
        for name in ("Authorization", "X-API-Key"):
            (case.headers or {}).pop(name, None)
    case.call_and_validate(
        headers={"Authorization": f"Bearer {seeded.key}"}, excluded_checks=excluded
    )
