"""The matcher as one ASGI app: `wijkmatch matcher` or `faststream run services.matcher.app:app`.

FastStream's AsgiFastStream runs the lifespan (start/stop of the service) and serves the HTTP API; its
broker carries the matcher's batch subscriber; the consumer, scheduler, solver processes and outbox relay
live in MatcherService.
"""

from __future__ import annotations

import logging
from typing import Any

from faststream.asgi import AsgiFastStream

from services.matcher.adapters.broker import matcher_broker
from services.matcher.settings import MatcherSettings

log = logging.getLogger(__name__)


class MatcherAsgi(AsgiFastStream):
    """AsgiFastStream matches exact paths only; everything else goes to the FastAPI API."""

    def __init__(self, settings: MatcherSettings | None = None, **kwargs: Any) -> None:
        self.settings = settings or MatcherSettings()
        super().__init__(matcher_broker(self.settings.kafka_bootstrap_servers), **kwargs)
        self.service: Any = None
        self.api: Any = None
        self.on_startup(self._start_service)
        self.on_shutdown(self._stop_service)

    async def _start_service(self) -> None:
        from services.matcher.bootstrap import MatcherService
        from services.matcher.entrypoints.http import create_api

        # The service's subscriber is registered on this app's broker, which starts after this hook.
        self.service = MatcherService(self.settings, broker=self.broker)  # type: ignore[arg-type]
        broker = self.broker
        self.service.broker_ping = lambda: broker.ping(timeout=2.0)
        self.api = create_api(self.service)
        await self.service.start()

    async def _stop_service(self) -> None:
        if self.service is not None:
            await self.service.stop()

    async def not_found(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.api is not None:
            await self.api(scope, receive, send)
            return
        await super().not_found(scope, receive, send)


def create_app(settings: MatcherSettings | None = None) -> MatcherAsgi:
    return MatcherAsgi(settings)


app = create_app()
