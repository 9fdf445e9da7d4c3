"""`nn-service jobs submit|watch|cancel`: a terminal client for the jobs API (httpx only).

`watch` follows the job's Server-Sent Events stream and draws a progress bar with the epoch,
ETA and latest metrics; if the connection drops it reconnects with Last-Event-ID, so no epoch
is missed. Exit status: 0 succeeded, 1 failed, 3 cancelled, 2 could not talk to the server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from service.config import Settings

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 2, 3
RECONNECT_ATTEMPTS = 8
BAR_WIDTH = 24
SHOWN_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


class ClientError(Exception):
    """Anything that stops the command: printed as one line, exit status 2."""


# ----------------------------------------------------------------------------- connection


def base_url(args: argparse.Namespace, settings: Settings) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def api_key(args: argparse.Namespace, settings: Settings) -> str:
    """--key, else $NNS_API_KEY, else the admin key the server wrote in its data directory."""
    key = args.key or os.environ.get("NNS_API_KEY")
    if key:
        return str(key).strip()
    path = settings.admin_key_path
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ClientError(
            f"no API key: pass --key, set NNS_API_KEY, or make {path} readable ({exc.strerror})"
        ) from None


def make_client(args: argparse.Namespace, settings: Settings) -> httpx.Client:
    return httpx.Client(
        base_url=base_url(args, settings),
        headers={"Authorization": f"Bearer {api_key(args, settings)}"},
        timeout=httpx.Timeout(30.0),
    )


def error_text(response: httpx.Response) -> str:
    """The service's one error shape as one line (or the raw body for anything else)."""
    try:
        error = response.json()["error"]
        details = error.get("details", [])
        fields = [f"{d['field']}: {d['message']}" for d in details if d.get("field")]
        text = str(error["message"])
        extra = [f for f in fields if f not in text]
        return "; ".join([text, *extra])
    except (ValueError, KeyError, TypeError):
        return response.text[:300] or response.reason_phrase


def checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise ClientError(f"HTTP {response.status_code}: {error_text(response)}")
    return response.json()


# ----------------------------------------------------------------------------- SSE


@dataclass
class Event:
    event: str = "message"
    data: str = ""
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data) if self.data else None


def parse_sse(lines: Iterator[str]) -> Iterator[Event]:
    """Events of a text/event-stream (comments and retry lines are skipped)."""
    current, data = Event(), list[str]()
    for line in lines:
        if not line:
            if data or current.id is not None:
                current.data = "\n".join(data)
                yield current
            current, data = Event(), []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            current.event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            current.id = value


# ----------------------------------------------------------------------------- display


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_metrics(metrics: dict[str, Any] | None) -> str:
    shown = []
    for name in SHOWN_METRICS:
        value = (metrics or {}).get(name)
        if isinstance(value, int | float):
            shown.append(f"{name} {value:.4f}")
    return "  ".join(shown)


