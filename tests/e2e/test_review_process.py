"""`wijkmatch review` as a real process: ready on /readyz, JSON logs on stderr, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_the_review_process_becomes_ready_and_stops_gracefully_on_sigterm(
    kafka_bootstrap: str, migrated_database_url: str
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": migrated_database_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "WIJKMATCH_REVIEW_HTTP_PORT": str(port),
        "WIJKMATCH_REVIEW_METRICS_PORT": "0",  # the internal health port: any free one
        "WIJKMATCH_REVIEW_CONSUMER_GROUP": f"review-proc-{uuid.uuid4().hex[:8]}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "review"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "review did not become ready"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/proposals").status_code == 401
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down, so the exit status may be -SIGTERM;
        # "Application shutdown complete." is what proves the lifespan (consumer, relay) ended cleanly.
        assert process.wait(timeout=40) in {0, -signal.SIGTERM}
        lines = [line for line in (process.stderr.read() if process.stderr else "").splitlines() if line]
        records = [json.loads(line) for line in lines]
        assert all(r["service"] == "wijkmatch-review" for r in records)
        assert any(r["msg"] == "Application shutdown complete." for r in records)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
