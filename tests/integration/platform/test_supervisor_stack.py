"""LocalStack / `wijkmatch up` run real components: Tansu, embedded PostgreSQL, migrations, child services.

The services here are small stand-in HTTP processes (the real ones have their own e2e tests), so these
tests prove the supervision itself: environment, ports, readiness, restarts, stop order, broker death.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from devstack.demo import demo_steps
from devstack.localbroker import free_port, kafka_metadata, state_dir
from devstack.supervisor import LocalStack, ServiceSpec, StackError, run_stack

pytestmark = pytest.mark.integration

# A stand-in service: serves /readyz on its port, records its environment, can crash on its first starts,
# and on SIGTERM records whether the broker still answered (services must stop before the broker).
FAKE_SERVICE = r"""
import http.server, json, os, signal, socket, sys, time
name, port_env, record, crashes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
starts_file = record + ".starts"
with open(starts_file, "a") as f:
    f.write("x")
starts = len(open(starts_file).read())
if starts <= crashes:
    time.sleep(0.2)
    sys.exit(3)
port = int(os.environ[port_env])
host, kport = os.environ["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)
with open(record, "w") as f:
    json.dump({"port": port, "starts": starts, "env": {k: os.environ.get(k) for k in
               ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "WIJKMATCH_ORGANISATIONS")}}, f)

