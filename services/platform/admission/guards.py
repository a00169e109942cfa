"""Byte-level guards of admission: size, UTF-8, nesting and member limits, strict JSON (no duplicate keys,
no NaN, no NUL or lone surrogates), and JSON Pointers to each fault. Bounded work for hostile input."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from schemas.events import Personal
from services.platform.admission.outcome import (
    MAX_DEPTH,
    MAX_ERRORS,
    MAX_MEMBERS,
    MAX_SEGMENT_CHARS,
    MAX_VALUE_BYTES,
    FieldError,
)

# A JSON string (unrolled-loop form: linear time) or a structural character, for structure_exceeds.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[,\[\]{}]')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# Inside data.personal a field's name is repeated in a path only when it looks like a field name: a name
# such as "Jan Jansen" or "123456789" may itself be personal data.
_PERSONAL_PREFIX = "/data/personal/"
_PERSONAL_FIELDS = frozenset(Personal.model_fields)
_FIELD_LIKE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PERSONAL_UNKNOWN_FIELD = (
    "has a field that is not allowed (its name is not repeated: this block holds personal data); "
    f"allowed fields: {', '.join(sorted(_PERSONAL_FIELDS))}"
)


class _Marker:
    """Placed by the parser where a value is not acceptable JSON for us; located afterwards."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _DuplicateKeys(dict[str, Any]):
    """A JSON object that repeated a key (first value kept); `duplicates` lists the repeated keys."""

    __slots__ = ("duplicates",)
    duplicates: list[str]


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


def structure_exceeds(text: str) -> str:
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
    text = text.encode("utf-8", "replace").decode("utf-8") if has_surrogate(text) else text
    text = text.replace("~", "~0").replace("/", "~1")
    if len(text) > MAX_SEGMENT_CHARS:
        text = text[:MAX_SEGMENT_CHARS]
        if text.endswith("~") and not text.endswith("~~"):  # never cut an escape in half
            text = text[:-1]
        text += "…"
    return text


def pointer(parts: tuple[Any, ...] | list[Any]) -> str:
    return "".join("/" + _segment(p) for p in parts)


def has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def locate_faults(root: Any, check_strings: bool) -> list[FieldError]:
    """Walk the parsed tree (iteratively; depth already bounded) for parser markers and bad strings."""
    errors: list[FieldError] = []
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    while stack and len(errors) < MAX_ERRORS:
        node, path = stack.pop()
        if isinstance(node, _Marker):
            errors.append(FieldError(pointer(path), node.message))
        elif isinstance(node, dict):
            if isinstance(node, _DuplicateKeys):
                for key in node.duplicates:
                    errors.append(
                        FieldError(pointer((*path, key)), "this key appears more than once in its object")
                    )
            children = []
            for key, value in node.items():
                if check_strings and _bad_string(key):
                    errors.append(FieldError(pointer((*path, key)), _bad_string(key)))
                children.append((value, (*path, key)))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(value, (*path, i)) for i, value in enumerate(node)]))
        elif check_strings and isinstance(node, str):
            problem = _bad_string(node)
            if problem:
                errors.append(FieldError(pointer(path), problem))
    return errors


def without_personal_names(error: FieldError) -> FieldError:
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
    if has_surrogate(text):
        return "contains an unpaired UTF-16 surrogate escape; send valid Unicode text"
    return ""


def parse_document(value: bytes | None) -> tuple[dict[str, Any] | None, list[FieldError]]:
    """The byte-level guards: (the JSON object, []) for an acceptable value; (the object, faults) when
    parsing marked something inside it; (None, [one whole-value fault]) when it is no JSON object at all.

    Every step is bounded for a hostile value: size first, then UTF-8, then a token scan for nesting and
    member counts, then a parse whose hooks mark (never raise on) duplicate keys, NaN and huge numbers.
    """
    if value is None:
        return None, [FieldError("", "the message has no value (a tombstone); send a CloudEvent JSON object")]
    if len(value) > MAX_VALUE_BYTES:
        return None, [
            FieldError("", f"the message value is {len(value)} bytes; the limit is 1 MiB (1048576 bytes)")
        ]
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [
            FieldError("", f"the message value is not valid UTF-8 (invalid byte at offset {exc.start})")
        ]
    if text.startswith("\ufeff"):
        return None, [
            FieldError("", "the message value starts with a byte order mark; send UTF-8 without BOM")
        ]
    too_big = structure_exceeds(text)
    if too_big:
        return None, [FieldError("", too_big)]
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
        return None, [
            FieldError(
                "", f"the message value is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            )
        ]
    except (ValueError, RecursionError):
        return None, [FieldError("", "the message value is not valid JSON")]
    if not isinstance(document, dict):
        return None, [
            FieldError("", "the message value must be a JSON object (a CloudEvent in structured mode)")
        ]
    check_strings = "\\u0000" in text or _SURROGATE_ESCAPE.search(text) is not None
    if state.marked or check_strings:
        return document, locate_faults(document, check_strings)
    return document, []
