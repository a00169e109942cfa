"""The Kafka Metadata probe LocalBroker waits on, against a scripted socket peer."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from devstack.localbroker import kafka_metadata


def _string(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">h", len(raw)) + raw


def _serve_once(reply: bytes) -> tuple[int, list[bytes]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    received: list[bytes] = []

    def run() -> None:
        connection, _ = server.accept()
        with connection, server:
            size = struct.unpack(">i", connection.recv(4))[0]
            received.append(connection.recv(size))
            connection.sendall(struct.pack(">i", len(reply)) + reply)

    threading.Thread(target=run, daemon=True).start()
    return server.getsockname()[1], received


def test_metadata_probe_sends_a_v1_request_and_parses_the_brokers() -> None:
    brokers = (
        struct.pack(">i", 2)
        + struct.pack(">i", 1) + _string("127.0.0.1") + struct.pack(">i", 9092) + struct.pack(">h", -1)
        + struct.pack(">i", 2) + _string("host-b") + struct.pack(">i", 9093) + _string("rack1")
    )  # fmt: skip
    reply = struct.pack(">i", 0x5EED) + brokers + struct.pack(">i", 1) + struct.pack(">i", 0)
    port, received = _serve_once(reply)
    assert kafka_metadata("127.0.0.1", port) == [(1, "127.0.0.1", 9092), (2, "host-b", 9093)]
    api_key, api_version = struct.unpack_from(">hh", received[0])
    assert (api_key, api_version) == (3, 1)
    assert received[0].endswith(struct.pack(">i", -1))  # all topics


def test_metadata_probe_rejects_a_reply_to_another_request() -> None:
    port, _ = _serve_once(struct.pack(">ii", 7, 0))
    with pytest.raises(ConnectionError):
        kafka_metadata("127.0.0.1", port)


def test_metadata_probe_fails_fast_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        kafka_metadata("127.0.0.1", port, timeout=0.5)
