"""Where local runtime state lives and the URL of the embedded PostgreSQL: conventions, not launchers.

The settings base uses `embedded_url()` as the database default so a service started by hand on a
developer machine finds the server `wijkmatch db start` runs; the launchers themselves live in `devstack/`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

STATE_DIR_ENV = "WIJKMATCH_STATE_DIR"
DEFAULT_DATABASE = "wijkmatch"
SUPERUSER = "postgres"
_SOCKET_NAME = ".s.PGSQL.5432"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


def project_root() -> Path:
    """The checkout this package runs from (it holds pyproject.toml), else the current folder."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def state_dir(*, create: bool = True) -> Path:
    """The git-ignored working folder for local runtime state (`.wijkmatch/` in the project)."""
    override = os.environ.get(STATE_DIR_ENV)
    path = Path(override) if override else project_root() / ".wijkmatch"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def default_data_dir(*, create: bool = True) -> Path:
    return state_dir(create=create) / "pg"


def socket_dir_for(data_dir: Path) -> Path:
    """The data folder itself when its socket path fits in sun_path, else a short folder under /tmp."""
    data_dir = data_dir.resolve()
    if len(str(data_dir / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"wijkmatch-pg-{digest}"


def asyncpg_url(socket_dir: Path, database: str = DEFAULT_DATABASE) -> str:
    return f"postgresql+asyncpg://{SUPERUSER}@/{database}?host={socket_dir}"


def embedded_url(data_dir: Path | None = None, database: str = DEFAULT_DATABASE) -> str:
    """The URL the embedded server at data_dir answers on (whether or not it runs right now)."""
    return asyncpg_url(socket_dir_for(data_dir or default_data_dir(create=False)), database)
