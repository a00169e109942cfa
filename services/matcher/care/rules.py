"""Care arranged with the home (issue 16): who gets a care need's slot, and what capacity a round may use.
Pure: no I/O. docs/matcher.md, *Care claims*.

- A provider's `slots` (care.capacity.set) is the total it offers wijkmatch for new clients in that area and
  care type, its claimed slots included; free = max(0, slots - active claims). Active claims: `requested`
  and `confirmed`. A report below the active claims keeps every claim (free is 0; `over_claimed` says by
  how many).
- Choice per care need: among the provider entries for that care type at the home's neighbourhood or
  municipality with free > 0 and no refusal of this (case, provider, care type) since the provider's last
  report — continuity first (the provider named on the case, then the referrer, when it is among them),
  else most free slots, then the neighbourhood before the municipality, then provider id, then area.
- A round's capacity per (area, care type) is the sum of its providers' free slots (plus the pins covering
  it, which the solver takes off again), so the solver never proposes beyond free capacity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

ACTIVE = frozenset({"requested", "confirmed"})


@dataclass(frozen=True)
class ProviderEntry:
    provider: str
    area: str
    care_type: str
    slots: int
    claims: int  # active claims on this entry
    reported_at: datetime

    @property
    def free(self) -> int:
        return max(0, self.slots - self.claims)

    @property
    def over_claimed(self) -> int:
        """Claims kept beyond what the provider now reports (a lowered report keeps them)."""
        return max(0, self.claims - self.slots)


@dataclass(frozen=True)
class Refusal:
    case_id: str
    provider: str
    care_type: str
    refused_at: datetime


@dataclass(frozen=True)
class Choice:
    entry: ProviderEntry
    continuity: bool


def refused(refusals: Iterable[Refusal], case_id: str, entry: ProviderEntry) -> bool:
    """The provider declined (or let time out) this case's need and has not reported capacity since."""
    return any(
        r.case_id == case_id
        and r.provider == entry.provider
        and r.care_type == entry.care_type
        and entry.reported_at <= r.refused_at
        for r in refusals
    )


def candidates(
    care_type: str,
    neighbourhood: str,
    municipality: str,
    entries: Iterable[ProviderEntry],
    *,
    case_id: str,
    refusals: Iterable[Refusal] = (),
) -> list[ProviderEntry]:
    refusals = list(refusals)
    return [
        e
        for e in entries
        if e.care_type == care_type
        and e.area in (neighbourhood, municipality)
        and e.free > 0
        and not refused(refusals, case_id, e)
    ]


def choose_provider(
    care_type: str,
    neighbourhood: str,
    municipality: str,
    entries: Iterable[ProviderEntry],
    *,
    case_id: str,
    continuity: Sequence[str | None] = (),
    refusals: Iterable[Refusal] = (),
) -> Choice | None:
    """The entry whose slot this care need claims, or None when no eligible provider has a free slot."""
    found = candidates(care_type, neighbourhood, municipality, entries, case_id=case_id, refusals=refusals)
    if not found:
        return None

    def order(e: ProviderEntry) -> tuple[int, bool, str, str]:
        return (-e.free, e.area != neighbourhood, e.provider, e.area)

    for preferred in continuity:
        if preferred is None:
            continue
        own = sorted((e for e in found if e.provider == preferred), key=order)
        if own:
            return Choice(own[0], True)
    return Choice(min(found, key=order), False)


def assign_needs(
    needs: Sequence[str],
    neighbourhood: str,
    municipality: str,
    entries: Sequence[ProviderEntry],
    *,
    case_id: str,
    continuity: Sequence[str | None] = (),
    refusals: Iterable[Refusal] = (),
) -> dict[str, Choice | None]:
    """A choice per care need (each claim counted before the next need is chosen)."""
    current = list(entries)
    refusals = list(refusals)
    out: dict[str, Choice | None] = {}
    for need in needs:
        choice = choose_provider(
            need,
            neighbourhood,
            municipality,
            current,
            case_id=case_id,
            continuity=continuity,
            refusals=refusals,
        )
        out[need] = choice
        if choice is not None:
            current = [replace(e, claims=e.claims + 1) if e == choice.entry else e for e in current]
    return out


def free_by_entry(entries: Iterable[ProviderEntry]) -> dict[tuple[str, str], int]:
    """(area, care_type) -> the sum of its providers' free slots."""
    out: dict[tuple[str, str], int] = {}
    for e in entries:
        out[(e.area, e.care_type)] = out.get((e.area, e.care_type), 0) + e.free
    return out


def round_slots(
    area: str, care_type: str, entries: Sequence[ProviderEntry], pins_covering: int
) -> int | None:
    """The problem's slots for (area, care_type) when its providers are known (None: no breakdown, the
    summed snapshot stands): the providers' free slots plus the pins covering it (the solver subtracts
    pins from every entry they cover; their slots are already claimed)."""
    mine = [e for e in entries if e.area == area and e.care_type == care_type]
    if not mine:
        return None
    return sum(e.free for e in mine) + pins_covering


def refusal_forbidden(
    cases: Iterable[dict[str, object]],
    units: Iterable[dict[str, object]],
    entries: Sequence[ProviderEntry],
    refusals: Sequence[Refusal],
) -> set[tuple[str, str]]:
    """(case, unit) pairs no round may propose: some care need of the case is, at the unit's areas, offered
    with free slots only by providers that refused this case for it (and have not reported since). A round
    then proposes another home, never that pairing."""
    out: set[tuple[str, str]] = set()
    refused_cases = {r.case_id for r in refusals}
    unit_list = list(units)
    for case in cases:
        case_id = str(case["id"])
        if case_id not in refused_cases:
            continue
        needs = [str(n) for n in case.get("care_needs") or ()]  # type: ignore[attr-defined]
        for unit in unit_list:
            hood, muni = str(unit["neighbourhood"]), str(unit["municipality"])
            for need in needs:
                covering = [
                    e for e in entries if e.care_type == need and e.area in (hood, muni) and e.free > 0
                ]
                if covering and all(refused(refusals, case_id, e) for e in covering):
                    out.add((case_id, str(unit["id"])))
                    break
    return out
