"""Webhook URL checks: https in production; no loopback, private, link-local or otherwise non-public
targets unless explicitly allowed for local use. Checked at registration and again at every connection a
delivery makes (`connect_addresses`), so a DNS name that later resolves to a private address is refused."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2000
# The error of a delivery attempt refused at connect time (names neither the host nor the address).
NON_PUBLIC_TARGET = "target resolves to a non-public address"


class EndpointUrlError(ValueError):
    """Why a URL may not be a webhook endpoint (safe to show the registering organisation)."""


def check_url_shape(url: str, *, allow_http: bool) -> str:
    """The URL's host name if its shape is acceptable; raises EndpointUrlError otherwise."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise EndpointUrlError(f"the URL must be 1-{MAX_URL_LENGTH} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise EndpointUrlError("the URL must not contain spaces or control characters")
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in allowed:
        raise EndpointUrlError("the URL must use https" if not allow_http else "the URL must be http(s)")
    if parts.username or parts.password:
        raise EndpointUrlError("the URL must not carry credentials")
    if parts.fragment:
        raise EndpointUrlError("the URL must not have a fragment")
    host = parts.hostname
    if not host:
        raise EndpointUrlError("the URL needs a host")
    try:
        _ = parts.port
    except ValueError:
        raise EndpointUrlError("the URL's port is invalid") from None
    return host


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_targets(host: str, addresses: Iterable[str], *, allow_private: bool) -> None:
    """Every address the host resolves to must be public, unless private targets are allowed."""
    resolved = list(addresses)
    if not resolved:
        raise EndpointUrlError("the URL's host does not resolve")
    if allow_private:
        return
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise EndpointUrlError("loopback targets are not allowed")
    if not all(is_public_address(a) for a in resolved):
        raise EndpointUrlError("the URL points at a loopback, private or otherwise non-public address")


def connect_addresses(host: str, addresses: Iterable[str], *, allow_private: bool) -> list[str]:
    """The addresses a delivery may connect to: the resolver's answer in its order, without repeats, when
    check_targets accepts all of them; raises EndpointUrlError otherwise (one private address among public
    ones refuses the host, as at registration)."""
    ordered = list(dict.fromkeys(addresses))
    check_targets(host, ordered, allow_private=allow_private)
    return ordered
