"""The README's commands, run as pasted: the two set-up commands agree with the CLI and with
.ci/run, the Python example runs, and the curl quick-start works against a real server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_process import ServerProcess
from shared_data import FASHION_MISSING, SMS_SPAM, SMS_SPAM_MISSING

from nn_core.datasets.catalog import FASHION_SYSTEM_DIR

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
#: Marks the start of each block's output in a script that runs several blocks.
MARK = "----- README block {} -----"


def section_text(section: str) -> str:
    """The README under one `## ` heading, up to the next."""
    start = README.index(f"\n## {section}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def blocks(language: str, section: str | None = None) -> list[str]:
    """Fenced blocks of one language, optionally only those under one `## ` heading."""
    text = README if section is None else section_text(section)
    return [body for lang, body in BLOCK.findall(text) if lang == language]


def run_blocks(
    server: ServerProcess,
    section: str,
    timeout: float,
    prelude: str = "",
    swap: tuple[str, str] = ("", ""),
) -> list[tuple[str, str]]:
    """Run a section's bash blocks as one script in the server's directory (so `data/admin-key`
    resolves as in the README), on the server's port; returns (block, its output) pairs.
    `prelude` runs first (e.g. what an earlier section set); `swap` replaces text in the
    blocks (old, new), for what this machine cannot do as written."""
    port = server.base.rsplit(":", 1)[1]
    sources = [body.replace(*swap) if swap[0] else body for body in blocks("bash", section)]
    script = f"set -euo pipefail\n{prelude}\n" + "".join(
        f"echo '{MARK.format(i)}'\n{body.replace('127.0.0.1:8000', f'127.0.0.1:{port}')}\n"
        for i, body in enumerate(sources)
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=server.tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = re.split(r"----- README block \d+ -----\n", done.stdout)[1:]
    assert len(outputs) == len(sources), done.stdout
    return list(zip(sources, outputs, strict=True))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """`nn-service serve` on the embedded default: SQLite in ./data, in-process runner."""
    process = ServerProcess(tmp_path, f"sqlite:///{tmp_path}/data/nns.db")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_setup_commands_match_the_cli_and_ci() -> None:
    start, tests = blocks("bash")[:2]
    assert start.strip().splitlines()[-1].endswith(".venv/bin/nn-service serve")
    test_command = tests.strip().splitlines()[-1]
    assert test_command.endswith(".venv/bin/pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci
    # What CI turns on beyond a newcomer's run is set there and explained in the README.
    development = section_text("Development")
    for variable in ("NNS_TEST_REQUIRE_SERVICES=1", "NNS_TEST_ALL_BACKENDS=1"):
        assert f"\nexport {variable}\n" in ci
        assert variable in development
    assert ".venv/bin/pytest -m 'not slow'" in development


def test_python_example_runs() -> None:
    (example,) = blocks("python", "The engine: nn_core")
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "perceptron learns XOR: False" in done.stdout
    assert "MLP accuracy on XOR: 1.0" in done.stdout


def test_curl_quick_start(server: ServerProcess) -> None:
    results = run_blocks(server, "Quick start with curl", timeout=180)
    for source, output in results:
        if "swish" in source:  # the one example that shows an error
            assert '"field":"spec.layers[0].activation"' in output, output
            assert "swish" in output
        else:
            assert '{"error"' not in output, (source, output)

    def output_of(fragment: str) -> str:
        return next(out for src, out in results if fragment in src)

    assert '"owner":"admin"' in output_of("/v1/whoami")
    assert re.fullmatch(r"/v1/jobs/job_[0-9a-f]+\n", output_of('echo "$JOB"'))
    events = output_of("/events")
    assert events.startswith("event: end\n") and '"status":"succeeded"' in events, events
    # the job, 5 metric points, then the quadrant predictions: x*y >= 0 is class 1
    *_, metrics, predictions = output_of("[-1, -1]").split("}{")
    assert metrics.count('"epoch"') == 5, metrics
    assert re.findall(r'"label":(\d)', predictions) == ["1", "0", "1", "0"], predictions
    v2, model, alias, by_alias = output_of("/infer").split("}{")
    assert '"name":"label","shape":[2],"datatype":"INT64"' in v2, v2
    assert '"confusion_matrix"' in model and '"alias":"production","version":1' in alias
    assert '"label":1' in by_alias and '"version":1' in by_alias, by_alias
    log = server.log_path.read_text()
    assert "Traceback" not in log and '"status": 500' not in log


@pytest.mark.slow
def test_flagship_walkthrough(server: ServerProcess) -> None:
    """Spam as written (with the SMS file placed where the README says, offline); digits with
    Fashion-MNIST standing in for MNIST, which this machine cannot download."""
    if not SMS_SPAM.is_file():
        pytest.skip(SMS_SPAM_MISSING)
    if not Path(FASHION_SYSTEM_DIR).is_dir():
        pytest.skip(FASHION_MISSING)
    place = server.data_dir / "datasets" / "sms-spam"
    place.mkdir(parents=True)
    shutil.copy(SMS_SPAM, place / "SMSSpamCollection")
    (server.tmp_path / ".venv").symlink_to(sys.prefix)  # the README runs from the checkout
    results = run_blocks(
        server,
        "The two flagship models: spam scoring and digit recognition",
        timeout=600,
        prelude="KEY=$(cat data/admin-key)",
        swap=('"dataset": "mnist"', '"dataset": "fashion-mnist"'),
    )
    for source, output in results:
        assert '{"error"' not in output, (source, output)

    def output_of(fragment: str) -> str:
        return next(out for src, out in results if fragment in src)

    presets = output_of("/v1/presets")
    assert '"name":"mnist-mlp"' in presets and '"name":"spam-mlp"' in presets
    assert output_of('"spam-mlp"') == '"status":"succeeded"\n'
    assert output_of('"mnist-mlp"') == '"status":"succeeded"\n'
    labels = re.findall(r'"label":"(\w+)"', output_of('"texts"'))
    assert labels == ["spam", "ham"]
    patched, scored = output_of("PATCH").split("}{")
    assert '"threshold":0.8' in patched
    assert '"threshold":0.3' in scored and '"label":"spam"' in scored
    by_file, by_png = output_of("seven.png").split("}{")
    by_file, by_png = json.loads(by_file + "}"), json.loads("{" + by_png)
    assert by_file == by_png  # the upload and the base64 PNG are read the same way
    (prediction,) = by_file["predictions"]
    assert prediction["digit"] in range(10) and len(prediction["probabilities"]) == 10
