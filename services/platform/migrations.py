"""Alembic, set up once for every service: discovery of services/*/migrations, upgrade, platform tables.

Each service has `services/<svc>/migrations/` (an alembic script folder whose env.py calls
`services.platform.migrations_env.run_migrations("<svc>")`) and keeps its tables and its alembic version
table in its own PostgreSQL schema `<svc>`. `python -m services.platform.migrations init <svc>` creates the
folder from the template, with a first revision that creates the inbox and outbox tables.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from services.platform.db import async_url, is_transient, quote_schema

log = logging.getLogger(__name__)

SERVICES_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = Path(__file__).resolve().parent / "migrations_template"
SERVICE_PLACEHOLDER = "__service__"


# helpers for revisions ----------------------------------------


def create_platform_tables(schema: str) -> None:
    """Inside a service's alembic revision: create <schema>.inbox and <schema>.outbox with their indexes."""
    from alembic import op

    s = quote_schema(schema)
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    op.create_table(
        "inbox",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("kafka_offset", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=s,
    )
    op.create_index("inbox_received_at", "inbox", ["received_at"], schema=s)
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=True),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("payload", sa.dialects.postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        schema=s,
    )
    op.create_index("outbox_unsent", "outbox", ["id"], schema=s, postgresql_where=sa.text("sent_at IS NULL"))
    op.create_index(
        "outbox_sent_at", "outbox", ["sent_at"], schema=s, postgresql_where=sa.text("sent_at IS NOT NULL")
    )
    # One notification per inserting statement wakes the relay (LISTEN <schema>_outbox); delivered at commit.
    op.execute(
        f"CREATE OR REPLACE FUNCTION {s}.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('{s}_outbox', ''); RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER outbox_notify AFTER INSERT ON {s}.outbox "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.outbox_notify()"
    )


def drop_platform_tables(schema: str) -> None:
    """Inside a revision's downgrade: the reverse of `create_platform_tables`."""
    from alembic import op

    s = quote_schema(schema)
    op.drop_table("outbox", schema=s)
    op.execute(f"DROP FUNCTION IF EXISTS {s}.outbox_notify()")
    op.drop_table("inbox", schema=s)


# discovery and commands ----------------------------------------


def discover(services: Sequence[str] | None = None, root: Path | None = None) -> dict[str, Path]:
    """{service: migrations folder} for services/*/migrations with an env.py, sorted by name."""
    base = root or SERVICES_ROOT
    found = {p.parent.name: p for p in sorted(base.glob("*/migrations")) if (p / "env.py").is_file()}
    if services is None:
        return found
    missing = [s for s in services if s not in found]
    if missing:
        raise ValueError(f"no migrations folder for {', '.join(missing)} under {base}")
    return {s: found[s] for s in services}


