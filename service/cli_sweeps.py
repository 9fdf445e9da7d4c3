"""`nn-service sweeps submit|watch|cancel`: a terminal client for the sweeps API (httpx only).

`watch` follows the sweep's Server-Sent Events stream and keeps a live table of its trials
(redrawn in place on a terminal, one line per change otherwise); a dropped connection is
reopened (the stream starts with a full snapshot). Exit status as `nn-service jobs`: 0
succeeded, 1 failed, 3 cancelled, 2 could not talk to the server.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from service.cli_jobs import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_SUCCEEDED,
    RECONNECT_ATTEMPTS,
    ClientError,
    checked,
    connection_options,
    error_text,
    guarded,
    make_client,
    parse_sse,
    read_spec,
)
from service.config import Settings


def _value(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def _params(params: dict[str, Any]) -> str:
    return "  ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def trial_line(trial: dict[str, Any]) -> str:
    return (
        f"#{trial['number']:<3} {trial['state']:<9} {trial.get('job_status') or '-':<10} "
        f"epoch {trial['epoch']:<4} value {_value(trial.get('value'))}  {_params(trial['params'])}"
    ).rstrip()


def header(sweep: dict[str, Any]) -> str:
    counts = "  ".join(f"{state} {n}" for state, n in sweep["counts"].items() if n)
    best = sweep.get("best_trial")
    shown = f"  best #{best['number']} {_value(best['value'])}" if best else ""
    return (
        f"sweep {sweep['id']}: {sweep['status']}  {len(sweep['trials'])}/{sweep['n_trials']} "
        f"trials  {counts}{shown}"
    ).rstrip()


@dataclass
class TrialTable:
    """The live table: redrawn in place on a terminal, changed trials as lines otherwise."""

    out: TextIO
    tty: bool
    drawn_lines: int = 0

    def __post_init__(self) -> None:
        self.trials: dict[int, dict[str, Any]] = {}
        self.sweep: dict[str, Any] | None = None

    def snapshot(self, sweep: dict[str, Any]) -> None:
        self.sweep = sweep
        self.trials = {t["number"]: t for t in sweep["trials"]}
        if self.tty:
            self._redraw()
        else:
            self._write([header(sweep), *(trial_line(t) for t in sweep["trials"])])

    def trial(self, trial: dict[str, Any]) -> None:
        self.trials[trial["number"]] = trial
        if self.sweep is not None:
            self.sweep["trials"] = [self.trials[n] for n in sorted(self.trials)]
        if self.tty:
            self._redraw()
        else:
            self._write([trial_line(trial)])

    def _redraw(self) -> None:
        if self.sweep is None:
            return
        lines = [header(self.sweep), *(trial_line(self.trials[n]) for n in sorted(self.trials))]
        if self.drawn_lines:
            self.out.write(f"\x1b[{self.drawn_lines}F\x1b[J")
        self.drawn_lines = len(lines)
        self._write(lines)

    def _write(self, lines: list[str]) -> None:
        self.out.write("".join(line + "\n" for line in lines))
        self.out.flush()


def outcome(sweep: dict[str, Any], out: TextIO) -> int:
    status = sweep["status"]
    best = sweep.get("best_trial")
    if status == "succeeded" and best:
        version = best.get("model_version") or {}
        out.write(
            f"sweep {sweep['id']} succeeded: best trial #{best['number']} value "
            f"{_value(best['value'])}  {_params(best['params'])}\n"
            f"registered as {version.get('model_name')} version {version.get('version')}\n"
        )
        if sweep.get("importances"):
            shown = "  ".join(f"{k} {v:.2f}" for k, v in sweep["importances"].items())
            out.write(f"importances: {shown}\n")
        return EXIT_SUCCEEDED
    if status == "cancelled":
        out.write(f"sweep {sweep['id']} was cancelled\n")
        return EXIT_CANCELLED
    out.write(f"sweep {sweep['id']} failed: {sweep.get('failure_reason') or 'no reason'}\n")
    return EXIT_FAILED


def watch(client: httpx.Client, sweep_id: str, out: TextIO) -> int:
    """Follow the sweep's event stream to its end; reconnect if it drops."""
    table = TrialTable(out, tty=out.isatty())
    failures = 0
    while True:
        try:
            with client.stream(
                "GET", f"/v1/sweeps/{sweep_id}/events", timeout=httpx.Timeout(30.0, read=90.0)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ClientError(f"HTTP {response.status_code}: {error_text(response)}")
                for event in parse_sse(response.iter_lines()):
                    failures = 0
                    data = event.json()
                    if event.event == "snapshot":
                        table.snapshot(data)
                    elif event.event == "trial":
                        table.trial(data)
                    elif event.event == "end":
                        out.flush()
                        return outcome(data, out)
        except httpx.TransportError as exc:
            failures += 1
            if failures > RECONNECT_ATTEMPTS:
                raise ClientError(f"lost the connection to the server: {exc}") from None
            time.sleep(min(0.5 * 2**failures, 10.0))


def read_json(path: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ClientError(f"the {what} {path} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ClientError(f"the {what} {path} must be a JSON object")
    return value


def submit_body(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] | str = read_spec(args.spec) if args.spec else args.preset
    if not spec:
        raise ClientError("give --spec FILE or --preset NAME")
    body: dict[str, Any] = {
        "spec": spec,
        "dataset": args.dataset,
        "model_name": args.model_name,
        "search_space": read_json(args.search_space, "search space"),
        "objective": {"metric": args.metric, "direction": args.direction},
        "n_trials": args.n_trials,
        "max_parallel": args.max_parallel,
        "sampler": args.sampler,
        "pruner": args.pruner,
    }
    options = {"seed": args.seed, "epochs": args.epochs, "validation_split": args.validation_split}
    body.update({k: v for k, v in options.items() if v is not None})
    return body


def run(args: argparse.Namespace, settings: Settings) -> int:
    return guarded(lambda: _run(args, settings))


def _run(args: argparse.Namespace, settings: Settings) -> int:
    with make_client(args, settings) as client:
        if args.sweeps_command == "submit":
            sweep = checked(client.post("/v1/sweeps", json=submit_body(args)))
            print(sweep["id"])
            url = client.base_url.join(sweep["links"]["self"])
            print(f"started sweep {sweep['id']}: {url}", file=sys.stderr)
            return watch(client, sweep["id"], sys.stdout) if args.watch else EXIT_SUCCEEDED
        if args.sweeps_command == "watch":
            return watch(client, args.sweep_id, sys.stdout)
        if args.sweeps_command == "cancel":
            sweep = checked(client.post(f"/v1/sweeps/{args.sweep_id}/cancel"))
            print(f"sweep {sweep['id']}: {sweep['status']} (cancel requested)")
            return EXIT_SUCCEEDED
    return EXIT_ERROR


def add_sweeps(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("sweeps", help="submit, watch and cancel hyperparameter sweeps")
    sweeps = parser.add_subparsers(dest="sweeps_command", required=True)

    submit = sweeps.add_parser("submit", help="start a sweep and print its id")
    submit.add_argument("--spec", metavar="FILE", help="JSON spec file, or -")
    submit.add_argument("--preset", help="a preset name instead of --spec")
    submit.add_argument(
        "--search-space", required=True, metavar="FILE", help="JSON: spec path -> parameter"
    )
    submit.add_argument("--dataset", required=True, help="built-in name or upload id/name")
    submit.add_argument("--model-name", required=True, help="model to register the best under")
    submit.add_argument("--metric", default="val_accuracy", help="objective metric per epoch")
    submit.add_argument("--direction", choices=("maximize", "minimize"), default="maximize")
    submit.add_argument("--n-trials", type=int, default=20)
    submit.add_argument("--max-parallel", type=int, default=2)
    submit.add_argument("--sampler", choices=("tpe", "random", "grid", "cmaes"), default="tpe")
    submit.add_argument(
        "--pruner",
        choices=("median", "successive_halving", "hyperband", "none"),
        default="median",
    )
    submit.add_argument("--seed", type=int, help="sampler seed")
    submit.add_argument("--epochs", type=int, help="override spec training.epochs")
    submit.add_argument("--validation-split", type=float, help="override the validation split")
    submit.add_argument("--watch", action="store_true", help="then follow it like `watch`")
    connection_options(submit)

    watch_parser = sweeps.add_parser(
        "watch", help="live table of trials; exit 0 if the sweep succeeds, 1 failed, 3 cancelled"
    )
    watch_parser.add_argument("sweep_id")
    connection_options(watch_parser)

    cancel = sweeps.add_parser("cancel", help="cancel a sweep and its running trials")
    cancel.add_argument("sweep_id")
    connection_options(cancel)
    parser.set_defaults(handler=run)
