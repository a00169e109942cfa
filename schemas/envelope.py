"""Builds outgoing CloudEvents 1.0 dicts (structured mode) with random or deterministic ids."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from schemas.topics import TYPE_PREFIX

# Fixed namespace: the same inputs give the same event id in every process, version and replay.
WIJKMATCH_NAMESPACE = uuid.UUID("6f1c5d2e-8b7a-5e0c-9a43-77a1d0c3b2e1")


def deterministic_id(*parts: object) -> str:
    """uuid5 over the parts (e.g. source event's source and id, entity key, action): stable across retries."""
    if not parts:
        raise ValueError("deterministic_id needs at least one part")
    # Length-prefixed so ("ab", "c") and ("a", "bc") never collide.
    name = "".join(f"{len(text)}:{text}" for text in (str(p) for p in parts))
    return str(uuid.uuid5(WIJKMATCH_NAMESPACE, name))


def rfc3339(moment: datetime | str) -> str:
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise ValueError("event time must carry a UTC offset")
    return moment.isoformat()


def make_event(
    *,
    type: str,
    source: str,
    subject: str,
    data: Mapping[str, Any],
    time: datetime | str | None = None,
    id: str | None = None,
    id_from: tuple[object, ...] | list[object] | None = None,
    dataschema: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A CloudEvent dict ready for `outbox.enqueue` or a producer.

    `type` may be given with or without the `nl.wijkmatch.` prefix. The id is `id` if given, else
    `deterministic_id(*id_from)` if given (so a redelivered input produces the same output id), else uuid4.
    `time` defaults to now (UTC).
    """
    if id is None:
        id = deterministic_id(*id_from) if id_from else str(uuid.uuid4())
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": type if type.startswith(TYPE_PREFIX) else TYPE_PREFIX + type,
        "subject": subject,
        "time": rfc3339(time if time is not None else datetime.now(UTC)),
        "datacontenttype": "application/json",
        "data": dict(data),
    }
    if dataschema is not None:
        event["dataschema"] = dataschema
    for name, value in (extensions or {}).items():
        if not name.isalnum() or not name.islower() or name in event:
            raise ValueError(f"invalid CloudEvents extension attribute name {name!r}")
        event[name] = value
    return event
