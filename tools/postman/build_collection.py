"""Rebuild docs/postman/nn-service.postman_collection.json from the app's OpenAPI document.

    (cd tools/postman && npm ci) && .venv/bin/python tools/postman/build_collection.py

Postman's own converter (openapi-to-postmanv2, pinned in package-lock.json here) builds the
collection; this script only feeds it today's document and sets the collection variables a
user fills in: baseUrl (http://127.0.0.1:8000) and bearerToken (an API key). The converter's
random ids are dropped and its example values drawn from a fixed seed (seeded_random.cjs), so
a rebuild changes only what the document changed. tests/service/test_postman.py fails when
the committed file lists other requests than a fresh conversion.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tools" / "postman"
CONVERTER = HERE / "node_modules" / ".bin" / "openapi2postmanv2"
SEEDED_RANDOM = HERE / "seeded_random.cjs"
OUTPUT = ROOT / "docs" / "postman" / "nn-service.postman_collection.json"
#: Converter options: one folder per OpenAPI tag (jobs, models, predictions, ...).
OPTIONS = "folderStrategy=Tags"
BASE_URL = "http://127.0.0.1:8000"
VARIABLES = [
    {"key": "baseUrl", "value": BASE_URL, "description": "Where nn-service listens"},
    {
        "key": "bearerToken",
        "value": "",
        "description": "Your API key (nns_...): `nn-service keys create`, or the admin key",
    },
]


def openapi_document() -> dict[str, Any]:
    """Today's document, from an app that is built but never started (no database needed)."""
    sys.path.insert(0, str(ROOT))
    from service.app import create_app
    from service.config import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        return create_app(Settings(data_dir=Path(data_dir)), start_runner=False).openapi()


def convert(document: dict[str, Any]) -> dict[str, Any]:
    """Run Postman's converter CLI on `document` and return the collection it writes."""
    if not CONVERTER.is_file() or shutil.which("node") is None:
        raise SystemExit(f"{CONVERTER} is missing: run `cd tools/postman && npm ci` first")
    with tempfile.TemporaryDirectory() as work:
        spec, out = Path(work) / "openapi.json", Path(work) / "collection.json"
        spec.write_text(json.dumps(document), encoding="utf-8")
        node_options = f'{os.environ.get("NODE_OPTIONS", "")} --require "{SEEDED_RANDOM}"'
        subprocess.run(
            [str(CONVERTER), "-s", str(spec), "-o", str(out), "-O", OPTIONS],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "NODE_OPTIONS": node_options.strip()},
        )
        collection: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return collection


def finish(collection: dict[str, Any]) -> dict[str, Any]:
    """Set baseUrl and bearerToken as collection variables; drop the random ids."""
    ours = {variable["key"] for variable in VARIABLES}
    others = [v for v in collection.get("variable", []) if v.get("key") not in ours]
    collection["variable"] = [*VARIABLES, *others]
    return _without_ids(collection)


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "_postman_id")}
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    return value


def main() -> None:
    collection = finish(convert(openapi_document()))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(collection, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
