"""Intake's pure validation core: one Kafka message in, Accepted (typed event) or Rejected (reasons) out.

No I/O, no logging. A rejection names each fault by a JSON Pointer into the CloudEvent and a message a
person at the sending organisation can act on; it never echoes the input (only the SHA-256 of the
raw value, and the message key and event id EVENTS.md asks for). Whole-value faults (not UTF-8, not
JSON, too large, too deep, not an object, no value) have the pointer "" (RFC 6901: the whole document).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas.events import (
    DATA_MODELS,
    EXTERNAL_INPUT_TYPES,
    PATTERN_MESSAGES,
    REGION_PATTERN,
    SENDER_FIELD,
    SUBJECT_FIELDS,
    TOPIC_OF_TYPE,
    TYPE_PREFIX,
    CloudEvent,
    Personal,
    dataschema_for,
)
from services.intake.core.registry import Organisation, Registry

MAX_VALUE_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ERRORS = 50
# JSON values (array items, object members, containers) in one message. Far above any real event;
# bounds the work (and the errors pydantic builds) for a hostile 1 MiB value of 300,000 tiny items.
MAX_MEMBERS = 10_000
MAX_SEGMENT_CHARS = 64
REJECTION_SOURCE = "urn:wijkmatch:intake"
REJECTION_TYPE = TYPE_PREFIX + "intake.rejected"

_REGION = re.compile(REGION_PATTERN)
# A JSON string (unrolled-loop form: linear time) or a structural character, for _structure_exceeds.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[,\[\]{}]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Inside data.personal a field's name is repeated in a path only when it looks like a field name: a name
# such as "Jan Jansen" or "123456789" may itself be personal data.
_PERSONAL_PREFIX = "/data/personal/"
_PERSONAL_FIELDS = frozenset(Personal.model_fields)
_FIELD_LIKE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PERSONAL_UNKNOWN_FIELD = (
    "has a field that is not allowed (its name is not repeated: this block holds personal data); "
    f"allowed fields: {', '.join(sorted(_PERSONAL_FIELDS))}"
)


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


# ------------------------------------------------------------------------------------ JSON parsing


class _Marker:
    """Placed by the parser where a value is not acceptable JSON for us; located afterwards."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _DuplicateKeys(dict):
    """A JSON object that repeated a key (first value kept); `duplicates` lists the repeated keys."""

    __slots__ = ("duplicates",)


_NON_FINITE = _Marker("NaN and Infinity are not JSON numbers; send a finite number")
_FLOAT_OVERFLOW = _Marker("this number is too large")
_INT_TOO_LONG = _Marker("this integer has too many digits")


class _Parse:
    """Per-message parser state (flags let the clean path skip the tree walk)."""

    __slots__ = ("marked",)

    def __init__(self) -> None:
        self.marked = False

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) == len(pairs):
            return result
        self.marked = True
        seen: dict[str, Any] = {}
        duplicates: list[str] = []
        for k, v in pairs:
            if k in seen:
                if k not in duplicates:
                    duplicates.append(k)
            else:
                seen[k] = v
        marked = _DuplicateKeys(seen)
        marked.duplicates = duplicates
        return marked

    def constant(self, _name: str) -> Any:
        self.marked = True
        return _NON_FINITE

    def number(self, text: str) -> Any:
        value = float(text)
        if math.isinf(value):
            self.marked = True
            return _FLOAT_OVERFLOW
        return value

    def integer(self, text: str) -> Any:
        if len(text) > 40:
            self.marked = True
            return _INT_TOO_LONG
        return int(text)


def _structure_exceeds(text: str) -> str:
    """A whole-value limit the JSON text breaks ("" if none), found without parsing or recursion.

    Scans the tokens that matter outside strings (brackets for nesting; commas and opening brackets
    for the number of values). Small texts take the fast path; the scan stops at the first limit, so
    even a hostile 1 MiB value costs a bounded number of steps (a valid text within the limits has at
    most 4 tokens per value).
    """
    opens = text.count("{") + text.count("[")
    if opens <= MAX_DEPTH and opens + text.count(",") < MAX_MEMBERS:
        return ""
    too_many = f"the event has more than {MAX_MEMBERS} values (array items and object members)"
    depth = values = 0
    for tokens, match in enumerate(_TOKEN.finditer(text), start=1):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            values += 1
            if depth > MAX_DEPTH:
                return f"JSON nesting is deeper than {MAX_DEPTH} levels"
        elif char in "]}":
            depth -= 1
        elif char == ",":
            values += 1
        if values >= MAX_MEMBERS or tokens > 4 * MAX_MEMBERS + 1:
            return too_many
    return ""


