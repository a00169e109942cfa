"""`wijkmatch up`: the whole local stack as child processes under one supervisor (LocalStack).

Order: bundled broker (unless KAFKA_BOOTSTRAP_SERVERS is set) -> embedded PostgreSQL (unless
DATABASE_URL is set) -> `wijkmatch db upgrade` -> every service in SERVICES whose CLI module imports.
A crashed service is restarted with backoff. The broker is memory-only, so if it dies the stack stops
(its topics and offsets are gone). Stopping: services first, then the broker, then the database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from devstack.localbroker import (
    DEFAULT_PARTITIONS,
    DEFAULT_PORT,
    LocalBroker,
    StopSignals,
    child_preexec,
    create_topics,
    free_port,
    port_is_free,
    run_blocking,
    state_dir,
)
from devstack.localdb import EmbeddedPostgres, default_data_dir
from schemas.topics import ALL_TOPICS


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the local stack: `wijkmatch <argv...>`, present when `entrypoint` imports."""

    name: str
    argv: tuple[str, ...]
    entrypoint: str  # "module:function" that must import for the service to run
    http_port: int
    port_env: str  # environment variable the service reads its HTTP port from
    ready_path: str = "/readyz"
    exec_argv: tuple[str, ...] | None = None  # full command instead of `wijkmatch <argv>` (tests)
    metrics_port_env: str | None = None  # its internal health port (/metrics), when it has an API port

    def command(self) -> list[str]:
        if self.exec_argv:
            return list(self.exec_argv)
        return [sys.executable, "-m", "services.cli", *self.argv]


# Later services join by adding a row; a row whose entrypoint does not import yet is reported and skipped.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("intake", ("intake",), "services.intake.cli:main", 8080, "WIJKMATCH_INTAKE_HTTP_PORT"),
    ServiceSpec(
        "intake-gateway",
        ("intake", "gateway"),
        "services.intake.entrypoints.gateway:create_gateway",
        8081,
        "WIJKMATCH_INTAKE_GATEWAY_PORT",
        metrics_port_env="WIJKMATCH_INTAKE_GATEWAY_METRICS_PORT",
    ),
    ServiceSpec(
        "matcher",
        ("matcher",),
        "services.matcher.cli:main",
        8020,
        "WIJKMATCH_MATCHER_HTTP_PORT",
        metrics_port_env="WIJKMATCH_MATCHER_METRICS_PORT",
    ),
    ServiceSpec(
        "review",
        ("review",),
        "services.review.cli:main",
        8030,
        "WIJKMATCH_REVIEW_HTTP_PORT",
        metrics_port_env="WIJKMATCH_REVIEW_METRICS_PORT",
    ),
    ServiceSpec(
        "notifier",
        ("notifier",),
        "services.notifier.cli:main",
        8040,
        "WIJKMATCH_NOTIFIER_HTTP_PORT",
        metrics_port_env="WIJKMATCH_NOTIFIER_METRICS_PORT",
    ),
)

RESTART_BACKOFF_INITIAL_S = 1.0
RESTART_BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a service that ran this long starts its backoff over
SERVICE_STOP_TIMEOUT_S = 30.0


class StackError(RuntimeError):
    """The local stack could not start, or a component it cannot replace died."""


def available_services(
    specs: Iterable[ServiceSpec] = SERVICES, timeout: float = 120.0
) -> tuple[list[ServiceSpec], dict[str, str]]:
    """(services whose entrypoint imports, {absent name: reason}); each is checked in a fresh interpreter."""
    specs = list(specs)
    checks: dict[str, subprocess.Popen[str]] = {}
    for spec in specs:
        module, func = spec.entrypoint.split(":")
        code = f"import importlib, sys; m = importlib.import_module({module!r}); getattr(m, {func!r})"
        checks[spec.name] = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(_project_root()),
        )
    present: list[ServiceSpec] = []
    absent: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for spec in specs:
        process = checks[spec.name]
        try:
            _, err = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            absent[spec.name] = f"importing {spec.entrypoint} took too long"
            continue
        if process.returncode == 0:
            present.append(spec)
        else:
            last = (err or "").strip().splitlines()
            absent[spec.name] = last[-1] if last else f"{spec.entrypoint} does not import"
    return present, absent


def _project_root() -> Path:
    from devstack.localbroker import project_root

    return project_root()


