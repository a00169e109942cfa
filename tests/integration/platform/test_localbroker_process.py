"""LocalBroker and `wijkmatch broker` run the real bundled Tansu binary: topics, readiness, clean stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devstack.localbroker import (
    LocalBroker,
    LocalBrokerError,
    free_port,
    kafka_metadata,
    port_is_free,
)
from schemas.topics import ALL_TOPICS

pytestmark = pytest.mark.integration


async def _partition_counts(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(list(ALL_TOPICS))
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


async def test_broker_creates_every_topic_with_the_configured_partitions_and_stops() -> None:
    broker = LocalBroker(port=0, partitions=3)
    broker.start()
    try:
        pid = broker.pid
        assert pid is not None
        brokers = kafka_metadata(broker.host, broker.port)
        assert [(host, port) for _, host, port in brokers] == [("127.0.0.1", broker.port)]
        assert await _partition_counts(broker.bootstrap) == dict.fromkeys(ALL_TOPICS, 3)
    finally:
        broker.stop()
    assert _wait_gone(pid)
    assert port_is_free(broker.host, broker.port)


def test_broker_refuses_a_port_that_is_already_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(LocalBrokerError, match="already in use"):
            LocalBroker(port=port).start()


async def test_broker_restart_loses_messages_because_storage_is_memory_only(tmp_path: Path) -> None:
    port = free_port()
    topic = ALL_TOPICS[0]
    log = tmp_path / "broker.log"
    with LocalBroker(port=port, partitions=1, log_path=log) as broker:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"v", key=b"k")
        finally:
            await producer.stop()
        assert await _end_offset(broker.bootstrap, topic) == 1
    with LocalBroker(port=port, partitions=1, log_path=log) as broker:
        assert await _end_offset(broker.bootstrap, topic) == 0


async def _end_offset(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        offsets = await asyncio.wait_for(consumer.end_offsets([partition]), 10)
        return offsets[partition]
    finally:
        await consumer.stop()


def _start_cli(port: int, state: Path) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "broker", "--port", str(port), "--partitions", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "WIJKMATCH_STATE_DIR": str(state)},
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith(f"broker ready at 127.0.0.1:{port}"), line
    children = psutil.Process(process.pid).children()
    assert len(children) == 1 and "tansu" in children[0].name()
    return process, children[0].pid


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_broker_cli_stops_tansu_and_exits_zero_on_signal(stop_signal: signal.Signals, tmp_path: Path) -> None:
    port = free_port()
    process, tansu_pid = _start_cli(port, tmp_path)
    try:
        assert kafka_metadata("127.0.0.1", port)
        process.send_signal(stop_signal)
        assert process.wait(15) == 0
        assert _wait_gone(tansu_pid)
    finally:
        if process.poll() is None:
            process.kill()


def test_tansu_dies_with_a_killed_parent(tmp_path: Path) -> None:
    port = free_port()
    process, tansu_pid = _start_cli(port, tmp_path)
    try:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(5)
        assert _wait_gone(tansu_pid), "Tansu outlived its SIGKILLed parent"
    finally:
        if psutil.pid_exists(tansu_pid):
            os.kill(tansu_pid, signal.SIGKILL)
