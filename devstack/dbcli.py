"""`wijkmatch db start|url|upgrade`: the embedded PostgreSQL and schema migrations from the command line."""

from __future__ import annotations

import argparse
import os
import sys

from devstack.localbroker import StopSignals
from devstack.localdb import EmbeddedPostgres, LocalDbError, default_data_dir, embedded_url


def configured_url() -> str | None:
    return os.environ.get("DATABASE_URL") or None


def _start(_: argparse.Namespace) -> int:
    if configured_url():
        print("note: DATABASE_URL is set; services will use it, not this embedded server", file=sys.stderr)
    server = EmbeddedPostgres(default_data_dir())
    with StopSignals() as stop:
        try:
            server.start()
        except LocalDbError as exc:
            print(f"wijkmatch db: {exc}", file=sys.stderr)
            return 1
        try:
            how = "started" if server.owned else f"already running (pid {server.pid}), reusing it"
            print(f"embedded PostgreSQL {how} in {server.startup_seconds:.2f}s; data {server.data_dir}")
            print(f"export DATABASE_URL='{server.url()}'", flush=True)
            while not stop.event.wait(0.5):
                if not server.is_running():
                    print(
                        f"wijkmatch db: PostgreSQL exited unexpectedly:\n{server.log_tail()}", file=sys.stderr
                    )
                    return 1
            print("stopping PostgreSQL", flush=True)
        finally:
            server.stop()
    return 0


def _url(_: argparse.Namespace) -> int:
    print(configured_url() or embedded_url())
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from services.platform import migrations

    url = configured_url()
    if url:
        migrations.upgrade(url, args.services or None)
        print(f"migrations at head on {url}")
        return 0
    # No DATABASE_URL: migrate the embedded server, starting it just for this when it is not running.
    with EmbeddedPostgres(default_data_dir()) as server:
        migrations.upgrade(server.url(), args.services or None)
        print(f"migrations at head on {server.url()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wijkmatch db", description="Embedded PostgreSQL and migrations.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "start", help="run embedded PostgreSQL until Ctrl-C/SIGTERM; prints its URL"
    ).set_defaults(func=_start)
    commands.add_parser(
        "url", help="print the database URL to use (DATABASE_URL, else the embedded one)"
    ).set_defaults(func=_url)
    upgrade = commands.add_parser("upgrade", help="run every service's migrations to head")
    upgrade.add_argument("services", nargs="*", help="only these services (default: all)")
    upgrade.set_defaults(func=_upgrade)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
