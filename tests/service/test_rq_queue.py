"""RQ message ids and the `nn-service worker` command (no servers needed)."""

from __future__ import annotations

import pytest
from rq.job import validate_job_id

from service.cli import build_parser
from service.jobs.rq_queue import job_id_of, message_id


@pytest.mark.parametrize("job_id", ["job_3e3d0f11dcc961d1", "a-b-c", "x"])
def test_message_ids_name_their_job_and_are_valid_rq_ids(job_id: str) -> None:
    first, second = message_id(job_id), message_id(job_id)
    assert first != second  # every enqueue is a new message; duplicates are harmless
    validate_job_id(first)  # RQ accepts only [A-Za-z0-9_-]
    assert job_id_of(first) == job_id


def test_foreign_rq_ids_name_no_job() -> None:
    assert job_id_of("some-other-app-job") is None
    assert job_id_of("nns-") is None


def test_worker_command_exists() -> None:
    args = build_parser().parse_args(["worker"])
    assert args.command == "worker"
