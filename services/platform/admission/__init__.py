"""Admission of external input, written once for every service that consumes it (intake's topics, offer
responses, and the HTTP answer endpoints): byte-level guards, models and registry rules, rejections.

    outcome    Accepted / Rejected / FieldError and the limits
    guards     size, UTF-8, nesting, strict JSON, JSON Pointers
    texts      pydantic errors as actionable messages
    registry   the organisation registry (who may send what, where, with which API keys)
    validation validate_message: one Kafka message in, Accepted or Rejected out
    rejection  the intake.rejected payload and CloudEvent
    rate_limit token buckets per organisation for HTTP endpoints
"""

from services.platform.admission.outcome import (
    MAX_DEPTH,
    MAX_MEMBERS,
    MAX_VALUE_BYTES,
    Accepted,
    FieldError,
    Rejected,
)
from services.platform.admission.registry import Organisation, Registry, RegistryError, load_registry
from services.platform.admission.rejection import (
    REJECTION_SOURCE,
    REJECTION_TYPE,
    build_rejection_event,
    rejection_event_id,
)
from services.platform.admission.validation import validate_message

__all__ = [
    "MAX_DEPTH",
    "MAX_MEMBERS",
    "MAX_VALUE_BYTES",
    "REJECTION_SOURCE",
    "REJECTION_TYPE",
    "Accepted",
    "FieldError",
    "Organisation",
    "Registry",
    "RegistryError",
    "Rejected",
    "build_rejection_event",
    "load_registry",
    "rejection_event_id",
    "validate_message",
]
