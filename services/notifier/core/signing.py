"""Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256(secret, "id.timestamp.body")>`.

Secrets are `whsec_` + base64 of the key bytes. During a rotation's overlap window an endpoint has two
secrets and every delivery carries both signatures, space-separated, so the receiver may verify with
either while it switches over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


class SecretError(ValueError):
    """A webhook secret that is not `whsec_` + base64 of 24-64 bytes."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The key bytes of a `whsec_...` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise SecretError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("a webhook secret is 'whsec_' followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise SecretError("a webhook secret's key must be 24 to 64 bytes")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature over `msg_id.timestamp.body`."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass(frozen=True)
class SignedHeaders:
    webhook_id: str
    webhook_timestamp: str
    webhook_signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            "webhook-id": self.webhook_id,
            "webhook-timestamp": self.webhook_timestamp,
            "webhook-signature": self.webhook_signature,
        }


def sign_delivery(msg_id: str, body: bytes, at: datetime, active_secrets: Sequence[str]) -> SignedHeaders:
    """Headers of one attempt: the same id on every attempt, the attempt's own timestamp, one signature
    per active secret (the current one first)."""
    if not active_secrets:
        raise SecretError("an endpoint needs at least one secret")
    timestamp = int(at.timestamp())
    signatures = " ".join(signature(s, msg_id, timestamp, body) for s in active_secrets)
    return SignedHeaders(msg_id, str(timestamp), signatures)


def active_secrets(
    current: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The secrets to sign with now: the current one, plus the previous one during its overlap window."""
    if previous and previous_until is not None and now < previous_until:
        return [current, previous]
    return [current]