def _segment(part: Any) -> str:
    """One escaped JSON Pointer segment, cut at MAX_SEGMENT_CHARS (+ "…") so paths stay short."""
    text = str(part)
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogate(text) else text
    text = text.replace("~", "~0").replace("/", "~1")
    if len(text) > MAX_SEGMENT_CHARS:
        text = text[:MAX_SEGMENT_CHARS]
        if text.endswith("~") and not text.endswith("~~"):  # never cut an escape in half
            text = text[:-1]
        text += "…"
    return text


def _pointer(parts: tuple[Any, ...] | list[Any]) -> str:
    return "".join("/" + _segment(p) for p in parts)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _locate_faults(root: Any, check_strings: bool) -> list[FieldError]:
    """Walk the parsed tree (iteratively; depth already bounded) for parser markers and bad strings."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    while stack and len(errors) < MAX_ERRORS:
        node, path = stack.pop()
        if isinstance(node, _Marker):
            errors.append(FieldError(_pointer(path), node.message))
        elif isinstance(node, dict):
            if isinstance(node, _DuplicateKeys):
                for key in node.duplicates:
                    errors.append(
                        FieldError(_pointer((*path, key)), "this key appears more than once in its object")
                    )
            children = []
            for key, value in node.items():
                if check_strings and _bad_string(key):
                    errors.append(FieldError(_pointer((*path, key)), _bad_string(key)))
                children.append((value, (*path, key)))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(value, (*path, i)) for i, value in enumerate(node)]))
        elif check_strings and isinstance(node, str):
            problem = _bad_string(node)
            if problem:
                errors.append(FieldError(_pointer(path), problem))
    return errors


def _without_personal_names(error: FieldError) -> FieldError:
    """A fault inside data.personal, pointed at without repeating a key that may be personal data."""
    if not error.path.startswith(_PERSONAL_PREFIX):
        return error
    field, _, deeper = error.path[len(_PERSONAL_PREFIX) :].partition("/")
    if field not in _PERSONAL_FIELDS and not _FIELD_LIKE.fullmatch(field):
        return FieldError("/data/personal", _PERSONAL_UNKNOWN_FIELD)
    if deeper:  # personal fields are strings: whatever is nested inside one is input, never a field name
        return FieldError(_PERSONAL_PREFIX + field, "must be a JSON string (no nested object or array)")
    return error


def _bad_string(text: str) -> str:
    if "\x00" in text:
        return "must not contain the NUL character (\\u0000)"
    if _has_surrogate(text):
        return "contains an unpaired UTF-16 surrogate escape; send valid Unicode text"
    return ""


# ----------------------------------------------------------------------------- pydantic error texts


def _message(err: dict[str, Any], envelope: bool) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        if envelope:
            return (
                "is not a CloudEvents attribute; extension attributes need a name of 1-20 lower-case "
                "letters or digits and a string, integer or boolean value"
            )
        return "is not a field of this object (unknown field)"
    if kind == "string_type":
        return "must be a JSON string"
    if kind == "int_type":
        return "must be a JSON integer (no quotes, no decimal point)"
    if kind == "bool_type":
        return "must be true or false"
    if kind == "float_type":
        return "must be a JSON number"
    if kind == "list_type":
        return "must be a JSON array"
    if kind in {"dict_type", "model_type", "model_attributes_type", "dataclass_type"}:
        return "must be a JSON object"
    if kind == "literal_error":
        return f"must be one of: {ctx.get('expected', '')}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}"
    if kind == "greater_than":
        return f"must be greater than {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must be at least {n} characters"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_pattern_mismatch":
        return PATTERN_MESSAGES.get(str(ctx.get("pattern")), "has an invalid format")
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} item(s)"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "none_required":
        return "must be null"
    message = str(err.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


def _validation_errors(exc: ValidationError, prefix: tuple[Any, ...], envelope: bool) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_input=False, include_url=False, include_context=True):
        if len(out) >= MAX_ERRORS:
            break
        loc = tuple(p for p in err["loc"] if p != "[key]")
        if loc and loc[-1] in {"function-after", "function-before"}:  # pragma: no cover - defensive
            loc = loc[:-1]
        message = _message(err, envelope and len(loc) == 1)
        if err["type"] == "literal_error" and err["loc"][-1:] == ("[key]",):
            message = (
                f"is not a known name; keys must be one of: {(err.get('ctx') or {}).get('expected', '')}"
            )
        out.append(FieldError(_pointer(prefix + loc), message))
    return out


# ------------------------------------------------------------------------------------- validation


def validate_message(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    registry: Registry,
) -> Accepted | Rejected:
    """Validate one consumed Kafka message of an external input topic against EVENTS.md and the registry.

    External input topics: intake's four (vacancies, cases, care-capacity, reference) and
    offer-responses (read by wijkmatch services other than intake; same rules, same rejections).
    """
    reject = _Rejector(topic, partition, offset, key, value)
    if value is None:
        return reject.whole("the message has no value (a tombstone); send a CloudEvent JSON object")
    if len(value) > MAX_VALUE_BYTES:
        return reject.whole(f"the message value is {len(value)} bytes; the limit is 1 MiB (1048576 bytes)")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return reject.whole(f"the message value is not valid UTF-8 (invalid byte at offset {exc.start})")
    if text.startswith("\ufeff"):
        return reject.whole("the message value starts with a byte order mark; send UTF-8 without BOM")
    too_big = _structure_exceeds(text)
    if too_big:
        return reject.whole(too_big)
    state = _Parse()
    try:
        document = json.loads(
            text,
            object_pairs_hook=state.pairs,
            parse_constant=state.constant,
            parse_float=state.number,
            parse_int=state.integer,
        )
    except json.JSONDecodeError as exc:
        return reject.whole(
            f"the message value is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        )
    except (ValueError, RecursionError):
        return reject.whole("the message value is not valid JSON")
    if not isinstance(document, dict):
        return reject.whole("the message value must be a JSON object (a CloudEvent in structured mode)")
    reject.document = document
    check_strings = "\\u0000" in text or _SURROGATE_ESCAPE.search(text) is not None
    if state.marked or check_strings:
        faults = _locate_faults(document, check_strings)
        if faults:
            return reject.with_errors(faults)
    return _validate_event(document, reject, registry, key)


def _validate_event(
    document: dict[str, Any], reject: _Rejector, registry: Registry, key: bytes | None
) -> Accepted | Rejected:
    """Schema, topic, registry, key and subject rules; one fault gives one error (no cascades)."""
    errors: list[FieldError] = []
    envelope: CloudEvent | None = None
    try:
        envelope = CloudEvent.model_validate(document)
    except ValidationError as exc:
        errors.extend(_validation_errors(exc, (), envelope=True))

    topic = reject.topic
    type_name = document.get("type")
    known_type = isinstance(type_name, str) and type_name in DATA_MODELS
    on_topic = known_type and type_name in EXTERNAL_INPUT_TYPES.get(topic, frozenset())
    if known_type and not on_topic:
        home = TOPIC_OF_TYPE.get(type_name)
        if home in EXTERNAL_INPUT_TYPES:
            message = f"this event type is not accepted on {topic}; send it to {home}"
        else:
            message = f"this event type is published by wijkmatch on {home}, it is not accepted as input"
        errors.append(FieldError("/type", message))

    # `data` is judged only against a type that belongs here; otherwise every field would be "wrong".
    raw_data = document.get("data")
    data_model: BaseModel | None = None
    if on_topic and isinstance(raw_data, dict):
        try:
            data_model = DATA_MODELS[type_name].model_validate(raw_data)
        except ValidationError as exc:
            errors.extend(_validation_errors(exc, ("data",), envelope=False))

    region = raw_data.get("region") if isinstance(raw_data, dict) else None
    region_ok = isinstance(region, str) and _REGION.fullmatch(region) is not None

    source = document.get("source")
    organisation: Organisation | None = None
    if isinstance(source, str) and not _has_error(errors, "/source"):
        organisation = registry.by_source(source)
        if organisation is None:
            errors.append(FieldError("/source", "unknown source: it is not registered for any organisation"))
        else:
            errors.extend(
                _sender_errors(organisation, type_name if on_topic else None, raw_data, region_ok, errors)
            )

    if region_ok:
        if key is None:
            errors.append(
                FieldError("/data/region", "the Kafka message key is missing; it must equal data.region")
            )
        elif key != region.encode("utf-8"):
            errors.append(
                FieldError(
                    "/data/region", "the Kafka message key differs from data.region; they must be equal"
                )
            )

    if envelope is not None and data_model is not None:
        errors.extend(_subject_errors(type_name, envelope.subject, data_model, errors))

    if errors:
        return reject.with_errors(errors)
    assert envelope is not None and data_model is not None and organisation is not None
    return Accepted(
        event=envelope,
        data=data_model,
        type=type_name,
        region=region,
        organisation=organisation,
        topic=topic,
        partition=reject.partition,
        offset=reject.offset,
    )


def _has_error(errors: list[FieldError], path: str) -> bool:
    return any(e.path == path or e.path.startswith(path + "/") for e in errors)


def _sender_errors(
    organisation: Organisation,
    type_name: str | None,
    raw_data: Any,
    region_ok: bool,
    errors: list[FieldError],
) -> list[FieldError]:
    """The registry's rules for a known sender: its types, its regions, its own id in the payload."""
    found: list[FieldError] = []
    if type_name is not None and not organisation.may_send_type(type_name):
        found.append(FieldError("/type", f"organisation {organisation.id} may not send this event type"))
        return found  # the payload's sender field is meaningless for a type it may not send
    if region_ok and not organisation.may_send_region(raw_data["region"]):
        found.append(
            FieldError("/data/region", f"organisation {organisation.id} may not send events for this region")
        )
    sender_field = SENDER_FIELD.get(type_name) if type_name is not None else None
    if sender_field and isinstance(raw_data, dict) and not _has_error(errors, f"/data/{sender_field}"):
        claimed = raw_data.get(sender_field)
        if isinstance(claimed, str) and claimed != organisation.id:
            found.append(
                FieldError(
                    f"/data/{sender_field}", f"must be the sending organisation's id ({organisation.id})"
                )
            )
    return found


