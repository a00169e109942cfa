"""Pydantic validation errors as messages a person at the sending organisation can act on (never echoing
the input), with JSON Pointers into the CloudEvent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from schemas.events import PATTERN_MESSAGES
from services.platform.admission.guards import pointer
from services.platform.admission.outcome import MAX_ERRORS, FieldError


def error_message(err: Mapping[str, Any], envelope: bool) -> str:
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


def validation_errors(exc: ValidationError, prefix: tuple[Any, ...], envelope: bool) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_input=False, include_url=False, include_context=True):
        if len(out) >= MAX_ERRORS:
            break
        loc = tuple(p for p in err["loc"] if p != "[key]")
        if loc and loc[-1] in {"function-after", "function-before"}:  # pragma: no cover - defensive
            loc = loc[:-1]
        message = error_message(err, envelope and len(loc) == 1)
        if err["type"] == "literal_error" and err["loc"][-1:] == ("[key]",):
            message = (
                f"is not a known name; keys must be one of: {(err.get('ctx') or {}).get('expected', '')}"
            )
        out.append(FieldError(pointer(prefix + loc), message))
    return out