def on_term(*_):
    try:
        socket.create_connection((host, int(kport)), timeout=1).close()
        state = "broker-up"
    except OSError:
        state = "broker-down"
    with open(record + ".stop", "w") as f:
        f.write(state)
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/readyz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def pg_data() -> Iterator[Path]:
    """One embedded data folder for the module: initdb once, each stack then starts it in ~0.1 s."""
    path = state_dir() / "tmp" / f"stack-pg-{secrets.token_hex(4)}"
    yield path / "pg"
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workdir(pg_data: Path) -> Iterator[Path]:
    path = state_dir() / "tmp" / f"stack-{secrets.token_hex(4)}"
    path.mkdir(parents=True)
    (path / "pg").symlink_to(pg_data, target_is_directory=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_configured_components(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about the stack starting its own broker and database.
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)


def fake(name: str, workdir: Path, crashes: int = 0) -> ServiceSpec:
    port_env = f"FAKE_{name.upper()}_PORT"
    record = workdir / f"{name}.json"
    return ServiceSpec(
        name,
        (),
        "http.server:HTTPServer",
        0,
        port_env,
        exec_argv=(sys.executable, "-c", FAKE_SERVICE, name, port_env, str(record), str(crashes)),
    )


def make_stack(workdir: Path, specs: list[ServiceSpec], **kwargs: object) -> LocalStack:
    return LocalStack(
        free_ports=True,
        partitions=2,
        specs=specs,
        data_dir=workdir / "pg",
        log_dir=workdir / "logs",
        restart_backoff_s=0.2,
        env={"WIJKMATCH_ORGANISATIONS": "/some/registry.yaml"},
        **kwargs,  # type: ignore[arg-type]
    )


def test_stack_runs_broker_database_migrations_and_services_with_their_settings(workdir: Path) -> None:
    specs = [fake("alpha", workdir), fake("beta", workdir)]
    with make_stack(workdir, specs) as stack:
        stack.wait_ready(timeout=60)
        assert stack.kafka_bootstrap is not None and stack.database_url is not None
        host, port = stack.kafka_bootstrap.rsplit(":", 1)
        assert kafka_metadata(host, int(port))
        assert stack.database is not None and stack.database.owned
        assert stack.database.psql("SELECT 1").strip() == "1"
        records = {n: json.loads((workdir / f"{n}.json").read_text()) for n in ("alpha", "beta")}
        ports = {n: r["port"] for n, r in records.items()}
        assert len(set(ports.values())) == 2
        assert ports == {n: int(url.rsplit(":", 1)[1]) for n, url in stack.urls().items()}
        for record in records.values():
            assert record["env"] == {
                "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
                "DATABASE_URL": stack.database_url,
                "WIJKMATCH_ORGANISATIONS": "/some/registry.yaml",
            }
        assert set(stack.timings) >= {"broker", "database", "migrations"}
        broker_pid, db_pid = stack.broker.pid, stack.database.pid  # type: ignore[union-attr]
    # Services stopped while the broker still answered; then broker and database are gone.
    assert (workdir / "alpha.json.stop").read_text() == "broker-up"
    assert (workdir / "beta.json.stop").read_text() == "broker-up"
    for pid in (broker_pid, db_pid):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_crashing_service_is_restarted_with_backoff(workdir: Path) -> None:
    with make_stack(workdir, [fake("flaky", workdir, crashes=2)]) as stack:
        stack.wait_ready(timeout=60)
        service = stack.services["flaky"]
        assert service.restarts == 2
        assert service.last_exit == 3
        assert json.loads((workdir / "flaky.json").read_text())["starts"] == 3


def test_a_service_whose_module_does_not_import_is_reported_absent(workdir: Path) -> None:
    missing = ServiceSpec("ghost", ("ghost",), "services.ghost_service_xyz.cli:main", 0, "GHOST_PORT")
    with make_stack(workdir, [missing, fake("alpha", workdir)]) as stack:
        assert "ghost" in stack.absent and "ghost_service_xyz" in stack.absent["ghost"]
        assert set(stack.services) == {"alpha"}


def test_broker_death_stops_the_stack_with_a_clear_message(workdir: Path) -> None:
    with make_stack(workdir, [fake("alpha", workdir)]) as stack:
        stack.wait_ready(timeout=60)
        assert stack.broker is not None and stack.broker.pid is not None
        os.kill(stack.broker.pid, signal.SIGKILL)
        assert stack.failed.wait(10)
        assert stack.fatal is not None and "memory-only" in stack.fatal
        with pytest.raises(StackError, match="memory-only"):
            stack.wait_ready(timeout=1)


def test_failed_migrations_stop_what_was_started(workdir: Path) -> None:
    # An unreachable DATABASE_URL: broker starts, migrations fail, the broker is stopped again.
    stack = make_stack(workdir, [], database_url="postgresql+asyncpg://postgres@/nope?host=/nonexistent")
    with pytest.raises(StackError, match="db upgrade"):
        stack.start()
    assert stack.broker is None


def test_up_command_stops_everything_on_ctrl_c(workdir: Path) -> None:
    env = {**os.environ, "WIJKMATCH_STATE_DIR": str(workdir / "state")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up", "--broker-port", str(free_port()), "--services", ""],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "stack running" in line:
                break
        assert any("stack running" in line for line in lines), "".join(lines)
        children = psutil.Process(process.pid).children()
        names = sorted(c.name() for c in children)
        assert names == ["postgres", "tansu"], names
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        for child in children:
            assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    finally:
        if process.poll() is None:
            process.kill()


FEED_RECORDER = (
    "import json, os, sys; json.dump({k: v for k, v in os.environ.items() "
    "if k.startswith(('WIJKMATCH_', 'KAFKA_', 'DATABASE_'))}, open(sys.argv[1], 'w'))"
)


def test_demo_once_runs_the_feed_against_the_ready_stack_then_stops_it(workdir: Path) -> None:
    record = workdir / "feed.json"
    feed = [sys.executable, "-c", FEED_RECORDER, str(record)]
    stack = make_stack(workdir, [fake("intake", workdir), fake("matcher", workdir)])
    assert run_stack(stack, after_start=demo_steps(True, 60, [], command=feed)) == 0
    env = json.loads(record.read_text())
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == stack.kafka_bootstrap
    assert env["DATABASE_URL"] == stack.database_url
    assert env["WIJKMATCH_INTAKE_URL"] == stack.services["intake"].url
    assert env["WIJKMATCH_MATCHER_URL"] == stack.services["matcher"].url
    assert stack.broker is None and stack.database is None
    assert not any(service.running() for service in stack.services.values())


def test_demo_once_names_the_missing_services_and_fails_without_feeding(workdir: Path) -> None:
    record = workdir / "feed.json"
    output = io.StringIO()
    stack = make_stack(
        workdir, [fake("intake", workdir)], console=Console(file=output, width=300, highlight=False)
    )
    feed = [sys.executable, "-c", FEED_RECORDER, str(record)]
    code = run_stack(stack, after_start=demo_steps(True, 60, [], command=feed))
    assert code == 1
    assert "not there yet: matcher" in output.getvalue()
    assert not record.exists()


def test_a_taken_service_port_fails_the_start_clearly_and_stops_the_rest(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = ServiceSpec("alpha", (), "http.server:HTTPServer", port, "FAKE_ALPHA_PORT")
        stack = LocalStack(
            broker_port=free_port(), specs=[spec], data_dir=workdir / "pg", log_dir=workdir / "logs"
        )
        with pytest.raises(StackError, match=f"port {port} for alpha is already in use"):
            stack.start()
    assert stack.broker is None and stack.database is None
