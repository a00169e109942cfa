"""Rejections: EVENTS.md's intake.rejected payload for one message (region, key and event id only when
they are safe to repeat, the value's SHA-256, never the value) and its CloudEvent with a stable id."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime
from typing import Any

from schemas.envelope import make_event
from schemas.events import REGION_PATTERN, TYPE_PREFIX
from services.platform.admission.guards import has_surrogate, without_personal_names
from services.platform.admission.outcome import MAX_ERRORS, FieldError, Rejected

REJECTION_SOURCE = "urn:wijkmatch:intake"
REJECTION_TYPE = TYPE_PREFIX + "intake.rejected"

_REGION = re.compile(REGION_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Rejector:
    __slots__ = ("document", "key", "offset", "partition", "topic", "value")

    def __init__(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.document: dict[str, Any] | None = None

    def whole(self, message: str) -> Rejected:
        return self.with_errors([FieldError("", message)])

    def with_errors(self, errors: list[FieldError]) -> Rejected:
        unique: list[dict[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for e in map(without_personal_names, errors):
            if (e.path, e.message) not in seen:
                seen.add((e.path, e.message))
                unique.append(e.as_dict())
            if len(unique) >= MAX_ERRORS:
                break
        return Rejected(
            data={
                "region": self._region(),
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "key": self._key_text(),
                "event_id": self._event_id(),
                "value_sha256": hashlib.sha256(self.value or b"").hexdigest(),
                "errors": unique,
            },
            claimed_type=self._claimed("type"),
            claimed_source=self._claimed("source"),
        )

    def _claimed(self, attribute: str) -> str | None:
        value = self.document.get(attribute) if self.document is not None else None
        return value if isinstance(value, str) else None

    def _key_text(self) -> str | None:
        if self.key is None:
            return None
        try:
            text = self.key.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if len(text) > 256 or _CONTROL.search(text):
            return None
        return text

    def _region(self) -> str | None:
        data = self.document.get("data") if self.document is not None else None
        region = data.get("region") if isinstance(data, dict) else None
        if isinstance(region, str) and _REGION.fullmatch(region):
            return region
        return None

    def _event_id(self) -> str | None:
        event_id = self.document.get("id") if self.document is not None else None
        if (
            isinstance(event_id, str)
            and 0 < len(event_id) <= 256
            and not _CONTROL.search(event_id)
            and not has_surrogate(event_id)
        ):
            return event_id
        return None


def rejection_event_id(rejected: Rejected) -> str:
    """Deterministic: re-validating the same message (after a restart) gives the same rejection id."""
    d = rejected.data
    return str(
        uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"wijkmatch-rejection:{d['topic']}:{d['partition']}:{d['offset']}:{d['value_sha256']}",
        )
    )


def build_rejection_event(
    rejected: Rejected,
    *,
    id: str | None = None,
    time: datetime | str | None = None,
    source: str = REJECTION_SOURCE,
) -> dict[str, Any]:
    """The nl.wijkmatch.intake.rejected CloudEvent dict for wijkmatch.intake-rejected.v1."""
    return make_event(
        type=REJECTION_TYPE,
        source=source,
        subject=rejected.event_id or "unknown",
        data=rejected.data,
        id=id or rejection_event_id(rejected),
        time=time,
    )