def _short(path: Path) -> str:
    """A path relative to the current folder when it is inside it (status lines stay readable)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def http_ready(url: str, timeout: float = 2.0) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class ServiceProcess:
    spec: ServiceSpec
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = RESTART_BACKOFF_INITIAL_S
    restart_at: float | None = None
    ready: bool = False
    last_exit: int | None = None
    _reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_url(self) -> str:
        return self.url + self.spec.ready_path

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class LocalStack:
    """The local stack as a context manager: `with LocalStack() as stack: stack.wait_ready()`.

    `free_ports=True` gives the broker and every service a free port (tests, parallel stacks).
    `env` adds environment variables for the services (e.g. WIJKMATCH_MATCHER_DEBOUNCE_S).
    """

    def __init__(
        self,
        *,
        broker_port: int = DEFAULT_PORT,
        partitions: int = DEFAULT_PARTITIONS,
        services: Sequence[str] | None = None,
        free_ports: bool = False,
        env: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
        log_dir: Path | None = None,
        echo_logs: bool = False,
        console: Console | None = None,
        specs: Sequence[ServiceSpec] = SERVICES,
        kafka_bootstrap: str | None = None,
        database_url: str | None = None,
        restart_backoff_s: float = RESTART_BACKOFF_INITIAL_S,
    ) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)
        # An explicit value wins; else the environment; else the stack starts its own component.
        self.configured_bootstrap = kafka_bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
        self.configured_database_url = database_url or os.environ.get("DATABASE_URL") or None
        self.restart_backoff_s = restart_backoff_s
        self.broker_port = 0 if free_ports else broker_port
        self.partitions = partitions
        self.free_ports = free_ports
        self.only = set(services) if services is not None else None
        self.extra_env = dict(env or {})
        self.data_dir = data_dir
        self.log_dir = log_dir or state_dir() / "logs"
        self.echo_logs = echo_logs
        self.specs = [s for s in specs if self.only is None or s.name in self.only]
        self.broker: LocalBroker | None = None
        self.database: EmbeddedPostgres | None = None
        self.kafka_bootstrap: str | None = None
        self.database_url: str | None = None
        self.services: dict[str, ServiceProcess] = {}
        self.absent: dict[str, str] = {}
        self._planned: list[tuple[ServiceSpec, int]] = []
        self.fatal: str | None = None
        self.failed = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._monitor: threading.Thread | None = None
        self.timings: dict[str, float] = {}

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self, abort: threading.Event | None = None) -> LocalStack:
        """Start every component in order; on any failure stop what was started and raise StackError."""
        abort = abort or threading.Event()
        try:
            self._plan_services()
            self._check(abort)
            self._start_broker()
            self._check(abort)
            self._start_database()
            self._check(abort)
            self._migrate()
            self._check(abort)
            self._start_services()
        except BaseException:
            self.stop()
            raise
        self._monitor = threading.Thread(target=self._watch, name="wijkmatch-supervisor", daemon=True)
        self._monitor.start()
        return self

    def _check(self, abort: threading.Event) -> None:
        if abort.is_set():
            raise StackError("interrupted during start-up")

    def stop(self) -> None:
        """Services first (SIGTERM, then SIGKILL of their process group), then broker, then database."""
        self._stopping.set()
        with self._lock:
            running = [s for s in self.services.values() if s.running()]
            for service in running:
                self._status("stopping", service.spec.name)
                with contextlib.suppress(ProcessLookupError):
                    service.process.terminate()  # type: ignore[union-attr]
            deadline = time.monotonic() + SERVICE_STOP_TIMEOUT_S
            for service in running:
                assert service.process is not None
                try:
                    service.process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self._status(
                        "killing", f"{service.spec.name} (did not stop in {SERVICE_STOP_TIMEOUT_S:.0f}s)"
                    )
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(service.process.pid, signal.SIGKILL)  # leftover workers of the group
                service.process.wait()
            if self.broker is not None:
                self._status("stopping", "broker")
                self.broker.stop()
                self.broker = None
            if self.database is not None:
                if self.database.owned:
                    self._status("stopping", "PostgreSQL")
                self.database.stop()
                self.database = None
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=5)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- components -------------------------------------------------------------------------------

    def _start_broker(self) -> None:
        configured = self.configured_bootstrap
        if configured:
            started = time.monotonic()
            try:
                created = run_blocking(create_topics(configured, ALL_TOPICS, self.partitions))
            except Exception as exc:
                raise StackError(f"broker at KAFKA_BOOTSTRAP_SERVERS={configured} failed: {exc!r}") from exc
            self.kafka_bootstrap = configured
            self.timings["broker"] = time.monotonic() - started
            self._ok("broker", f"{configured} (KAFKA_BOOTSTRAP_SERVERS; {len(created)} topics created)")
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.broker = LocalBroker(
            port=self.broker_port, partitions=self.partitions, log_path=self.log_dir / "broker.log"
        )
        try:
            self.broker.start()
        except Exception as exc:
            raise StackError(f"the bundled broker did not start: {exc}") from exc
        self.kafka_bootstrap = self.broker.bootstrap
        self.timings["broker"] = self.broker.startup_seconds or 0.0
        self._ok(
            "broker",
            f"{self.broker.bootstrap} (Tansu, memory-only, {len(ALL_TOPICS)} topics x {self.partitions} "
            f"partitions) in {self.timings['broker']:.2f}s",
        )

    def _start_database(self) -> None:
        configured = self.configured_database_url
        if configured:
            self.database_url = configured
            self._ok("PostgreSQL", f"{configured} (DATABASE_URL)")
            return
        self.database = EmbeddedPostgres(self.data_dir or default_data_dir())
        try:
            self.database.start()
        except Exception as exc:
            raise StackError(f"embedded PostgreSQL did not start: {exc}") from exc
        self.database_url = self.database.url()
        self.timings["database"] = self.database.startup_seconds or 0.0
        how = "started" if self.database.owned else f"reused running server pid {self.database.pid}"
        self._ok(
            "PostgreSQL",
            f"{self.database_url} (embedded, data {self.database.data_dir}; {how}) "
            f"in {self.timings['database']:.2f}s",
        )

    def child_env(self) -> dict[str, str]:
        env = {**os.environ, **self.extra_env}
        env["KAFKA_BOOTSTRAP_SERVERS"] = self.kafka_bootstrap or ""
        env["DATABASE_URL"] = self.database_url or ""
        env.setdefault("PYTHONUNBUFFERED", "1")
        # The local stack delivers webhooks to the demo receiver on 127.0.0.1 over http: explicitly
        # allowed here, for local use only (the notifier refuses both by default).
        env.setdefault("WIJKMATCH_NOTIFIER_WEBHOOK_ALLOW_HTTP", "true")
        env.setdefault("WIJKMATCH_NOTIFIER_WEBHOOK_ALLOW_PRIVATE", "true")
        return env

    def _migrate(self) -> None:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "services.cli", "db", "upgrade"],
            env=self.child_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        self.timings["migrations"] = time.monotonic() - started
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise StackError(f"`wijkmatch db upgrade` failed (exit {result.returncode}):\n{tail}")
        self._ok("migrations", f"at head in {self.timings['migrations']:.2f}s")

    def _plan_services(self) -> None:
        """Which services exist, and their ports — before anything starts, so a clash fails fast."""
        present, self.absent = available_services(self.specs)
        for name, reason in self.absent.items():
            self._status("absent", f"{name}: not there yet ({reason})", style="yellow")
        self._planned = []
        for spec in present:
            port = free_port() if self.free_ports else spec.http_port
            if not port_is_free("127.0.0.1", port):
                raise StackError(
                    f"port {port} for {spec.name} is already in use (another stack?); "
                    "stop it, or run with --free-ports"
                )
            self._planned.append((spec, port))

    def _start_services(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec, port in self._planned:
            log_path = self.log_dir / f"{spec.name}.log"
            service = ServiceProcess(spec, port, log_path, backoff_s=self.restart_backoff_s)
            self.services[spec.name] = service
            self._spawn(service)

    def _spawn(self, service: ServiceProcess) -> None:
        env = self.child_env()
        env[service.spec.port_env] = str(service.port)
        # The review page's what-ifs ask this stack's matcher, wherever --free-ports put it.
        matcher_port = next((port for spec, port in self._planned if spec.name == "matcher"), None)
        if matcher_port is not None:
            env.setdefault("WIJKMATCH_REVIEW_MATCHER_URL", f"http://127.0.0.1:{matcher_port}")
        if self.free_ports and service.spec.metrics_port_env:
            env[service.spec.metrics_port_env] = str(free_port())
        log = open(service.log_path, "ab")  # noqa: SIM115 - handed to the reader thread, which closes it
        process = subprocess.Popen(
            service.spec.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(_project_root()),
            start_new_session=True,  # Ctrl-C reaches only the supervisor, which stops children in order
            preexec_fn=child_preexec(),
        )
        service.process = process
        service.started_at = time.monotonic()
        service.ready = False
        service.restart_at = None
        service._reader = threading.Thread(
            target=self._pump, args=(service.spec.name, process.stdout, log), daemon=True
        )
        service._reader.start()
        verb = "restarted" if service.restarts else "started"
        self._ok(service.spec.name, f"{verb} pid {process.pid}, {service.url} (log {service.log_path})")

    def _pump(self, name: str, stream: IO[bytes] | None, log: Any) -> None:
        try:
            if stream is None:
                return
            for line in iter(stream.readline, b""):
                log.write(line)
                log.flush()
                if self.echo_logs:
                    text = escape(line.decode(errors="replace").rstrip())
                    self.console.print(f"[dim]{name:>8} |[/] {text}")
        finally:
            log.close()

    # -- supervision ------------------------------------------------------------------------------

    def _watch(self) -> None:
        try:
            self._watch_loop()
        except Exception as exc:  # the supervisor itself broke: say so and stop, never hang silently
            self._die(f"supervisor error: {type(exc).__name__}: {exc}")

    def _watch_loop(self) -> None:
        while not self._stopping.wait(0.25):
            with self._lock:
                if self._stopping.is_set():
                    return
                if self.broker is not None and not self.broker.is_running():
                    self._die(
                        f"the bundled broker exited (code {self.broker.returncode()}); it is memory-only, so "
                        f"every topic, message and committed offset is gone. Stopping the stack; run "
                        f"`wijkmatch up` again.\n{self.broker.log_tail(10)}"
                    )
                    return
                if self.database is not None and self.database.owned and not self.database.is_running():
                    self._die(
                        f"embedded PostgreSQL exited (code {self.database.returncode()}); stopping the "
                        f"stack. Log {self.database.log_path}:\n{self.database.log_tail(10)}"
                    )
                    return
                now = time.monotonic()
                for service in self.services.values():
                    self._supervise(service, now)

    def _supervise(self, service: ServiceProcess, now: float) -> None:
        if service.running():
            if not service.ready and http_ready(service.ready_url, timeout=0.5):
                service.ready = True
                self._ok(service.spec.name, f"ready at {service.url}")
            if now - service.started_at > STABLE_AFTER_S:
                service.backoff_s = self.restart_backoff_s
            return
        if service.restart_at is None:
            assert service.process is not None
            service.last_exit = service.process.returncode
            service.ready = False
            service.restart_at = now + service.backoff_s
            self._status(
                "crashed",
                f"{service.spec.name} exited with code {service.last_exit}; restarting in "
                f"{service.backoff_s:.1f}s (log {service.log_path})",
                style="red",
            )
            service.backoff_s = min(service.backoff_s * 2, RESTART_BACKOFF_MAX_S)
        elif now >= service.restart_at:
            service.restarts += 1
            self._spawn(service)

    def _die(self, message: str) -> None:
        self.fatal = message
        self._status("FATAL", message, style="bold red")
        self.failed.set()

    # -- queries ----------------------------------------------------------------------------------

    def wait_ready(
        self,
        timeout: float = 120.0,
        names: Iterable[str] | None = None,
        abort: threading.Event | None = None,
    ) -> None:
        """Block until the services (default: all present) answer 200 on their readiness path."""
        wanted = [self.services[n] for n in names] if names is not None else list(self.services.values())
        deadline = time.monotonic() + timeout
        pending = list(wanted)
        while pending:
            if self.failed.is_set():
                raise StackError(self.fatal or "the stack failed")
            if abort is not None and abort.is_set():
                raise StackError("interrupted while waiting for the services")
            pending = [s for s in pending if not (s.running() and http_ready(s.ready_url, timeout=1.0))]
            if not pending:
                return
            if time.monotonic() > deadline:
                names_left = ", ".join(f"{s.spec.name} ({s.ready_url}, log {s.log_path})" for s in pending)
                raise StackError(f"not ready within {timeout:.0f}s: {names_left}")
            time.sleep(0.5)

    def urls(self) -> dict[str, str]:
        return {name: service.url for name, service in self.services.items()}

    def service_env(self) -> dict[str, str]:
        """child_env() plus WIJKMATCH_<SERVICE>_URL for every running service (for tools like demo-feed)."""
        env = self.child_env()
        for name, url in self.urls().items():
            env[f"WIJKMATCH_{name.upper().replace('-', '_')}_URL"] = url
        return env

    # -- output -----------------------------------------------------------------------------------

    def summary(self) -> Table:
        table = Table(title="wijkmatch local stack", title_justify="left", show_lines=False)
        for column in ("component", "address", "pid", "log"):
            table.add_column(column, overflow="fold")
        broker_where = self.kafka_bootstrap or "-"
        if self.broker is not None:
            table.add_row("broker (Tansu)", broker_where, str(self.broker.pid), _short(self.broker.log_path))
        else:
            table.add_row("broker", broker_where + " (configured)", "-", "-")
        if self.database is not None:
            pid = str(self.database.pid) + ("" if self.database.owned else " (reused)")
            table.add_row("PostgreSQL", self.database_url or "-", pid, _short(self.database.log_path))
        else:
            table.add_row("PostgreSQL", (self.database_url or "-") + " (configured)", "-", "-")
        for name, service in self.services.items():
            table.add_row(name, service.url, str(service.pid), _short(service.log_path))
        for name in self.absent:
            table.add_row(f"[dim]{escape(name)}[/]", "[dim]not there yet[/]", "", "")
        return table

    def _ok(self, what: str, detail: str) -> None:
        self._status("ok", f"[bold]{what}[/] {detail}", style="green", markup=True)

    def _status(self, tag: str, text: str, *, style: str = "cyan", markup: bool = False) -> None:
        body = text if markup else escape(text)
        self.console.print(f"[{style}]{tag:>8}[/] {body}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wijkmatch up",
        description="Run the local stack (broker, PostgreSQL, migrations, services) until Ctrl-C/SIGTERM.",
    )
    parser.add_argument("--broker-port", type=int, default=DEFAULT_PORT, help="bundled broker port")
    parser.add_argument("--partitions", type=int, default=DEFAULT_PARTITIONS, help="partitions per topic")
    parser.add_argument(
        "--services", help="comma-separated subset of: " + ", ".join(s.name for s in SERVICES)
    )
    parser.add_argument("--organisations", help="organisation registry YAML (sets WIJKMATCH_ORGANISATIONS)")
    parser.add_argument("--logs", action="store_true", help="echo service logs to the console")
    parser.add_argument("--free-ports", action="store_true", help="any free ports instead of the defaults")
    args = parser.parse_args(argv)

    env: dict[str, str] = {}
    if args.organisations:
        env["WIJKMATCH_ORGANISATIONS"] = str(Path(args.organisations).resolve())
    services = None if args.services is None else [s.strip() for s in args.services.split(",") if s.strip()]
    stack = LocalStack(
        broker_port=args.broker_port,
        partitions=args.partitions,
        services=services,
        env=env,
        echo_logs=args.logs,
        free_ports=args.free_ports,
    )
    return run_stack(stack)


def run_stack(stack: LocalStack, after_start: Any = None) -> int:
    """Start the stack, run `after_start(stack, stop_event)`, then wait for Ctrl-C or a fatal error."""
    with StopSignals() as stop:
        try:
            stack.start(abort=stop.event)
        except StackError as exc:
            stack.console.print(f"[bold red]wijkmatch: {exc}[/]", highlight=False)
            return 1
        try:
            stack.console.print(stack.summary())
            if not stack.services:
                stack.console.print("[yellow]no services are there yet; broker and database keep running[/]")
            if after_start is not None:
                result = after_start(stack, stop.event)
                if result is not None:
                    return int(result)
            stack.console.print("[bold]stack running[/] — Ctrl-C stops it")
            while not stop.event.is_set() and not stack.failed.is_set():
                stop.event.wait(0.5)
            return 1 if stack.failed.is_set() else 0
        finally:
            stack.stop()
            stack.console.print("[bold]stack stopped[/]")


if __name__ == "__main__":
    sys.exit(main())
