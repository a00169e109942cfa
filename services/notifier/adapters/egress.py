"""Outgoing webhook connections: the target check at every connection, pinned to the checked address.

A webhook URL is checked when it is registered (adapters/endpoints.py), but its DNS name may resolve to
another address later (DNS rebinding). So every TCP connection of a delivery resolves the host itself,
applies the same rule (core/urls.py `check_targets`) to the answer and connects to one of the checked
addresses: httpcore is handed the IP, never the name, so a second DNS answer cannot swap it. TLS still
uses the URL's host name (httpcore passes its origin host as `server_hostname` to `start_tls`), for SNI and
for certificate verification. A refused connection raises `NonPublicTargetError` before any byte is sent.

With `allow_private` (the local stack and the demo, which deliver to 127.0.0.1) nothing is refused; the
connection is still made to the resolved address.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable

import httpcore
import httpx

from services.notifier.core.urls import (
    NON_PUBLIC_TARGET,
    EndpointUrlError,
    connect_addresses,
    literal_address,
)

# httpx's defaults (httpx.AsyncClient without a transport)
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class NonPublicTargetError(httpx.ConnectError):
    """A delivery's target resolved to an address it may not reach (message safe to record and log).

    An httpx exception raised inside httpcore's pool is not an httpcore exception, so httpx passes it on
    unchanged: `client.post` raises this class, with this message."""

    def __init__(self) -> None:
        super().__init__(NON_PUBLIC_TARGET)


async def resolve(host: str, port: int | None = None) -> list[str]:
    """The host's addresses in the resolver's order, without repeats (a literal IP is its own answer);
    raises OSError (socket.gaierror) when the name does not resolve."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend for webhooks: resolve, check, then connect to a checked IP (asyncio)."""

    def __init__(self, *, allow_private: bool, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allow_private = allow_private
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        # One connect timeout for the lookup and every address tried (the lease assumes one timeout).
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                found = await resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout("resolving the target's host timed out") from None
        except OSError:
            raise httpcore.ConnectError("the target's host does not resolve") from None
        try:
            addresses = connect_addresses(host, found, allow_private=self.allow_private)
        except EndpointUrlError:
            raise NonPublicTargetError() from None
        failure: Exception | None = None
        for address in addresses:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                raise httpcore.ConnectTimeout("connecting to the target timed out")
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=left, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next checked address, as a resolver-driven client would
        assert failure is not None  # connect_addresses never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are delivered over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (no proxies from the environment), whose connections go through
    CheckedNetworkBackend.

    httpx 0.28 takes no network backend, so the pool httpx built (`_pool`, private) is replaced by one
    built the same way with `network_backend=`; handling requests, mapping httpcore's exceptions and
    closing stay httpx's. httpx and httpcore are pinned in constraints.txt (0.28.1, 1.0.9), and
    tests/unit/notifier/test_notifier_egress.py sends requests through this class: if a new httpx no
    longer uses `_pool`, those tests fail instead of the check being skipped silently."""

    def __init__(
        self,
        *,
        allow_private: bool,
        backend: httpcore.AsyncNetworkBackend | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
    ) -> None:
        super().__init__(trust_env=False, limits=limits)
        self.backend = backend if backend is not None else CheckedNetworkBackend(allow_private=allow_private)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=self.backend,
        )


def webhook_client(*, allow_private: bool) -> httpx.AsyncClient:
    """The delivery worker's client: checked and pinned connections, no redirects (a 3xx is the
    receiver's answer, not a new target), no proxies from the environment."""
    return httpx.AsyncClient(
        transport=CheckedTransport(allow_private=allow_private), follow_redirects=False, trust_env=False
    )
