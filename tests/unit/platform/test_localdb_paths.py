"""Pure parts of the embedded-PostgreSQL launcher and `wijkmatch db url`: names, socket paths, URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import dbcli
from devstack.localdb import asyncpg_url, check_identifier, embedded_url, socket_dir_for


def test_short_data_dir_holds_its_own_socket(tmp_path: Path) -> None:
    assert socket_dir_for(tmp_path / "pg") == (tmp_path / "pg").resolve()


def test_data_dir_too_long_for_a_unix_socket_gets_a_short_socket_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60) / "pg"
    socket_dir = socket_dir_for(deep)
    assert socket_dir != deep
    assert len(str(socket_dir / ".s.PGSQL.5432")) <= 100
    assert socket_dir_for(deep) == socket_dir  # stable: `db url` must agree with the running server


def test_url_is_asyncpg_over_the_socket_dir() -> None:
    assert asyncpg_url(Path("/s/d"), "db1") == "postgresql+asyncpg://postgres@/db1?host=/s/d"


@pytest.mark.parametrize("bad", ["", "Upper", "1abc", 'x"; DROP DATABASE y; --', "a-b", "a" * 64])
def test_database_names_are_plain_identifiers(bad: str) -> None:
    with pytest.raises(ValueError):
        check_identifier(bad)


def test_db_url_prefers_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/elsewhere")
    assert dbcli.main(["url"]) == 0
    assert capsys.readouterr().out.strip() == "postgresql+asyncpg://postgres@127.0.0.1:5432/elsewhere"


def test_db_url_without_database_url_is_the_embedded_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("WIJKMATCH_STATE_DIR", str(tmp_path))
    assert dbcli.main(["url"]) == 0
    out = capsys.readouterr().out.strip()
    assert (
        out == embedded_url() == f"postgresql+asyncpg://postgres@/wijkmatch?host={tmp_path.resolve() / 'pg'}"
    )
