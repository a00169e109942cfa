"""The CloudEvents 1.0 envelope of every wijkmatch event: the one builder, type names, dataschema, ids."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from schemas.topics import TYPE_PREFIX

# `dataschema` convention: every event's dataschema is exactly DATASCHEMA_BASE + "<full type>.json",
# the `$id` of its generated schema in schemas/json/.
DATASCHEMA_BASE = "https://wijkmatch.example/schemas/json/"

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
    """RFC 3339 text of an aware datetime (UTC written as `Z`); text passes through unchanged."""
    if isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        raise ValueError("event time must carry a UTC offset")
    return moment.isoformat().replace("+00:00", "Z")


def now_rfc3339() -> str:
    return rfc3339(datetime.now(UTC))


def full_type(type_name: str) -> str:
    """`vacancy.published` -> `nl.wijkmatch.vacancy.published` (full names pass through)."""
    return type_name if type_name.startswith(TYPE_PREFIX) else TYPE_PREFIX + type_name


def dataschema_for(type_name: str) -> str:
    """The one accepted `dataschema` value of a type (see DATASCHEMA_BASE)."""
    return f"{DATASCHEMA_BASE}{full_type(type_name)}.json"


def make_event(
    *,
    type: str,
    source: str,
    subject: str,
    data: Mapping[str, Any],
    time: datetime | str | None = None,
    id: str | None = None,
    id_from: tuple[object, ...] | list[object] | None = None,
    dataschema: bool | str = True,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one CloudEvents 1.0 (structured mode) builder every producer uses: a dict ready for
    `outbox.enqueue` or a producer.

    `type` may be given with or without the `nl.wijkmatch.` prefix. The id is `id` if given, else
    `deterministic_id(*id_from)` if given (so a redelivered input produces the same output id), else uuid4.
    `time` defaults to now (UTC). `dataschema`: True names the type's schema in schemas/json/, False
    leaves it out, a string is used as it is.
    """
    if id is None:
        id = deterministic_id(*id_from) if id_from else str(uuid.uuid4())
    full = full_type(type)
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": id,
        "source": source,
        "type": full,
        "subject": subject,
        "time": rfc3339(time if time is not None else datetime.now(UTC)),
        "datacontenttype": "application/json",
    }
    if dataschema is True:
        event["dataschema"] = dataschema_for(full)
    elif isinstance(dataschema, str):
        event["dataschema"] = dataschema
    event["data"] = dict(data)
    for name, value in (extensions or {}).items():
        if not name.isalnum() or not name.islower() or name in event:
            raise ValueError(f"invalid CloudEvents extension attribute name {name!r}")
        event[name] = value
    return event
