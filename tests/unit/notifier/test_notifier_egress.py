"""Webhook connections are checked at connect time and pinned to the checked address (DNS rebinding):
the resolver is the event loop's getaddrinfo, replaced here; the network is a recording fake."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpcore
import httpx
import pytest

from services.notifier.adapters.egress import (
    CheckedNetworkBackend,
    CheckedTransport,
    NonPublicTargetError,
    webhook_client,
)
from services.notifier.core.urls import NON_PUBLIC_TARGET, EndpointUrlError, connect_addresses

HOST = "hooks.example.org"
PUBLIC = "93.184.216.34"


class Resolver:
    """loop.getaddrinfo answering HOST with the next queued answer (the last one repeats)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    async def __call__(self, host: Any, port: Any, **kwargs: Any) -> list[Any]:
        self.calls.append(host)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        infos = []
        for address in answer:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, port or 0, 0, 0) if family == socket.AF_INET6 else (address, port or 0)
            infos.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
        return infos


class RecordingStream(httpcore.AsyncMockStream):
    def __init__(self, buffer: list[bytes], tls_names: list[str | None]) -> None:
        super().__init__(buffer)
        self.tls_names = tls_names

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: Any = None
    ) -> Any:
        self.tls_names.append(server_hostname)
        return self


class RecordingNetwork(httpcore.AsyncNetworkBackend):
    """Records where connections go and answers every request with 204; refuses the addresses in `down`."""

    def __init__(self, down: frozenset[str] = frozenset()) -> None:
        self.connected: list[tuple[str, int]] = []
        self.tls_names: list[str | None] = []
        self.down = down

    async def connect_tcp(self, host: str, port: int, timeout: Any = None, **kwargs: Any) -> Any:
        self.connected.append((host, port))
        if host in self.down:
            raise httpcore.ConnectError("refused")
        return RecordingStream([b"HTTP/1.1 204 No Content\r\n\r\n"], self.tls_names)

    async def sleep(self, seconds: float) -> None:
        return None


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Any:
    def install(*answers: list[str]) -> Resolver:
        fake = Resolver(*answers)
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake)
        return fake

    return install


def client(network: RecordingNetwork, *, allow_private: bool) -> httpx.AsyncClient:
    backend = CheckedNetworkBackend(allow_private=allow_private, inner=network)
    transport = CheckedTransport(allow_private=allow_private, backend=backend)
    return httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)


async def test_a_host_resolving_to_a_private_address_is_refused_before_any_connection(resolver: Any) -> None:
    resolver(["10.0.0.7"])
    network = RecordingNetwork()
    async with client(network, allow_private=False) as http:
        with pytest.raises(NonPublicTargetError) as refused:
            await http.post(f"https://{HOST}/hooks", content=b"{}")
    assert str(refused.value) == NON_PUBLIC_TARGET  # names neither the host nor the address
    assert isinstance(refused.value, httpx.ConnectError)  # the worker's other connection failures
    assert network.connected == []


async def test_one_private_address_among_public_ones_refuses_the_host(resolver: Any) -> None:
    resolver([PUBLIC, "127.0.0.1"])
    network = RecordingNetwork()
    async with client(network, allow_private=False) as http:
        with pytest.raises(NonPublicTargetError):
            await http.post(f"https://{HOST}/hooks", content=b"{}")
    assert network.connected == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hooks", "http://[::1]:9/hooks", "http://169.254.169.254/"]
)
async def test_a_literal_private_ip_is_refused_without_a_lookup(resolver: Any, url: str) -> None:
    lookups = resolver([PUBLIC])
    network = RecordingNetwork()
    async with client(network, allow_private=False) as http:
        with pytest.raises(NonPublicTargetError):
            await http.post(url, content=b"{}")
    assert (network.connected, lookups.calls) == ([], [])


