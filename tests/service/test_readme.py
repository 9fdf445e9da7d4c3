"""The README's commands, run as pasted: the two set-up commands agree with the CLI and with
.ci/run, the Python example runs, and the curl quick-start works against a real server."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
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
    only: Callable[[str], bool] = lambda block: True,
) -> list[tuple[str, str]]:
    """Run a section's bash blocks (those `only` keeps) as one script in the server's
    directory (so `data/admin-key` resolves as in the README), on the server's port; returns
    (block, its output) pairs. `prelude` runs first (e.g. what an earlier section set)."""
    port = server.base.rsplit(":", 1)[1]
    sources = [body for body in blocks("bash", section) if only(body)]
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


@pytest.fixture
def offline_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """The same server on a machine without internet: its dataset downloads go to a proxy
    on a closed port of 127.0.0.1 and are refused, whether this machine is online or not."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{sock.getsockname()[1]}"
    process = ServerProcess(tmp_path, f"sqlite:///{tmp_path}/data/nns.db")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        process.env[name] = proxy
    for name in ("no_proxy", "NO_PROXY"):
        process.env.pop(name, None)
    process.start()
    try:
        yield process
    finally:
        process.stop()


FLAGSHIP = "The two flagship models: spam scoring and digit recognition"


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
    diagnostics = json.loads(output_of("/diagnostics"))
    assert diagnostics["total"] == 40 and diagnostics["items"][0]["epoch"] == 1, diagnostics
    assert diagnostics["items"][0]["layers"][0]["update_ratio"] > 0, diagnostics
    v2, model, alias, by_alias = output_of("/infer").split("}{")
    assert '"name":"label","shape":[2],"datatype":"INT64"' in v2, v2
    assert '"confusion_matrix"' in model and '"alias":"production","version":1' in alias
    assert '"label":1' in by_alias and '"version":1' in by_alias, by_alias
    alias, by_split = output_of('"shadow"').split("}{")
    split = '"traffic":[{"version":1,"weight":90},{"version":2,"weight":10}],"shadow":3'
    assert split in alias, alias
    assert re.search(r'"version":[12]\b', by_split) and '"label":1' in by_split, by_split
    explained = json.loads(output_of(":explain"))
    assert [e["label"] for e in explained["explanations"]] == [1, 0], explained
    for explanation in explained["explanations"]:
        change = explanation["output"] - explanation["baseline_output"]
        assert abs(explanation["completeness_gap"]) <= 0.01 * abs(change) + 1e-4, explanation
    log = server.log_path.read_text()
    assert "Traceback" not in log and '"status": 500' not in log


def test_your_own_data(server: ServerProcess) -> None:
    """Upload a headerless .csv.gz with a test file, train, predict, download the split."""
    results = run_blocks(server, "Your own data", timeout=180, prelude="KEY=$(cat data/admin-key)")
    for source, output in results:
        assert '{"error"' not in output, (source, output)
    upload = results[0][1]
    digest = upload.split()[0]  # sha256sum's line comes first
    assert f'"sha256":"{digest}"' in upload, upload
    assert '"header":false' in upload and '"label_column":"0"' in upload, upload
    assert '"n_train":300,"n_test":60' in upload, upload
    job, predictions = results[1][1].split("}{", 1)[0], results[1][1]
    assert '"status":"succeeded"' in job and f'"dataset_sha256":"{digest}"' in job, job
    assert re.findall(r'"label":(\d)', predictions)[-2:] == ["1", "0"], predictions
    header, *rows = results[2][1].splitlines()
    assert header == "row,1,2,3,4,0" and len(rows) == 2, results[2][1]
    assert results[3][1].startswith("row,label,p_"), results[3][1]  # the batch's CSV
    kind = '"kind":"batch_predict","model_name":"mine"'
    assert results[4][1] == f"{kind}\n204\n", results[4][1]  # a job of its own kind; deleted


@pytest.mark.slow
def test_flagship_walkthrough(offline_server: ServerProcess) -> None:
    """As pasted, on a machine without internet that has Fashion-MNIST (Debian's package) and
    the SMS file placed where the README says: MNIST fails with its one-line reason and the
    loop trains on Fashion-MNIST instead; spam trains as written."""
    server = offline_server
    if not SMS_SPAM.is_file():
        pytest.skip(SMS_SPAM_MISSING)
    if not Path(FASHION_SYSTEM_DIR).is_dir():
        pytest.skip(FASHION_MISSING)
    place = server.data_dir / "datasets" / "sms-spam"
    place.mkdir(parents=True)
    shutil.copy(SMS_SPAM, place / "SMSSpamCollection")
    (server.tmp_path / ".venv").symlink_to(sys.prefix)  # the README runs from the checkout
    results = run_blocks(server, FLAGSHIP, timeout=600, prelude="KEY=$(cat data/admin-key)")
    for source, output in results:
        assert '{"error"' not in output, (source, output)

    def output_of(fragment: str) -> str:
        return next(out for src, out in results if fragment in src)

    presets = output_of("/v1/presets")
    assert '"name":"mnist-mlp"' in presets and '"name":"spam-mlp"' in presets
    assert output_of('"spam-mlp"') == '"status":"succeeded"\n'
    mnist_dir = server.data_dir.absolute() / "datasets" / "mnist"
    assert output_of('"mnist-mlp"') == (
        'mnist: "status":"failed" "failure_reason":"mnist is not on this machine and cannot be '
        f"downloaded (no connection): put its 4 files (train-images-idx3-ubyte.gz ...) in "
        f'{mnist_dir}, or train on fashion-mnist instead (apt-get install dataset-fashion-mnist)"'
        '\nfashion-mnist: "status":"succeeded"\n'
    )
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


def test_spam_without_its_file_offline_says_what_to_do(offline_server: ServerProcess) -> None:
    """Without the SMS file and without internet, the spam block prints the failure and its
    one-line fix, and scoring answers the 404 the README announces."""
    server = offline_server
    results = run_blocks(
        server,
        FLAGSHIP,
        timeout=120,
        prelude="KEY=$(cat data/admin-key)",
        only=lambda block: '"spam-mlp"' in block or '"texts"' in block,
    )
    (_, trained), (_, scored) = results
    place = server.data_dir.absolute() / "datasets" / "sms-spam"
    assert trained == (
        '"status":"failed"\n"failure_reason":"sms-spam is not on this machine and cannot be '
        f"downloaded (no connection): put SMSSpamCollection in {place} (it is in the zip at "
        'https://archive.ics.uci.edu/dataset/228)"\n'
    )
    error = json.loads(scored)["error"]
    assert error["type"] == "not_found" and "model 'spam' not found" in error["message"], error


def test_hyperparameter_sweep(server: ServerProcess) -> None:
    results = run_blocks(
        server, "Hyperparameter sweeps", timeout=180, prelude="KEY=$(cat data/admin-key)"
    )
    for source, output in results:
        assert '{"error"' not in output, (source, output)
    assert re.fullmatch(r"/v1/sweeps/sweep_[0-9a-f]+\n", results[0][1]), results[0][1]
    output = results[1][1]  # the stream's last lines (the `end` event), then the version
    assert "event: end" in output and '"status":"succeeded"' in output, output
    assert re.search(r'"model_version":\{[^}]*"model_name":"xor-sweep","version":1\}', output)
