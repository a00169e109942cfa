"""Personal data stays in the vault: a scenario with personal data through real intake processes (consumer,
HTTP gateway, erase command), then every topic, every log line and every table but the vault is scanned.
And erasure makes the vault unreadable for good and withdraws the case downstream."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from devstack import samples
from devstack.localbroker import free_port
from schemas.topics import CASES, INTAKE_REJECTED, POOL
from services.intake.core.vault_crypto import VaultError, decrypt_with_data_key
from services.intake.settings import IntakeSettings
from services.platform.db import create_engine
from tests.integration.intake.conftest import (
    IntakeProcess,
    count,
    produce,
    read_events,
    read_topic,
    rows,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
DEMO_KEY = "demo-key-wijkmatch-demo"


def _personal(n: int, suffix: str) -> dict[str, str]:
    return {
        "name": f"Zoë Privacytest{suffix}{n}",
        "email": f"zoe.{suffix}{n}@privacy.example",
        "phone": f"+31 6 9{n:03d}{int(suffix, 16) % 10000:04d}",
        "citizen_number": f"{(int(suffix, 16) * 10 + n) % 10**9:09d}",
        "birth_date": f"19{40 + n:02d}-0{1 + n % 9}-1{n % 10}",
    }


def _needles(personal: dict[str, str]) -> list[bytes]:
    """Each value as raw UTF-8 and as it looks JSON-escaped, so an escaped copy is caught too."""
    out: list[bytes] = []
    for value in personal.values():
        out.append(value.encode())
        out.append(json.dumps(value).strip('"').encode())
    return out


@pytest.fixture
def settings(kafka_bootstrap: str, migrated_database_url: str, unique_group: str) -> IntakeSettings:
    return IntakeSettings(
        database_url=migrated_database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        group_id=unique_group,
        master_key=MASTER_KEY,
    )


@pytest.fixture
def gateway(settings: IntakeSettings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log_path = tmp_path / "gateway.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "WIJKMATCH_INTAKE_LOG_LEVEL": "DEBUG",
        "WIJKMATCH_INTAKE_GATEWAY_METRICS_PORT": str(free_port()),
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "intake", "gateway", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _erase(
    settings: IntakeSettings, region: str, case_id: str, log_path: Path
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "WIJKMATCH_INTAKE_MASTER_KEY": MASTER_KEY,
        "WIJKMATCH_INTAKE_LOG_LEVEL": "DEBUG",
    }
    with open(log_path, "ab") as log:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "intake", "erase", case_id, "--region", region],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )


async def _post(base_url: str, event: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        deadline = asyncio.get_running_loop().time() + 90  # the gateway process may still be starting
        while asyncio.get_running_loop().time() < deadline:
            try:
                return await client.post("/v1/events", json=event, headers={"X-Api-Key": DEMO_KEY})
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise AssertionError("gateway did not answer within 90 s")


async def _all_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def _open_vault(settings: IntakeSettings, region: str, case_id: str, ciphertext: bytes) -> Any:
    """Decrypt a vault row with its data key from intake's key store (VaultError when it has none)."""
    store = settings.build_keystore()
    await store.start()
    try:
        key = (await store.data_keys([(region, case_id)], create=False)).get((region, case_id))
    finally:
        await store.close()
    return decrypt_with_data_key(key, ciphertext, region, case_id)


