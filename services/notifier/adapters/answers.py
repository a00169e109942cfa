"""The organisation registry and the validation of HTTP answers, both from services/platform/admission
(the same rules as the intake gateway and the matcher's consumer of wijkmatch.offer-responses.v1)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from schemas.topics import CARE_RESPONSES, OFFER_RESPONSES
from services.platform.admission import Accepted, Registry, load_registry, validate_message
from services.platform.admission.outcome import MAX_VALUE_BYTES
from services.platform.admission.registry import registry_path

ANSWER_TYPES = frozenset({"nl.wijkmatch.offer.accepted", "nl.wijkmatch.offer.declined"})
CARE_ANSWER_TYPES = frozenset({"nl.wijkmatch.care.answered"})


def load_organisations(path: str | None) -> tuple[Registry, Path]:
    resolved = registry_path(path)
    return load_registry(resolved), resolved


def answer_validator(
    registry: Registry, topic: str = OFFER_RESPONSES, types: frozenset[str] = ANSWER_TYPES
) -> Callable[[bytes], Any]:
    """body -> (envelope dict, typed data, sender organisation), or the 422 body {errors, event_id, sha}.
    `topic` / `types`: offer answers (default) or care answers (CARE_RESPONSES / CARE_ANSWER_TYPES)."""

    def validate(body: bytes) -> Any:
        sha = hashlib.sha256(body).hexdigest()
        if len(body) > MAX_VALUE_BYTES:
            return {"errors": [{"path": "", "message": "the body is larger than 1 MiB"}], "value_sha256": sha}
        # The Kafka key is data.region on the topic; over HTTP the notifier sets it, so pass what the
        # rule demands and let the rest of the checks judge the event.
        outcome = validate_message(
            topic=topic, partition=0, offset=0, key=_region_key(body), value=body, registry=registry
        )
        if not isinstance(outcome, Accepted):
            return {"errors": outcome.errors, "event_id": outcome.event_id, "value_sha256": sha}
        if outcome.type not in types:  # pragma: no cover - the topic admits only these
            return {"errors": [{"path": "/type", "message": "must be an answer"}], "value_sha256": sha}
        return outcome.event.model_dump(mode="json"), outcome.data, outcome.organisation

    return validate


def care_answer_validator(registry: Registry) -> Callable[[bytes], Any]:
    return answer_validator(registry, CARE_RESPONSES, CARE_ANSWER_TYPES)


def _region_key(body: bytes) -> bytes | None:
    import json

    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    data = document.get("data") if isinstance(document, dict) else None
    region = data.get("region") if isinstance(data, dict) else None
    return region.encode() if isinstance(region, str) else None
