"""`wijkmatch review [run] | token --role R --region X` and `wijkmatch audit verify`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from services.review.settings import ReviewSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wijkmatch review", description="the wijkmatch review service")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser(
        "run", help="serve the API and web page, consume proposals, relay decisions (default)"
    )
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None, help="HTTP port (default WIJKMATCH_REVIEW_HTTP_PORT)")
    token = sub.add_parser("token", help="mint a token signed by the LOCAL DEVELOPMENT key (local mode only)")
    token.add_argument(
        "--role", action="append", required=True, choices=["reviewer", "approver", "auditor", "admin"]
    )
    token.add_argument("--region", action="append", required=True, help="region code, or * for all regions")
    token.add_argument("--subject", default=None, help="pseudonymous staff id (default dev-<role>)")
    token.add_argument("--hours", type=float, default=8.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    command = args.command or "run"
    if command == "token":
        return _token(args)
    settings = ReviewSettings()
    return _run(settings, getattr(args, "host", None), getattr(args, "port", None))


def _token(args: argparse.Namespace) -> int:
    from services.platform.auth import AuthSettings, mint_dev_token

    auth = AuthSettings()
    if auth.mode != "local":
        print(
            "wijkmatch review token: development tokens exist only with WIJKMATCH_AUTH_MODE=local",
            file=sys.stderr,
        )
        return 2
    subject = args.subject or f"dev-{'-'.join(args.role)}"
    print(mint_dev_token(subject, args.role, args.region, settings=auth, ttl_s=int(args.hours * 3600)))
    return 0


def _run(settings: ReviewSettings, host: str | None, port: int | None) -> int:
    import uvicorn

    from services.platform.observability import serve_metrics
    from services.review.app import create_app

    # /metrics on the internal health port only; the API port has /v1, the page, /healthz and /readyz.
    metrics_server = serve_metrics(settings.metrics_host, settings.metrics_port)
    try:
        uvicorn.run(
            create_app(settings),
            host=host or settings.http_host,
            port=port or settings.http_port,
            log_config=None,
            timeout_graceful_shutdown=30,
        )
    finally:
        metrics_server.shutdown()
        metrics_server.server_close()
    return 0


def audit_main(argv: list[str] | None = None) -> int:
    """`wijkmatch audit verify`: check the review audit chain; exit 1 and name each broken entry."""
    parser = argparse.ArgumentParser(prog="wijkmatch audit", description="the review service's audit log")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="verify the hash chain; names an edited, removed or reordered entry")
    parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    return asyncio.run(_verify(ReviewSettings()))


async def _verify(settings: ReviewSettings) -> int:
    from services.platform.db import create_engine, session_maker, transaction
    from services.review.adapters import repository
    from services.review.core.audit import missing_decisions, verify_chain

    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_maker(engine)) as session:
            entries = await repository.all_audit_entries(session)
            decided = await repository.decision_hashes(session)
    finally:
        await engine.dispose()
    problems = [p.message for p in verify_chain(entries)]
    problems += [
        f"the decision on proposal {pid} has no entry in the chain (removed)"
        for pid in missing_decisions(decided, {e["hash"] for e in entries})
    ]
    if problems:
        print(f"audit chain BROKEN ({len(entries)} entries):")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"audit chain intact: {len(entries)} entries")
    return 0