async def test_the_connection_goes_to_the_checked_address_and_tls_keeps_the_host_name(resolver: Any) -> None:
    # a second lookup would answer 127.0.0.1: the connection must use the first, checked answer
    lookups = resolver([PUBLIC], ["127.0.0.1"])
    network = RecordingNetwork()
    async with client(network, allow_private=False) as http:
        response = await http.post(f"https://{HOST}/hooks", content=b"{}")
    assert response.status_code == 204
    assert lookups.calls == [HOST]
    assert network.connected == [(PUBLIC, 443)]
    assert network.tls_names == [HOST]  # SNI and certificate verification use the URL's name


async def test_every_new_connection_checks_again_so_a_changed_answer_is_refused(resolver: Any) -> None:
    resolver([PUBLIC], ["127.0.0.1"])
    network = RecordingNetwork()
    async with client(network, allow_private=False) as http:
        assert (await http.post(f"https://{HOST}/hooks", content=b"{}")).status_code == 204
    async with client(network, allow_private=False) as http:
        with pytest.raises(NonPublicTargetError):
            await http.post(f"https://{HOST}/hooks", content=b"{}")
    assert network.connected == [(PUBLIC, 443)]


async def test_the_next_checked_address_is_tried_when_one_refuses(resolver: Any) -> None:
    resolver(["2606:2800:220:1:248:1893:25c8:1946", PUBLIC])
    network = RecordingNetwork(down=frozenset({"2606:2800:220:1:248:1893:25c8:1946"}))
    async with client(network, allow_private=False) as http:
        assert (await http.post(f"http://{HOST}/hooks", content=b"{}")).status_code == 204
    assert network.connected == [("2606:2800:220:1:248:1893:25c8:1946", 80), (PUBLIC, 80)]


async def test_with_allow_private_a_private_answer_is_connected_to(resolver: Any) -> None:
    lookups = resolver(["127.0.0.1"])
    network = RecordingNetwork()
    async with client(network, allow_private=True) as http:
        assert (await http.post(f"http://{HOST}:8080/hooks", content=b"{}")).status_code == 204
        assert (await http.post("http://10.1.2.3/hooks", content=b"{}")).status_code == 204
    assert network.connected == [("127.0.0.1", 8080), ("10.1.2.3", 80)]
    assert lookups.calls == [HOST]


async def test_a_name_that_does_not_resolve_is_an_ordinary_connect_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_answer(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_answer)
    network = RecordingNetwork()
    async with client(network, allow_private=False) as http:
        with pytest.raises(httpx.ConnectError) as failed:
            await http.post(f"https://{HOST}/hooks", content=b"{}")
    assert not isinstance(failed.value, NonPublicTargetError)
    assert network.connected == []


async def test_the_worker_client_uses_the_checked_transport_with_its_real_network(resolver: Any) -> None:
    """The client the delivery worker builds (real httpcore network backend, httpx's pool replaced):
    a name resolving to loopback is refused; so is localhost itself."""
    resolver(["127.0.0.1"])
    async with webhook_client(allow_private=False) as http:
        with pytest.raises(NonPublicTargetError):
            await http.post(f"http://{HOST}:9/hooks", content=b"{}")
        with pytest.raises(NonPublicTargetError):
            await http.post("http://localhost:9/hooks", content=b"{}")
    async with webhook_client(allow_private=True) as http:
        # allowed: the real backend connects to the checked 127.0.0.1 (nothing listens on port 9)
        with pytest.raises(httpx.ConnectError) as failed:
            await http.post(f"http://{HOST}:9/hooks", content=b"{}")
        assert not isinstance(failed.value, NonPublicTargetError)


def test_connect_addresses_keeps_the_resolver_order_without_repeats_and_applies_the_rule() -> None:
    assert connect_addresses(HOST, [PUBLIC, "1.1.1.1", PUBLIC], allow_private=False) == [PUBLIC, "1.1.1.1"]
    with pytest.raises(EndpointUrlError):
        connect_addresses(HOST, [PUBLIC, "192.168.1.1"], allow_private=False)
    assert connect_addresses(HOST, ["192.168.1.1"], allow_private=True) == ["192.168.1.1"]
    with pytest.raises(EndpointUrlError):
        connect_addresses(HOST, [], allow_private=True)
