"""The README's Webhooks section, run as pasted: the curl registers a webhook on a real
`nn-service serve`, and the hand-written verification accepts what the reference
Standard Webhooks library signs (and nothing else)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from server_process import ServerProcess
from standardwebhooks.webhooks import Webhook as Reference
from test_readme import blocks, run_blocks

from service.webhooks import signing

SECTION = "Webhooks"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path, f"sqlite:///{tmp_path}/data/nns.db")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_the_curl_registers_a_webhook_and_shows_the_secret_once(server: ServerProcess) -> None:
    [(_, output)] = run_blocks(server, SECTION, timeout=60, prelude="KEY=$(cat data/admin-key)")
    assert '"secret":"whsec_' in output and '"id":"wh_' in output, output


def test_the_hand_written_verification_agrees_with_the_reference_library() -> None:
    [snippet] = blocks("python", SECTION)
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    verify: Callable[[str, dict[str, str], bytes], bool] = namespace["verify"]
    secret, body, sent = signing.new_secret(), b'{"type":"job.succeeded"}', datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(sent.timestamp())),
        "webhook-signature": Reference(secret).sign("msg_1", sent, body.decode()),
    }
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    assert not verify(signing.new_secret(), headers, body)