async def _all_table_text(engine: Any) -> dict[str, str]:
    tables = await rows(
        engine,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    dumps: dict[str, str] = {}
    for t in tables:
        name = f'"{t.table_schema}"."{t.table_name}"'
        if name == '"intake"."personal_vault"':
            continue
        dumps[name] = "\n".join(r[0] for r in await rows(engine, f"SELECT t::text FROM {name} t"))
    return dumps


async def test_personal_data_never_leaves_the_vault(
    settings: IntakeSettings,
    gateway: tuple[str, Path],
    kafka_bootstrap: str,
    unique_suffix: str,
    tmp_path: Path,
) -> None:
    region = f"priv-{unique_suffix}"
    base_url, gateway_log = gateway
    people = {f"C{n}": _personal(n, unique_suffix) for n in range(4)}
    t = samples.at
    kafka_events = [
        samples.event("case.registered", samples.case(region, "C0", personal=people["C0"]), time=t(1)),
        samples.event("case.registered", samples.case(region, "C1", personal=people["C1"]), time=t(2)),
        # C1 moves: new personal data replaces the old; then an update without personal keeps it.
        samples.event("case.updated", samples.case(region, "C1", personal=people["C3"]), time=t(3)),
        samples.event("case.updated", samples.case(region, "C1", priority=800), time=t(4)),
    ]
    rejected = samples.event("case.registered", samples.case(region, "C9", personal=people["C0"]), time=t(5))
    rejected["data"]["household_size"] = 0  # invalid: rejected, and the rejection must not copy personal data
    # A malformed personal block: personal data as a field name and in values that break the rules.
    malformed = samples.event("case.registered", samples.case(region, "C8"), time=t(5))
    malformed["data"]["personal"] = {
        people["C0"]["name"]: people["C0"]["email"],
        "citizen_number": people["C1"]["name"],
        "email": people["C2"]["phone"],
    }
    await produce(kafka_bootstrap, [*kafka_events, rejected, malformed])
    via_http = samples.event("case.registered", samples.case(region, "C2", personal=people["C2"]), time=t(6))

    engine = create_engine(settings.database_url)
    service = IntakeProcess(
        settings,
        tmp_path / "intake.log",
        WIJKMATCH_INTAKE_MASTER_KEY=MASTER_KEY,
        WIJKMATCH_INTAKE_LOG_LEVEL="DEBUG",
    ).start()
    try:
        response = await _post(base_url, via_http)
        assert response.status_code == 202, response.text
        await wait_until(
            lambda: _logged(engine, region, 5), timeout_s=90, what="the five valid case events applied"
        )
        erase = _erase(settings, region, "C0", tmp_path / "erase.log")
        assert erase.returncode == 0, (tmp_path / "erase.log").read_text()[-2000:]
        await wait_until(
            lambda: _pool_removed(kafka_bootstrap, region, "C0"), what="pool.case.removed for C0"
        )
        await wait_until(
            lambda: _rejections(kafka_bootstrap, region, 2), what="both rejections on the rejected topic"
        )
        vault = {
            r.case_id: r
            for r in await rows(
                engine,
                "SELECT case_id, wrapped_key, ciphertext FROM intake.personal_vault WHERE region = :r",
                r=region,
            )
        }
        topics = {
            name: await read_topic(kafka_bootstrap, name, settle_s=0.5)
            for name in await _all_topics(kafka_bootstrap)
            if name != CASES  # the external topic the senders themselves put personal data on
        }
        sent = b"\n".join(r.value or b"" for r in await read_topic(kafka_bootstrap, CASES, key=region))
        tables = await _all_table_text(engine)
    finally:
        service.stop()
        await engine.dispose()

    # The vault holds what it should: C1's latest personal data (kept through the update without it), C2 from
    # the gateway, and C0's ciphertext that no key opens any more.
    # The vault rows hold no key (the key store does).
    assert all(v.wrapped_key is None for v in vault.values())
    assert await _open_vault(settings, region, "C1", vault["C1"].ciphertext) == people["C3"]
    assert await _open_vault(settings, region, "C2", vault["C2"].ciphertext) == people["C2"]
    with pytest.raises(VaultError):
        await _open_vault(settings, region, "C0", vault["C0"].ciphertext)

    needles = [n for person in people.values() for n in _needles(person)]
    # Positive control: the scan finds the values where the senders did put them.
    assert all(any(n in sent for n in _needles(person)) for person in people.values())
    assert topics, "no topics scanned"
    for name, records in topics.items():
        for record in records:
            blob = b"\n".join([record.value or b"", record.key or b"", *(v for _, v in record.headers)])
            leaked = [n for n in needles if n in blob]
            assert not leaked, f"personal data on topic {name}: {leaked[:2]}"
    assert any(name.startswith('"intake"') for name in tables)
    for name, dump in tables.items():
        leaked = [n for n in needles if n.decode() in dump]
        assert not leaked, f"personal data in table {name}: {leaked[:2]}"
    logs = {p.name: p.read_bytes() for p in (tmp_path / "intake.log", gateway_log, tmp_path / "erase.log")}
    assert all(logs.values()), "a process wrote no log at all"
    for name, content in logs.items():
        for line in content.splitlines():
            leaked = [n for n in needles if n in line]
            assert not leaked, f"personal data in {name}: {line[:300]!r}"
    audit = [json.loads(line) for line in logs["erase.log"].splitlines() if b"case_erased" in line]
    assert [(a["region"], a["case_id"]) for a in audit] == [(region, "C0")]


async def test_erase_shreds_the_key_withdraws_the_case_and_ignores_later_events_about_it(
    settings: IntakeSettings, kafka_bootstrap: str, unique_suffix: str, tmp_path: Path
) -> None:
    region = f"erase-{unique_suffix}"
    person = _personal(7, unique_suffix)
    registered = samples.event(
        "case.registered", samples.case(region, "C-e", personal=person), time=samples.at(1)
    )
    await produce(kafka_bootstrap, [registered])
    engine = create_engine(settings.database_url)
    service = IntakeProcess(settings, tmp_path / "intake.log", WIJKMATCH_INTAKE_MASTER_KEY=MASTER_KEY).start()
    try:
        await wait_until(lambda: _logged(engine, region, 1), timeout_s=90, what="the registration")
        [before] = await rows(
            engine, "SELECT wrapped_key, ciphertext FROM intake.personal_vault WHERE region = :r", r=region
        )
        assert before.wrapped_key is None  # the key is in the key store, not in the row
        assert await _open_vault(settings, region, "C-e", before.ciphertext) == person

        assert _erase(settings, region, "C-e", tmp_path / "erase.log").returncode == 0
        [after] = await rows(
            engine,
            "SELECT wrapped_key, ciphertext, erased_at FROM intake.personal_vault WHERE region = :r",
            r=region,
        )
        assert after.wrapped_key is None and after.erased_at is not None
        with pytest.raises(VaultError):
            await _open_vault(settings, region, "C-e", after.ciphertext)

        # A later update (even newer, even with personal data) about the erased case changes nothing.
        again = samples.event(
            "case.updated", samples.case(region, "C-e", personal=person, priority=999), time=samples.at(9)
        )
        await produce(kafka_bootstrap, [again])
        await wait_until(lambda: _logged(engine, region, 3), timeout_s=60, what="the later update recorded")
        outcomes = await rows(
            engine, "SELECT outcome FROM intake.event_log WHERE region = :r ORDER BY seq", r=region
        )
        assert [o.outcome for o in outcomes] == ["applied", "erased", "ignored_erased"]
        [still] = await rows(
            engine, "SELECT wrapped_key FROM intake.personal_vault WHERE region = :r", r=region
        )
        assert still.wrapped_key is None
        await asyncio.sleep(1.0)
        pool = await read_events(kafka_bootstrap, POOL, region)
    finally:
        service.stop()
        await engine.dispose()
    assert [e["type"].removeprefix("nl.wijkmatch.pool.") for e in pool] == ["case.upserted", "case.removed"]
    assert pool[1]["data"] == {"region": region, "key": "C-e"}


async def _logged(engine: Any, region: str, n: int) -> bool:
    return await count(engine, "SELECT count(*) FROM intake.event_log WHERE region = :r", r=region) >= n


async def _rejections(bootstrap: str, region: str, n: int) -> bool:
    return len(await read_events(bootstrap, INTAKE_REJECTED, region, settle_s=0.3)) >= n


async def _pool_removed(bootstrap: str, region: str, case_id: str) -> bool:
    events = await read_events(bootstrap, POOL, region, settle_s=0.3)
    return any(e["type"] == "nl.wijkmatch.pool.case.removed" and e["subject"] == case_id for e in events)
