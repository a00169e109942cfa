"""`wijkmatch intake [run] | gateway | relay | erase CASE_ID [--region R]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from services.intake.settings import IntakeSettings

log = logging.getLogger("wijkmatch.intake")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wijkmatch intake", description="the wijkmatch intake service")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="consume the external topics, apply, relay pool events (default)")
    run.add_argument("--host", default=None, help="HTTP host for /healthz /readyz /metrics")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default WIJKMATCH_INTAKE_HTTP_PORT)")
    gateway = sub.add_parser("gateway", help="HTTP gateway: POST /v1/events -> Kafka")
    gateway.add_argument("--host", default=None)
    gateway.add_argument("--port", type=int, default=None)
    sub.add_parser("relay", help="only publish the outbox (pool events, rejections) until stopped")
    erase = sub.add_parser("erase", help="crypto-shred a case's personal data and withdraw it downstream")
    erase.add_argument("case_id")
    erase.add_argument(
        "--region",
        default=None,
        help="the case's region (needed only when the id is known in several regions)",
    )
    erase.add_argument(
        "--tombstone-unknown",
        action="store_true",
        help="erase even if intake has not seen the case in --region yet (tombstones it, so its events "
        "still on the topics are ignored); without it an unknown case or region exits 2 and changes nothing",
    )
    sub.add_parser(
        "rotate-master-key",
        help="re-wrap every personal-data key under WIJKMATCH_INTAKE_MASTER_KEY (keys wrapped by one of "
        "WIJKMATCH_INTAKE_PREVIOUS_MASTER_KEYS); safe while intake runs; see docs/operations.md",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    settings = IntakeSettings()
    command = args.command or "run"
    if command == "run":
        return _run(settings, getattr(args, "host", None), getattr(args, "port", None))
    if command == "gateway":
        return _gateway(settings, args.host, args.port)
    if command == "relay":
        return asyncio.run(_relay(settings))
    if command == "rotate-master-key":
        return asyncio.run(_rotate_master_key(settings))
    if command == "erase":
        return asyncio.run(_erase(settings, args.region, args.case_id, args.tombstone_unknown))
    return 2


def _run(settings: IntakeSettings, host: str | None, port: int | None) -> int:
    import uvicorn

    from services.intake.app import create_app

    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.http_host,
        port=port or settings.http_port,
        log_config=None,
        timeout_graceful_shutdown=90,
    )
    return 0


def _gateway(settings: IntakeSettings, host: str | None, port: int | None) -> int:
    import uvicorn

    from services.intake.entrypoints.gateway import create_gateway
    from services.platform.observability import configure_logging, serve_metrics

    configure_logging("wijkmatch-intake-gateway", settings.log_level)
    # Metrics on the internal port only; the public port has /v1/events, /healthz, /readyz and the docs.
    metrics_server = serve_metrics(settings.gateway_metrics_host, settings.gateway_metrics_port)
    log.info(
        "gateway metrics served",
        extra={"host": settings.gateway_metrics_host, "port": settings.gateway_metrics_port},
    )
    try:
        uvicorn.run(
            create_gateway(settings),
            host=host or settings.gateway_host,
            port=port or settings.gateway_port,
            log_config=None,
        )
    finally:
        metrics_server.shutdown()
        metrics_server.server_close()
    return 0


async def _relay(settings: IntakeSettings) -> int:
    from services.intake.bootstrap import build_runtime
    from services.platform.observability import configure_logging, stop_on_signals

    configure_logging("wijkmatch-intake-relay", settings.log_level)
    runtime = build_runtime(settings)
    stop = stop_on_signals()
    await runtime.start(migrate=settings.migrate_on_start)
    try:
        await stop.wait()
    finally:
        await runtime.stop()
    return 0


async def _rotate_master_key(settings: IntakeSettings) -> int:
    from services.intake.adapters.keystore import UnknownMasterKey, master_key_id
    from services.platform.observability import configure_logging

    configure_logging("wijkmatch-intake-rotate", settings.log_level)
    keys = settings.build_keystore()
    try:
        await keys.start()
        try:
            rewrapped = await keys.rewrap()
        except UnknownMasterKey as exc:
            print(f"NOT finished: {exc}", file=sys.stderr)
            return 2
        remaining = await keys.keys_by_master_key()
    finally:
        await keys.close()
    current = master_key_id(settings.master_key_bytes)
    others = sum(n for key_id, n in remaining.items() if key_id != current)
    print(
        f"re-wrapped {rewrapped} data keys under master key {current}; "
        f"{remaining.get(current, 0)} wrapped by it, {others} by any other key"
    )
    if others:
        return 2
    print("the previous master keys are no longer needed: remove WIJKMATCH_INTAKE_PREVIOUS_MASTER_KEYS")
    return 0


async def _erase(
    settings: IntakeSettings, region: str | None, case_id: str, tombstone_unknown: bool = False
) -> int:
    from services.intake.service.erase import UnknownCase, erase_case, regions_of_case
    from services.platform.db import create_engine, session_maker
    from services.platform.observability import configure_logging
    from services.platform.outbox import OutboxRelay

    configure_logging("wijkmatch-intake-erase", settings.log_level)
    engine = create_engine(settings.database_url)
    keys = settings.build_keystore()
    try:
        await keys.start()
        if region is None:
            regions = await regions_of_case(session_maker(engine), case_id)
            if len(regions) != 1:
                known = f"known in regions {', '.join(regions)}" if regions else "not known to intake"
                print(
                    f"case {case_id} is {known}; give --region R (add --tombstone-unknown to tombstone a "
                    "case intake has not seen yet, so its events still on the topics are ignored)",
                    file=sys.stderr,
                )
                return 2
            region = regions[0]
        try:
            result = await erase_case(
                session_maker(engine), region, case_id, keys=keys, must_exist=not tombstone_unknown
            )
        except UnknownCase as unknown:
            print(
                f"NOT erased: {unknown}. Check the case id and --region; nothing was changed. "
                "(--tombstone-unknown erases a case intake has not seen yet.)",
                file=sys.stderr,
            )
            return 2
        # Publish the withdrawal now rather than waiting for the service's relay.
        relay = OutboxRelay(engine, "intake", settings.kafka_bootstrap_servers, listen=False)
        try:
            await relay.publish_pending()
        finally:
            await relay.stop()
    finally:
        await keys.close()
        await engine.dispose()
    state = "known" if result.case_was_known else "unknown (tombstoned: later events are ignored)"
    key = "destroyed" if result.key_destroyed else "none stored"
    print(f"erased case {case_id} in {region}: case {state}; personal-data key {key}; pool.case.removed sent")
    return 0
