"""What every end-to-end benchmark needs, written once: a broker and a fresh, dropped-afterwards database.

Broker: KAFKA_BOOTSTRAP_SERVERS, else the bundled Tansu on a free port. Database: a new database on
DATABASE_URL's server, else on the embedded PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager


def admin(server_url: str, sql: str, database: str) -> str:
    """Run one administrative statement on the server; returns the URL of `database` on it."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)

    async def execute() -> None:
        host = url.query.get("host") or url.host
        connection = await asyncpg.connect(
            host=host if isinstance(host, str) else host[0],
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute())
    return url.set(database=database).render_as_string(hide_password=False)


@contextmanager
def bench_stack(name_prefix: str, partitions: int = 4) -> Iterator[tuple[str, str]]:
    """Yields (bootstrap servers, database URL of a fresh database); cleans everything up afterwards."""
    from devstack.localbroker import LocalBroker

    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        broker = LocalBroker(port=0, partitions=partitions).start()
        bootstrap = broker.bootstrap
    embedded = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        from devstack.localdb import EmbeddedPostgres

        embedded = EmbeddedPostgres(database="postgres")
        embedded.start()
        server_url = embedded.url("postgres")
    name = f"{name_prefix}_{secrets.token_hex(4)}"
    try:
        database_url = admin(server_url, f'CREATE DATABASE "{name}"', name)
        yield bootstrap, database_url
    finally:
        admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', name)
        admin(server_url, f'DROP DATABASE IF EXISTS "{name}_keys" WITH (FORCE)', name)  # intake's key store
        if embedded is not None:
            embedded.stop()
        if broker is not None:
            broker.stop()