def _subject_errors(
    type_name: str, subject: str, data_model: BaseModel, errors: list[FieldError]
) -> list[FieldError]:
    """EVENTS.md's subject of each type; skipped when a field it is made of is already in error."""
    fields = SUBJECT_FIELDS.get(type_name)
    if fields is None or any(_has_error(errors, f"/data/{f}") for f in fields):
        return []
    values = data_model.__dict__
    if subject == "/".join(str(values[f]) for f in fields):
        return []
    spelled = "/".join(f"data.{f}" for f in fields)
    joined = " joined by '/'" if len(fields) > 1 else ""
    return [FieldError("/subject", f"must equal {spelled}{joined}")]


class _Rejector:
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
        for e in map(_without_personal_names, errors):
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
            and not _has_surrogate(event_id)
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
    if time is None:
        time = datetime.now(UTC)
    if isinstance(time, datetime):
        time = time.isoformat().replace("+00:00", "Z")
    return {
        "specversion": "1.0",
        "id": id or rejection_event_id(rejected),
        "source": source,
        "type": REJECTION_TYPE,
        "subject": rejected.event_id or "unknown",
        "time": time,
        "datacontenttype": "application/json",
        "dataschema": dataschema_for(REJECTION_TYPE),
        "data": dict(rejected.data),
    }


__all__ = [
    "MAX_DEPTH",
    "MAX_VALUE_BYTES",
    "Accepted",
    "FieldError",
    "Rejected",
    "build_rejection_event",
    "rejection_event_id",
    "validate_message",
]
