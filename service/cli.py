"""`nn-service`: serve the API, migrate the database, manage API keys.

Every command reads the same Settings as the server (NNS_* variables, .env, DATABASE_URL).
Each command group registers itself in `_COMMANDS`; `worker` and `jobs submit|watch|cancel`
are added there by the job-running code.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from service.cli_jobs import add_jobs
from service.cli_sweeps import add_sweeps
from service.config import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


class CannotListen(Exception):
    """The server's address cannot be bound; the message is the one line to print."""


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (as uvicorn binds it), or CannotListen saying what to do.

    Bound before anything else starts, so a busy port is one line and exit 1, not a
    traceback after the database was migrated and the job runner started.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            other = port + 1 if port < 65535 else 8001
            raise CannotListen(
                f"port {port} on {host} is already in use (another nn-service?); "
                f"pick another with --port {other} or NNS_PORT={other}"
            ) from None
        raise CannotListen(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose the address with --host/--port or NNS_HOST/NNS_PORT"
        ) from None
    sock.set_inheritable(True)
    return sock


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from service import migrate
    from service.app import create_app
    from service.http_limits import uvicorn_options
    from service.observability import configure_logging

    updates = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings.model_copy(update=updates)
    try:
        sock = listen(settings.host, settings.port)
    except CannotListen as exc:
        print(f"nn-service: error: {exc}", file=sys.stderr)
        return 1
    configure_logging(settings.log_level)
    if args.workers > 1:
        from service.workers import serve_workers

        with sock:
            return serve_workers(settings, sock, args.workers)
    migrate.upgrade(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep configure_logging's JSON handler
        log_level=settings.log_level.lower(),
        # Training runs in subprocesses; one server process owns the embedded runner.
        workers=1,
        **uvicorn_options(settings),
    )
    server = uvicorn.Server(config)
    with sock:
        server.run(sockets=[sock])
    return 0 if server.started else 3  # 3: uvicorn's "startup failed" (logged above)


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from service import migrate

    if args.revision:
        path = migrate.make_revision(args.revision)
        print(f"wrote {path}; review it and run the migration tests")
        return 0
    migrate.upgrade(settings)
    print(f"database at revision {migrate.current_revision(settings)}")
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    from service import auth, migrate
    from service.db import Database

    migrate.upgrade(settings)
    database = Database(settings)
    try:
        if args.keys_command == "create":
            created = auth.create_key(database, args.owner, args.name, admin=args.admin)
            record = created.record
            role = "admin " if record.is_admin else ""
            print(
                f"created {role}key {record.id} (nns_{record.prefix}) for owner {record.owner!r}; "
                "it is shown only once:",
                file=sys.stderr,
            )
            print(created.key)
            return 0
        if args.keys_command == "list":
            keys = auth.list_keys(database, owner=args.owner)
            if args.json:
                print(json.dumps([_key_json(k) for k in keys], indent=2))
            else:
                _print_key_table(keys)
            return 0
        if args.keys_command == "revoke":
            found = auth.revoke_key(database, args.key)
            if found is None:
                print(f"no such key: {args.key}", file=sys.stderr)
                return 1
            print(f"revoked key {found.id} (nns_{found.prefix}) of owner {found.owner!r}")
            return 0
    finally:
        database.dispose()
    return 2


def _key_json(key: object) -> dict[str, object]:
    from service.models import ApiKey

    assert isinstance(key, ApiKey)
    return {
        "id": key.id,
        "prefix": f"nns_{key.prefix}",
        "owner": key.owner,
        "name": key.name,
        "is_admin": key.is_admin,
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def _print_key_table(keys: Sequence[object]) -> None:
    rows = [_key_json(k) for k in keys]
    header = ("ID", "PREFIX", "OWNER", "NAME", "ADMIN", "CREATED", "LAST USED", "REVOKED")
    table = [header] + [
        (
            str(r["id"]),
            str(r["prefix"]),
            str(r["owner"]),
            str(r["name"]),
            "yes" if r["is_admin"] else "",
            str(r["created_at"])[:19],
            str(r["last_used_at"] or "")[:19],
            str(r["revoked_at"] or "")[:19],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _add_serve(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("serve", help="run the API server (migrates first)")
    parser.add_argument("--host", help="bind address (default: settings host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: settings port, 8000)")
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="server processes sharing the port and the database (default 1); one of them "
        "runs the embedded job runner, /metrics adds up all of them",
    )
    parser.set_defaults(handler=_serve)


def _add_migrate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("migrate", help="upgrade the database schema to the latest")
    parser.add_argument(
        "--revision",
        metavar="MESSAGE",
        help="developers: autogenerate a new revision from service/models.py instead",
    )
    parser.set_defaults(handler=_migrate)


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("keys", help="create, list and revoke API keys")
    keys = parser.add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a key and print it (only this once)")
    create.add_argument("--owner", required=True, help="owner of everything made with the key")
    create.add_argument("--name", default="", help="a label, e.g. the machine it is for")
    create.add_argument("--admin", action="store_true", help="may manage other owners' keys")
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--owner", help="only this owner's keys")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("key", help="key id, or its prefix (nns_0123abcd4567)")
    parser.set_defaults(handler=_keys)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    if args.check:
        return _worker_check(args.heartbeat_dir)
    from service import migrate
    from service.jobs.rq_worker import run_worker
    from service.observability import configure_logging

    configure_logging(settings.log_level)
    migrate.upgrade(settings)
    return run_worker(settings, args.heartbeat_dir)


def _worker_check(directory: Path | None) -> int:
    """A container health check: 0 if a worker here has a fresh heartbeat, else 1 and why."""
    from service.jobs import worker_health

    healthy, reason = worker_health.check(directory or worker_health.default_dir())
    print(reason, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def _add_worker(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "worker",
        help="run training jobs from the Redis queue (NNS_RUNNER=rq; any number, any machine)",
        description="Takes job ids from the RQ queue NNS_RQ_QUEUE at NNS_REDIS_URL and trains "
        "one job at a time in a subprocess. Needs the API's database (DATABASE_URL, Postgres). "
        "SIGTERM requeues the running job to resume elsewhere from its last checkpoint.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="health check: exit 0 if a worker on this machine/container has a fresh "
        "heartbeat, else 1 with the reason (runs no worker)",
    )
    parser.add_argument(
        "--heartbeat-dir",
        type=Path,
        metavar="DIR",
        help="where workers keep their heartbeat files (default: $TMPDIR/nn-service-workers-UID)",
    )
    parser.set_defaults(handler=_worker)


_COMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_serve,
    _add_migrate,
    _add_keys,
    _add_worker,
    add_jobs,
    add_sweeps,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nn-service",
        description="Train NumPy neural networks behind a REST API. "
        "Configured by NNS_* environment variables or a .env file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args, Settings())
    except KeyboardInterrupt:
        return 130
    except ValueError as exc:  # bad settings or arguments: a message, not a traceback
        print(f"nn-service: error: {exc}", file=sys.stderr)
        return 2
    except OperationalError as exc:  # e.g. a read-only or full disk, a server that is down
        reason = str(exc.orig or exc).strip().splitlines()[0]
        url = make_url(Settings().database_url).render_as_string(hide_password=True)
        print(f"nn-service: error: cannot use the database {url}: {reason}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