def alembic_config(service: str, migrations_dir: Path, database_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("version_locations", str(migrations_dir / "versions"))
    cfg.attributes["schema"] = service
    if database_url is not None:
        cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(
    database_url: str,
    services: list[str] | None = None,
    revision: str = "head",
    *,
    root: Path | None = None,
    wait_s: float = 0.0,
) -> list[str]:
    """Run every (or the named) service's migrations to `revision`. Returns the services upgraded.

    Safe to call from sync code or from inside a running event loop (it then runs in a worker thread).
    `wait_s`: see `upgrade_async`.
    """
    return _run_blocking(upgrade_async(database_url, services, revision, root=root, wait_s=wait_s))


async def upgrade_async(
    database_url: str,
    services: list[str] | None = None,
    revision: str = "head",
    *,
    root: Path | None = None,
    wait_s: float = 0.0,
) -> list[str]:
    """`wait_s` > 0: a database that is away (refused, restarting, shutting down — `db.is_transient`) is
    waited for up to that long, retrying with back-off, before the error is raised. A service starting
    while PostgreSQL restarts then comes up when the database does instead of exiting 1 (issue 12's chaos
    run); an error that is not transient (a bad URL, a failing migration) is raised at once."""
    targets = discover(services, root)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    delay = 0.25
    while True:
        try:
            await _with_connection(database_url, targets, lambda cfg: command.upgrade(cfg, revision))
            return list(targets)
        except Exception as exc:
            left = deadline - loop.time()
            if not is_transient(exc) or left <= 0:
                raise
            log.warning(
                "database not reachable for migrations; retrying",
                extra={"error": type(exc).__name__, "retry_in_s": round(min(delay, left), 2)},
            )
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


def check(database_url: str, services: list[str] | None = None, *, root: Path | None = None) -> list[str]:
    """`alembic check` per service: raises AutogenerateDiffsDetected (naming the differences) when a
    service's tables (its metadata) and its migrations at head disagree. Returns the services checked."""
    targets = discover(services, root)
    _run_blocking(_with_connection(database_url, targets, command.check))
    return list(targets)


def downgrade(database_url: str, services: list[str], revision: str, *, root: Path | None = None) -> None:
    targets = discover(services, root)
    _run_blocking(_with_connection(database_url, targets, lambda cfg: command.downgrade(cfg, revision)))


def current(
    database_url: str, services: list[str] | None = None, *, root: Path | None = None
) -> dict[str, str | None]:
    """{service: revision in its version table, or None if never migrated}."""
    targets = discover(services, root)
    return _run_blocking(_current_async(database_url, targets))


async def _current_async(database_url: str, targets: dict[str, Path]) -> dict[str, str | None]:
    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:

            def read(sync_conn: sa.Connection) -> dict[str, str | None]:
                out: dict[str, str | None] = {}
                for svc in targets:
                    ctx = MigrationContext.configure(sync_conn, opts={"version_table_schema": svc})
                    out[svc] = ctx.get_current_revision()
                return out

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


# Alembic keeps its `context` in module globals: one command at a time per process. Other processes
# (pods) are serialised per schema by the advisory lock in migrations_env.
_ALEMBIC_IN_USE = threading.Lock()


async def _with_connection(database_url: str, targets: dict[str, Path], action: Any) -> None:
    await asyncio.to_thread(_ALEMBIC_IN_USE.acquire)
    try:
        await _with_connection_locked(database_url, targets, action)
    finally:
        _ALEMBIC_IN_USE.release()


async def _with_connection_locked(database_url: str, targets: dict[str, Path], action: Any) -> None:
    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    try:
        for svc, path in targets.items():
            cfg = alembic_config(svc, path, database_url)
            async with engine.begin() as conn:

                def run(sync_conn: sa.Connection, cfg: Config = cfg) -> None:
                    cfg.attributes["connection"] = sync_conn
                    action(cfg)

                await conn.run_sync(run)
    finally:
        await engine.dispose()


def _run_blocking(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def init_service(service: str, root: Path | None = None) -> Path:
    """Create services/<service>/migrations from the template (env.py, script.py.mako, first revision)."""
    quote_schema(service)
    target = (root or SERVICES_ROOT) / service / "migrations"
    if target.exists():
        raise FileExistsError(f"{target} exists")
    shutil.copytree(TEMPLATE_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".mako"}:
            path.write_text(path.read_text().replace(SERVICE_PLACEHOLDER, service))
    return target


def new_revision(
    service: str, message: str, *, autogenerate: bool = False, database_url: str | None = None
) -> None:
    """Add a revision file to a service's migrations (autogenerate compares with the live database)."""
    path = discover([service])[service]
    if not autogenerate:
        command.revision(alembic_config(service, path), message=message)
        return
    if database_url is None:
        raise ValueError("autogenerate needs database_url")
    _run_blocking(
        _with_connection(
            database_url,
            {service: path},
            lambda cfg: command.revision(cfg, message=message, autogenerate=True),
        )
    )


def main(argv: list[str] | None = None) -> int:
    from services.platform.settings import ServiceSettings

    parser = argparse.ArgumentParser(prog="python -m services.platform.migrations")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade", help="run migrations to head")
    up.add_argument("services", nargs="*")
    sub.add_parser("current", help="show each service's revision")
    chk = sub.add_parser("check", help="fail when a service's tables and its migrations at head disagree")
    chk.add_argument("services", nargs="*")
    init = sub.add_parser("init", help="create services/<svc>/migrations from the template")
    init.add_argument("service")
    rev = sub.add_parser("revision", help="add a revision to a service")
    rev.add_argument("service")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)
    url = ServiceSettings().database_url
    if args.cmd == "upgrade":
        done = upgrade(url, args.services or None)
        print("upgraded:", ", ".join(done) or "(no services with migrations)")
    elif args.cmd == "check":
        checked = check(url, args.services or None)
        print("tables match migrations:", ", ".join(checked))
    elif args.cmd == "current":
        for svc, rev_id in current(url).items():
            print(f"{svc}: {rev_id}")
    elif args.cmd == "init":
        print(init_service(args.service))
    elif args.cmd == "revision":
        new_revision(args.service, args.message, autogenerate=args.autogenerate, database_url=url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
