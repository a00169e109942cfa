"""The fixed list of rejection reason codes, and the rules for the free-text note some of them need.

The list is documented in docs/review.md; a code outside it is refused. A note is short, plain text and
must not carry personal data: the review service never holds names, contact details or citizen numbers,
so a note that looks like an e-mail address, a phone number, a BSN-like number or a date is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Side = Literal["household", "provider", "process"]
MAX_NOTE_LENGTH = 500


@dataclass(frozen=True)
class ReasonCode:
    code: str
    side: Side
    label: str
    needs_note: bool


REASON_CODES: tuple[ReasonCode, ...] = (
    ReasonCode("household_already_housed", "household", "The household has found a home already", False),
    ReasonCode("household_needs_changed", "household", "The household's needs have changed", True),
    ReasonCode("household_unreachable", "household", "The referrer cannot reach the household", False),
    ReasonCode("household_safety_concern", "household", "A safety concern rules this home out", True),
    ReasonCode("unit_not_available", "provider", "The home is not available (repair, let elsewhere)", False),
    ReasonCode("unit_unsuitable", "provider", "The home does not suit this household", True),
    ReasonCode("care_cannot_start", "provider", "The care provider cannot start care here", False),
    ReasonCode("neighbourhood_mix_concern", "provider", "A concern about the neighbourhood mix", True),
    ReasonCode("data_error", "process", "The proposal rests on wrong or outdated data", True),
    ReasonCode("other", "process", "Another reason (explained in the note)", True),
)
BY_CODE: dict[str, ReasonCode] = {r.code: r for r in REASON_CODES}

# Patterns of personal data a note must not carry (checked on the note as typed, and with spaces,
# dots and dashes removed for the number patterns).
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_LONG_DIGITS = re.compile(r"\d{8,}")  # BSN (9 digits), phone numbers (10+), IBAN digits, ...
_PHONE = re.compile(r"(?:\+|00)\d{2}\d{6,}|06\d{8}|0\d{9}")
_DATE = re.compile(r"\b\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})\b|\b(?:19|20)\d{2}-\d{2}-\d{2}\b")
_POSTCODE_HOUSE = re.compile(r"\b\d{4}\s?[A-Za-z]{2}\s+\d+", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class ReasonError(ValueError):
    """A reason or note the rules refuse; the message names the rule, never repeats the input."""


def personal_data_findings(note: str) -> list[str]:
    """What in `note` looks like personal data (rule names only, never the matched text)."""
    found: list[str] = []
    if _EMAIL.search(note):
        found.append("an e-mail address")
    squashed = re.sub(r"[\s.\-()/]", "", note)
    if _PHONE.search(squashed):
        found.append("a phone number")
    if _LONG_DIGITS.search(squashed) and "a phone number" not in found:
        found.append("a citizen service number (BSN) or other long number")
    if _DATE.search(note):
        found.append("a date (birth dates are personal data)")
    if _POSTCODE_HOUSE.search(note):
        found.append("a postcode with house number")
    return found


def check_reason(code: str, note: str | None) -> tuple[ReasonCode, str | None]:
    """The reason and the cleaned note (stripped; None when empty), or ReasonError."""
    reason = BY_CODE.get(code)
    if reason is None:
        raise ReasonError("unknown reason code; use one of the documented codes (GET /v1/reason-codes)")
    cleaned = (note or "").strip() or None
    if cleaned is None:
        if reason.needs_note:
            raise ReasonError(f"reason {code} needs a short note explaining it")
        return reason, None
    if len(cleaned) > MAX_NOTE_LENGTH:
        raise ReasonError(f"the note is longer than {MAX_NOTE_LENGTH} characters")
    if _CONTROL.search(cleaned):
        raise ReasonError("the note contains control characters")
    findings = personal_data_findings(cleaned)
    if findings:
        raise ReasonError(
            "the note must not contain personal data; it looks like it holds " + ", ".join(findings)
        )
    return reason, cleaned
