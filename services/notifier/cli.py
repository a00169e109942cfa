"""`wijkmatch notifier [run] [--host H] [--port P]`."""

from __future__ import annotations

import argparse
import sys

from services.notifier.settings import NotifierSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wijkmatch notifier", description="the wijkmatch notifier service")
    parser.add_argument("command", nargs="?", default="run", choices=["run"])
    parser.add_argument("--host", default=None, help="HTTP host (default WIJKMATCH_NOTIFIER_HTTP_HOST)")
    parser.add_argument(
        "--port", type=int, default=None, help="HTTP port (default WIJKMATCH_NOTIFIER_HTTP_PORT)"
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    settings = NotifierSettings()

    import uvicorn

    from services.notifier.app import create_app
    from services.platform.observability import serve_metrics

    # /metrics on the internal health port only; the API port has the answers and admin API, /healthz
    # and /readyz.
    metrics_server = serve_metrics(settings.metrics_host, settings.metrics_port)
    try:
        uvicorn.run(
            create_app(settings),
            host=args.host or settings.http_host,
            port=args.port or settings.http_port,
            log_config=None,
            timeout_graceful_shutdown=30,
        )
    finally:
        metrics_server.shutdown()
        metrics_server.server_close()
    return 0
