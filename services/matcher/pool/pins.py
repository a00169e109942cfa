"""Does an approved match (a pin) survive an update of its case or unit? Pure: no I/O.

Staff approval is a human decision, so a `case.updated` or `vacancy.published` that changes a pinned
pair's case or unit keeps the pin unless the update itself makes the pair break one of DOMAIN.md's
hard rules 1–7 (rule 8, a forbidden pair, cannot be caused by an update). The check reuses the solver's
own rule function (`services.matcher.solver.eligibility.failed_rules`): a rule counts as broken by the
update when the pair fails it after the update and did not before, so a pin is never cancelled for
something the update did not touch (e.g. care capacity withdrawn earlier — rounds handle that pin).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas.problem import Case, Unit
from services.matcher.solver.eligibility import RULE_CODES, failed_rules

UPDATE_RULES = frozenset(range(1, 8))  # the hard rules an update of a case or unit can break


def care_slots(entries: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """Care-capacity snapshots ({area, care_type, slots}) as the solver's (area, care_type) -> slots."""
    return {(e["area"], e["care_type"]): int(e["slots"]) for e in entries}


def rules_broken_by_update(
    case_before: Mapping[str, Any],
    unit_before: Mapping[str, Any],
    case_after: Mapping[str, Any],
    unit_after: Mapping[str, Any],
    slots: Mapping[tuple[str, str], int],
) -> list[int]:
    """Hard rules (1–7, ascending) the pair breaks after the update but did not break before it."""
    before = _failed(case_before, unit_before, slots)
    return [rule for rule in _failed(case_after, unit_after, slots) if rule not in before]


Snapshot = Mapping[str, Any]


def _failed(case: Snapshot, unit: Snapshot, slots: Mapping[tuple[str, str], int]) -> list[int]:
    rules = failed_rules(Case.model_validate(case), Unit.model_validate(unit), slots, False)
    return [rule for rule in rules if rule in UPDATE_RULES]


def update_cancel_reason(entity: str, broken: list[int]) -> str:
    """The `match.cancelled` reason for a pin an update made ineligible: `<entity>_updated_ineligible_<rule>`,
    naming the lowest-numbered rule it broke (e.g. `case_updated_ineligible_household_size`)."""
    if entity not in ("case", "unit") or not broken:
        raise ValueError("a cancel reason needs the entity (case or unit) and at least one broken rule")
    return f"{entity}_updated_ineligible_{RULE_CODES[min(broken)]}"


def pin_cancel_reason(
    entity: str,
    case_before: Mapping[str, Any],
    unit_before: Mapping[str, Any],
    case_after: Mapping[str, Any],
    unit_after: Mapping[str, Any],
    slots: Mapping[tuple[str, str], int],
) -> str | None:
    """None when the approved pair stays pinned through this update of its `entity`; else the reason."""
    broken = rules_broken_by_update(case_before, unit_before, case_after, unit_after, slots)
    return update_cancel_reason(entity, broken) if broken else None
