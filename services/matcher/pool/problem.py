"""Build DOMAIN.md's problem file for one region's round from the pool (pure: no I/O).

Rules (docs/matcher.md): open, unparked cases and vacant units take part; pending proposals keep their
case and unit out (they are neither open nor vacant); approved or offered proposals are pinned with the
snapshots they were proposed with; forbidden pairs are listed when both ids are in the problem.
Committed pairs that are not pins — pending proposals and accepted offers — are counted as housed
against every reference snapshot older than them: +1 household (and group) in their neighbourhood and
complex, their persons off the matching quota, one slot off each care entry they cover. Without that a
second round would hand out the same care slots and mix room again while the first round's proposals
wait for review.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.matcher.care.rules import ProviderEntry, Refusal, refusal_forbidden, round_slots


@dataclass(frozen=True)
class ReferenceRow:
    entity: str
    key: str
    snapshot: dict[str, Any]
    event_time: datetime


@dataclass(frozen=True)
class PinRow:
    case_id: str
    unit_id: str
    case_snapshot: dict[str, Any]
    unit_snapshot: dict[str, Any]


@dataclass(frozen=True)
class HousedRow:
    """A committed pair that is not a pin: a pending proposal or an accepted offer."""

    group: str
    household_size: int
    municipality: str
    neighbourhood: str
    complex: str | None
    housed_at: datetime
    care_needs: tuple[str, ...] = ()
    pending: bool = False  # a pending proposal (not yet a claim), else an accepted offer

    @classmethod
    def of(
        cls, case: dict[str, Any], unit: dict[str, Any], at: datetime, *, pending: bool = False
    ) -> HousedRow:
        return cls(
            pending=pending,
            group=case["group"],
            household_size=case["household_size"],
            municipality=unit["municipality"],
            neighbourhood=unit["neighbourhood"],
            complex=unit.get("complex"),
            housed_at=at,
            care_needs=tuple(case.get("care_needs") or ()),
        )


@dataclass
class PoolView:
    """Everything one round reads from a region's pool."""

    region: str
    cases: list[dict[str, Any]] = field(default_factory=list)
    units: list[dict[str, Any]] = field(default_factory=list)
    reference: list[ReferenceRow] = field(default_factory=list)
    pins: list[PinRow] = field(default_factory=list)
    forbidden: list[tuple[str, str]] = field(default_factory=list)
    housed: list[HousedRow] = field(default_factory=list)
    # Issue 16: each provider's entry with its active claims, and refused (case, provider, care type).
    care_providers: list[ProviderEntry] = field(default_factory=list)
    care_refusals: list[Refusal] = field(default_factory=list)


def _by(key: str, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: item[key])


def _add_group(counts: dict[str, int], group: str) -> None:
    counts[group] = counts.get(group, 0) + 1


