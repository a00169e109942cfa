"""What admission decides about one message: Accepted (a typed event from a known sender) or Rejected
(EVENTS.md's intake.rejected payload, field by field), and the limits every external input is held to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.events import CloudEvent
from services.platform.admission.registry import Organisation

MAX_VALUE_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ERRORS = 50
# JSON values (array items, object members, containers) in one message. Far above any real event;
# bounds the work (and the errors pydantic builds) for a hostile 1 MiB value of 300,000 tiny items.
MAX_MEMBERS = 10_000
MAX_SEGMENT_CHARS = 64


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid event from a registered sender: envelope, typed `data`, region and sender."""

    event: CloudEvent
    data: BaseModel
    type: str  # full type name, e.g. nl.wijkmatch.case.registered
    region: str
    organisation: Organisation
    topic: str
    partition: int
    offset: int

    @property
    def event_id(self) -> str:
        return self.event.id

    @property
    def source(self) -> str:
        return self.event.source


@dataclass(frozen=True, slots=True)
class Rejected:
    """An invalid message; `data` is EVENTS.md's intake.rejected payload (JSON-ready).

    `claimed_type` / `claimed_source`: the message's `type` and `source` strings when it had them,
    unchecked (for metrics, mapped to known values by the caller); never part of the rejection.
    """

    data: dict[str, Any]
    claimed_type: str | None = None
    claimed_source: str | None = None

    @property
    def errors(self) -> list[dict[str, str]]:
        return self.data["errors"]

    @property
    def region(self) -> str | None:
        return self.data["region"]

    @property
    def event_id(self) -> str | None:
        return self.data["event_id"]