@dataclass
class ProgressView:
    """Draws one line: redrawn in place on a terminal, one line per epoch otherwise."""

    out: TextIO
    tty: bool
    drawn: bool = False
    last: dict[str, Any] = field(default_factory=dict)

    def show(
        self, epoch: int, total: int, eta: float | None, metrics: dict[str, Any] | None
    ) -> None:
        done = int(BAR_WIDTH * epoch / total) if total else 0
        bar = "#" * done + "-" * (BAR_WIDTH - done)
        percent = 100.0 * epoch / total if total else 0.0
        line = (
            f"[{bar}] {epoch:>{len(str(total))}}/{total} {percent:5.1f}%  "
            f"ETA {format_eta(eta)}  {format_metrics(metrics)}"
        ).rstrip()
        if self.tty:
            self.out.write("\r\x1b[2K" + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()
        self.drawn = True

    def message(self, text: str) -> None:
        if self.tty and self.drawn:
            self.out.write("\n")
            self.drawn = False
        self.out.write(text + "\n")
        self.out.flush()


def outcome(job: dict[str, Any], view: ProgressView) -> int:
    status = job.get("status")
    if status == "succeeded" and job.get("kind") == "batch_predict":
        batch = job.get("batch") or {}
        view.message(
            f"batch prediction {job['id']} succeeded: {batch.get('rows')} rows by "
            f"{job.get('model_name')} version {batch.get('version')}; "
            f"download {batch.get('result')}"
        )
        return EXIT_SUCCEEDED
    if status == "succeeded":
        version = job.get("model_version") or {}
        view.message(
            f"job {job['id']} succeeded: {version.get('model_name')} "
            f"version {version.get('version')}  {format_metrics(job.get('metrics'))}".rstrip()
        )
        return EXIT_SUCCEEDED
    if status == "cancelled":
        view.message(f"job {job['id']} was cancelled")
        return EXIT_CANCELLED
    view.message(f"job {job['id']} failed: {job.get('failure_reason') or 'no reason recorded'}")
    return EXIT_FAILED


def watch(client: httpx.Client, job_id: str, out: TextIO) -> int:
    """Follow the job's event stream to its end; reconnect (Last-Event-ID) if it drops."""
    view = ProgressView(out, tty=out.isatty())
    last_id: str | None = None
    failures = 0
    while True:
        headers = {"Last-Event-ID": last_id} if last_id is not None else {}
        try:
            with client.stream(
                "GET",
                f"/v1/jobs/{job_id}/events",
                headers=headers,
                timeout=httpx.Timeout(30.0, read=90.0),
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ClientError(f"HTTP {response.status_code}: {error_text(response)}")
                for event in parse_sse(response.iter_lines()):
                    failures = 0
                    if event.id is not None:
                        last_id = event.id
                    result = _handle(event, view)
                    if result is not None:
                        return result
        except httpx.TransportError as exc:
            failures += 1
            if failures > RECONNECT_ATTEMPTS:
                raise ClientError(f"lost the connection to the server: {exc}") from None
            time.sleep(min(0.5 * 2**failures, 10.0))


def _handle(event: Event, view: ProgressView) -> int | None:
    data = event.json()
    if event.event == "snapshot":
        progress = data["progress"]
        if not view.drawn:
            view.message(f"job {data['id']}: {data['status']} (model {data['model_name']})")
        view.show(progress["epoch"], progress["total_epochs"], data["eta_seconds"], data["metrics"])
    elif event.event == "progress":
        view.show(data["epoch"], data["total_epochs"], data["eta_seconds"], data["metrics"])
    elif event.event == "status" and data["status"] == "cancelling":
        view.message(f"job {data['job_id']}: cancelling")
    elif event.event == "end":
        return outcome(data, view)
    return None


# ----------------------------------------------------------------------------- commands


def read_spec(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientError(f"cannot read the spec {path}: {exc.strerror}") from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ClientError(f"the spec {path} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise ClientError(f"the spec {path} must be a JSON object")
    return spec


def submit_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {
        "spec": read_spec(args.spec),
        "dataset": args.dataset,
        "model_name": args.model,
    }
    options = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "learning_rate": args.learning_rate,
        "test_fraction": args.test_fraction,
    }
    body.update({k: v for k, v in options.items() if v is not None})
    return body


def run(args: argparse.Namespace, settings: Settings) -> int:
    return guarded(lambda: _run(args, settings))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    with make_client(args, settings) as client:
        if args.jobs_command == "submit":
            job = checked(client.post("/v1/jobs", json=submit_body(args)))
            print(job["id"])
            url = client.base_url.join(job["links"]["self"])
            print(f"queued job {job['id']}: {url}", file=sys.stderr)
            return watch(client, job["id"], sys.stderr) if args.watch else EXIT_SUCCEEDED
        if args.jobs_command == "watch":
            return watch(client, args.job_id, sys.stdout)
        if args.jobs_command == "cancel":
            job = checked(client.post(f"/v1/jobs/{args.job_id}/cancel"))
            print(f"job {job['id']}: {job['status']}")
            return EXIT_SUCCEEDED
    return EXIT_ERROR


def guarded(command: Callable[[], int]) -> int:
    """Run a client command: a refused request or an unreachable server is one line on
    stderr and the error exit code, never a traceback."""
    try:
        return command()
    except ClientError as exc:
        print(f"nn-service: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except httpx.TransportError as exc:
        print(f"nn-service: error: cannot reach the server: {exc}", file=sys.stderr)
        return EXIT_ERROR


def connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="server URL (default: http://<NNS_HOST>:<NNS_PORT>)")
    parser.add_argument("--key", help="API key (default: $NNS_API_KEY, else <data_dir>/admin-key)")


def add_jobs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("jobs", help="submit, watch and cancel training jobs")
    jobs = parser.add_subparsers(dest="jobs_command", required=True)

    submit = jobs.add_parser("submit", help="queue a training job and print its id")
    submit.add_argument("--spec", required=True, metavar="FILE", help="JSON spec file, or -")
    submit.add_argument("--dataset", required=True, help="built-in name or upload id/name")
    submit.add_argument("--model", required=True, help="model name to register versions under")
    submit.add_argument("--epochs", type=int, help="override spec training.epochs")
    submit.add_argument("--batch-size", type=int, help="override spec training.batch_size")
    submit.add_argument("--seed", type=int, help="override spec training.seed")
    submit.add_argument("--learning-rate", type=float, help="override spec optimizer.lr")
    submit.add_argument("--test-fraction", type=float, help="held-out fraction for uploads")
    submit.add_argument("--watch", action="store_true", help="then follow it like `jobs watch`")
    connection_options(submit)

    watch_parser = jobs.add_parser(
        "watch", help="live progress bar; exit 0 if the job succeeds, 1 failed, 3 cancelled"
    )
    watch_parser.add_argument("job_id")
    connection_options(watch_parser)

    cancel = jobs.add_parser("cancel", help="cancel a job (idempotent)")
    cancel.add_argument("job_id")
    connection_options(cancel)
    parser.set_defaults(handler=run)