def _neighbourhoods(rows: list[ReferenceRow], housed: list[HousedRow]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        snap = copy.deepcopy(row.snapshot)
        counts = dict(snap.get("group_counts") or {})
        for h in housed:
            if h.neighbourhood == snap["code"] and h.housed_at > row.event_time:
                snap["households"] = snap["households"] + 1
                _add_group(counts, h.group)
        snap["group_counts"] = counts
        out.append(snap)
    described = {n["code"] for n in out}
    extra: dict[str, dict[str, Any]] = {}
    for h in housed:
        if h.neighbourhood in described:
            continue
        entry = extra.setdefault(
            h.neighbourhood,
            {"code": h.neighbourhood, "municipality": h.municipality, "households": 0, "group_counts": {}},
        )
        entry["households"] += 1
        _add_group(entry["group_counts"], h.group)
    return _by("code", out + list(extra.values()))


def _complexes(rows: list[ReferenceRow], housed: list[HousedRow]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        snap = copy.deepcopy(row.snapshot)
        counts = dict(snap.get("group_counts") or {})
        for h in housed:
            if h.complex is not None and h.complex == snap["id"] and h.housed_at > row.event_time:
                snap["occupied"] = snap["occupied"] + 1
                _add_group(counts, h.group)
        snap["group_counts"] = counts
        out.append(snap)
    described = {c["id"] for c in out}
    extra: dict[str, dict[str, Any]] = {}
    for h in housed:
        if h.complex is None or h.complex in described:
            continue
        entry = extra.setdefault(
            h.complex, {"id": h.complex, "neighbourhood": h.neighbourhood, "occupied": 0, "group_counts": {}}
        )
        entry["occupied"] += 1
        _add_group(entry["group_counts"], h.group)
    return _by("id", out + list(extra.values()))


def _pins_covering(pins: list[PinRow], area: str, care_type: str) -> int:
    return sum(
        1
        for p in pins
        if care_type in (p.case_snapshot.get("care_needs") or ())
        and area in (p.unit_snapshot.get("neighbourhood"), p.unit_snapshot.get("municipality"))
    )


def _care(
    rows: list[ReferenceRow],
    housed: list[HousedRow],
    providers: list[ProviderEntry] | None = None,
    pins: list[PinRow] | None = None,
) -> list[dict[str, Any]]:
    """Care entries; where the providers are known (issue 16) the slots are their free slots (reported
    minus active claims) plus the pins covering the entry (the solver takes those off again)."""
    out = []
    for row in rows:
        snap = copy.deepcopy(row.snapshot)
        net = round_slots(
            snap["area"],
            snap["care_type"],
            providers or [],
            _pins_covering(pins or [], snap["area"], snap["care_type"]),
        )
        if net is not None:
            snap["slots"] = net
        # A pending proposal holds a slot it has not claimed yet. Where the providers are known their
        # reports never include it (they count claims only), so it is held against every report; else
        # only against reports older than it (as before).
        used = sum(
            1
            for h in housed
            if snap["care_type"] in h.care_needs
            and snap["area"] in (h.neighbourhood, h.municipality)
            and (h.housed_at > row.event_time or (net is not None and h.pending))
        )
        snap["slots"] = max(0, snap["slots"] - used)
        out.append(snap)
    return sorted(out, key=lambda e: (e["area"], e["care_type"]))


def _quotas(rows: list[ReferenceRow], housed: list[HousedRow]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        snap = copy.deepcopy(row.snapshot)
        taken = sum(
            h.household_size
            for h in housed
            if h.municipality == snap["municipality"]
            and h.group == snap["group"]
            and h.housed_at > row.event_time
        )
        snap["remaining_persons"] = max(0, snap["remaining_persons"] - taken)
        out.append(snap)
    return sorted(out, key=lambda q: (q["municipality"], q["group"]))


def build_problem(pool: PoolView, round_id: str) -> dict[str, Any]:
    """The problem dict for one round, in a canonical order (so equal pools give equal SHA-256)."""
    by_entity: dict[str, list[ReferenceRow]] = {}
    for row in pool.reference:
        by_entity.setdefault(row.entity, []).append(row)

    policy_rows = by_entity.get("policy", [])
    policy = copy.deepcopy(policy_rows[0].snapshot) if policy_rows else {}

    cases = {c["id"]: c for c in pool.cases}
    units = {u["id"]: u for u in pool.units}
    pinned = []
    for pin in sorted(pool.pins, key=lambda p: (p.case_id, p.unit_id)):
        if pin.case_id in cases or pin.unit_id in units:
            continue  # cannot happen with consistent statuses; never let a pin share an id with the open pool
        cases[pin.case_id] = pin.case_snapshot
        units[pin.unit_id] = pin.unit_snapshot
        pinned.append({"case": pin.case_id, "unit": pin.unit_id})
    pinned_pairs = {(p["case"], p["unit"]) for p in pinned}
    refused = refusal_forbidden(pool.cases, pool.units, pool.care_providers, pool.care_refusals)
    forbidden = sorted(
        {
            (c, u)
            for c, u in [*pool.forbidden, *refused]
            if c in cases and u in units and (c, u) not in pinned_pairs
        }
    )
    return {
        "region": pool.region,
        "round_id": round_id,
        "policy": policy,
        "cases": _by("id", cases.values()),
        "units": _by("id", units.values()),
        "neighbourhoods": _neighbourhoods(by_entity.get("neighbourhood", []), pool.housed),
        "complexes": _complexes(by_entity.get("complex", []), pool.housed),
        "care_capacity": _care(
            by_entity.get("care_capacity", []), pool.housed, pool.care_providers, pool.pins
        ),
        "quotas": _quotas(by_entity.get("quota", []), pool.housed),
        "pinned": pinned,
        "forbidden": [{"case": c, "unit": u} for c, u in forbidden],
    }


def canonical_json(problem: dict[str, Any]) -> str:
    """The exact problem text recorded for a round (sorted keys, compact, UTF-8)."""
    return json.dumps(problem, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
