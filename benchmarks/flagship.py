"""The two flagship models end to end on a real `nn-service serve`: spam-mlp and mnist-mlp.

Starts a server (embedded runner, SQLite, a fresh data directory), trains the spam-mlp
preset on sms-spam (stratified 20% held out) and the mnist-mlp preset on Fashion-MNIST
(official 10,000-image test set) as training jobs, one after the other, then scores every
held-out example through the task routes (POST /v1/spam/score, POST /v1/mnist/predict) and
computes the figures from those answers. The job's own stored test metrics are printed
beside them: the two must agree, since the routes serve the registered model.

    python benchmarks/flagship.py [--spam-epochs 30] [--mnist-epochs 20] [--skip-mnist]

Targets: spam accuracy >= 0.98 and spam F1 >= 0.92; Fashion-MNIST test accuracy >= 0.88.
The named baseline is the majority class (what a model that learned nothing scores).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_server import start_server, stop

ROOT = Path(__file__).resolve().parents[1]
SMS_COPIES = (
    ROOT.parent / "shared" / "datasets" / "sms-spam" / "SMSSpamCollection",
    Path("/work/shared/datasets/sms-spam/SMSSpamCollection"),
)
SPAM_TARGETS = {"accuracy": 0.98, "spam_f1": 0.92}
MNIST_TARGET = 0.88
BATCH = 500


def train(client: httpx.Client, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Submit a job and wait for it; returns the registered version and the wall time."""
    started = time.perf_counter()
    response = client.post("/v1/jobs", json=body)
    response.raise_for_status()
    job_id = response.json()["id"]
    last = -1
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["progress"]["epoch"] != last:
            last = job["progress"]["epoch"]
            print(f"  {body['model_name']}: epoch {last}/{job['progress']['total_epochs']}")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(1.0)
    seconds = time.perf_counter() - started
    if job["status"] != "succeeded":
        raise SystemExit(f"job {job_id} {job['status']}: {job['failure_reason']}")
    ref = job["model_version"]
    version = client.get(f"/v1/models/{ref['model_name']}/versions/{ref['version']}").json()
    return version, seconds


def binary_f1(truth: np.ndarray, predicted: np.ndarray, positive: str) -> float:
    tp = int(np.sum((predicted == positive) & (truth == positive)))
    fp = int(np.sum((predicted == positive) & (truth != positive)))
    fn = int(np.sum((predicted != positive) & (truth == positive)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def majority(labels: np.ndarray) -> float:
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / counts.sum())


def verdict(value: float, target: float) -> str:
    return "ok" if value >= target else "BELOW TARGET"


def bench_spam(client: httpx.Client, data_dir: Path, epochs: int) -> None:
    from nn_core.datasets.catalog import load_dataset
    from service.datasets_store import SPLIT_SEED

    target = data_dir / "datasets" / "sms-spam" / "SMSSpamCollection"
    source = next((p for p in SMS_COPIES if p.is_file()), None)
    if source is not None:  # else the server downloads it (checksummed)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    print(f"spam-mlp on sms-spam ({epochs} epochs)")
    body = {"spec": "spam-mlp", "dataset": "sms-spam", "model_name": "spam", "epochs": epochs}
    version, seconds = train(client, body)
    split = load_dataset("sms-spam", data_dir / "datasets", seed=SPLIT_SEED, test_fraction=0.2)
    texts, truth = split.X_test.tolist(), split.y_test
    started = time.perf_counter()
    labels: list[str] = []
    for i in range(0, len(texts), BATCH):
        response = client.post("/v1/spam/score", json={"texts": texts[i : i + BATCH]})
        response.raise_for_status()
        labels += [r["label"] for r in response.json()["results"]]
    score_ms = (time.perf_counter() - started) * 1000 / len(texts)
    predicted = np.array(labels)
    accuracy = float(np.mean(predicted == truth))
    f1 = binary_f1(truth, predicted, "spam")
    stored = version["metrics"]["test"]
    print(f"  held out: {len(texts)} messages ({int(np.sum(truth == 'spam'))} spam)")
    print(f"  train wall time        {seconds:8.1f} s")
    print(
        f"  accuracy (route)       {accuracy:8.4f}  target >= {SPAM_TARGETS['accuracy']}"
        f"  {verdict(accuracy, SPAM_TARGETS['accuracy'])}"
    )
    print(
        f"  spam F1 (route)        {f1:8.4f}  target >= {SPAM_TARGETS['spam_f1']}"
        f"  {verdict(f1, SPAM_TARGETS['spam_f1'])}"
    )
    print(f"  accuracy (job metrics) {stored['accuracy']:8.4f}")
    print(f"  spam F1 (job metrics)  {stored['per_class']['spam']['f1']:8.4f}")
    print(f"  majority baseline      {majority(truth):8.4f}  (accuracy of always 'ham')")
    print(f"  scoring                {score_ms:8.3f} ms/message in batches of {BATCH}")


def bench_mnist(client: httpx.Client, data_dir: Path, epochs: int) -> None:
    from nn_core.datasets.catalog import load_dataset

    info = client.get("/v1/datasets/fashion-mnist").json()
    if not info.get("available"):
        print("fashion-mnist is not installed (/usr/share/datasets/fashion-mnist); skipped")
        return
    print(f"mnist-mlp on fashion-mnist ({epochs} epochs)")
    body = {
        "spec": "mnist-mlp",
        "dataset": "fashion-mnist",
        "model_name": "mnist",
        "epochs": epochs,
    }
    version, seconds = train(client, body)
    test = load_dataset("fashion-mnist", data_dir / "datasets", download=False)
    started = time.perf_counter()
    digits: list[int] = []
    for i in range(0, len(test.X_test), BATCH):
        instances = test.X_test[i : i + BATCH].astype(int).tolist()
        response = client.post("/v1/mnist/predict", json={"instances": instances})
        response.raise_for_status()
        digits += [p["digit"] for p in response.json()["predictions"]]
    predict_ms = (time.perf_counter() - started) * 1000 / len(test.X_test)
    accuracy = float(np.mean(np.array(digits) == test.y_test))
    print(f"  train wall time        {seconds:8.1f} s ({seconds / epochs:.1f} s/epoch)")
    print(
        f"  test accuracy (route)  {accuracy:8.4f}  target >= {MNIST_TARGET}"
        f"  {verdict(accuracy, MNIST_TARGET)}"
    )
    print(f"  test accuracy (job)    {version['metrics']['test']['accuracy']:8.4f}")
    print(f"  majority baseline      {majority(test.y_test):8.4f}")
    print(f"  prediction             {predict_ms:8.3f} ms/image in batches of {BATCH}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spam-epochs", type=int, default=30)
    parser.add_argument("--mnist-epochs", type=int, default=20)
    parser.add_argument("--skip-spam", action="store_true")
    parser.add_argument("--skip-mnist", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nns-flagship-") as tmp:
        workdir = Path(tmp)
        process, base = start_server(workdir)
        try:
            key = (workdir / "data" / "admin-key").read_text().strip()
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                if not args.skip_spam:
                    bench_spam(client, workdir / "data", args.spam_epochs)
                if not args.skip_mnist:
                    bench_mnist(client, workdir / "data", args.mnist_epochs)
        finally:
            stop(process)


if __name__ == "__main__":
    main()
