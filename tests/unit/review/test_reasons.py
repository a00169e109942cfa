"""Reason codes: a fixed list; notes are length-limited and refused when they look like personal data."""

from __future__ import annotations

import pytest

from services.review.core.reasons import BY_CODE, MAX_NOTE_LENGTH, REASON_CODES, ReasonError, check_reason


def test_the_list_has_household_and_provider_side_codes_and_unique_names() -> None:
    sides = {r.side for r in REASON_CODES}
    assert {"household", "provider"} <= sides
    assert len(BY_CODE) == len(REASON_CODES)


def test_unknown_code_is_refused() -> None:
    with pytest.raises(ReasonError, match="unknown reason code"):
        check_reason("because", None)


def test_a_code_that_needs_a_note_refuses_an_empty_one() -> None:
    with pytest.raises(ReasonError, match="needs a short note"):
        check_reason("other", "   ")


def test_a_code_without_note_needs_none_and_blank_becomes_none() -> None:
    assert check_reason("unit_not_available", "  ") == (BY_CODE["unit_not_available"], None)


def test_a_clean_note_is_kept_stripped() -> None:
    _, note = check_reason("unit_unsuitable", "  Stairs too steep for this household; lift broken.  ")
    assert note == "Stairs too steep for this household; lift broken."


def test_a_note_over_the_limit_is_refused() -> None:
    with pytest.raises(ReasonError, match=str(MAX_NOTE_LENGTH)):
        check_reason("other", "x" * (MAX_NOTE_LENGTH + 1))


@pytest.mark.parametrize(
    ("note", "finding"),
    [
        ("mail jan.jansen@example.org for details", "e-mail"),
        ("call 06-12345678 tomorrow", "phone"),
        ("call +31 20 123 4567", "phone"),
        ("bsn 123456782 checked", "BSN"),
        ("born 12-03-1980", "date"),
        ("born 1980-03-12", "date"),
        ("lives at 1234 AB 12", "postcode"),
    ],
)
def test_a_note_that_looks_like_personal_data_is_refused_without_echoing_it(note: str, finding: str) -> None:
    with pytest.raises(ReasonError) as info:
        check_reason("other", note)
    message = str(info.value)
    assert finding in message
    assert note not in message


def test_a_note_with_control_characters_is_refused() -> None:
    with pytest.raises(ReasonError, match="control"):
        check_reason("other", "bad\x00note")
