"""The what-if page's form and view (pure): form fields -> the matcher's change language, and the
matcher's comparison -> what the page shows. The comparison itself is the matcher's
(`POST /v1/regions/{region}/whatif`); the review service never solves anything."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from schemas.entities import GROUPS

WHATIF_ROLES = frozenset({"reviewer", "approver", "admin"})  # as the matcher's endpoint allows
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_LISTED = 200  # households listed on the page (the count is always given)
FIELDS = (
    "max_share",
    "complex_max_share",
    "quota_bonus",
    "care_area",
    "care_type",
    "care_slots",
    "remove_neighbourhood",
    "add_neighbourhood",
    "add_municipality",
    "add_households",
)


@dataclass
class Form:
    values: dict[str, str] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _share(raw: str, label: str, form: Form) -> str | None:
    try:
        value = float(raw)
    except ValueError:
        form.errors.append(f"{label}: a number between 0 and 1 (for example 0.08), at most four decimals.")
        return None
    if not 0 < value <= 1 or round(value, 4) != value:
        form.errors.append(f"{label}: a number between 0 and 1 (for example 0.08), at most four decimals.")
        return None
    return raw


def _count(raw: str, label: str, form: Form) -> str | None:
    if not raw.isdigit() or len(raw) > 9:
        form.errors.append(f"{label}: a whole number, 0 or more.")
        return None
    return str(int(raw))


def _code(raw: str, label: str, form: Form) -> str | None:
    if not CODE.match(raw):
        form.errors.append(f"{label}: a code such as BU03440101 (letters, digits, - _ . :).")
        return None
    return raw


def read_form(fields: dict[str, str]) -> Form:
    """The changes the form asks for, in the matcher's `KEY=VALUE` language, or errors in words."""
    form = Form(values={k: (fields.get(k) or "").strip()[:100] for k in FIELDS})
    v = form.values
    if v["max_share"] and (s := _share(v["max_share"], "Neighbourhood mix maximum", form)):
        form.changes.append(f"policy.max_share={s}")
    if v["complex_max_share"] and (s := _share(v["complex_max_share"], "Complex mix maximum", form)):
        form.changes.append(f"policy.complex_max_share={s}")
    if v["quota_bonus"] and (n := _count(v["quota_bonus"], "Quota bonus", form)):
        form.changes.append(f"policy.quota_bonus={n}")
    if v["care_area"] or v["care_type"] or v["care_slots"]:
        if not (v["care_area"] and v["care_type"] and v["care_slots"]):
            form.errors.append("Care capacity: give the area, the care type and the number of places.")
        else:
            area = _code(v["care_area"], "Care area", form)
            ctype = _code(v["care_type"], "Care type", form)
            slots = _count(v["care_slots"], "Care places", form)
            if area and ctype and slots:
                form.changes.append(f"care.{area}/{ctype}={slots}")
    if v["remove_neighbourhood"] and (c := _code(v["remove_neighbourhood"], "Neighbourhood to remove", form)):
        form.changes.append(f"neighbourhood.remove={c}")
    if v["add_neighbourhood"] or v["add_municipality"] or v["add_households"]:
        if not (v["add_neighbourhood"] and v["add_municipality"] and v["add_households"]):
            form.errors.append("Neighbourhood to add: give its code, its municipality and its households.")
        else:
            code = _code(v["add_neighbourhood"], "Neighbourhood to add", form)
            mun = _code(v["add_municipality"], "Its municipality", form)
            h = _count(v["add_households"], "Its households", form)
            if code and mun and h:
                form.changes.append(f"neighbourhood.add={code}/{mun}/{h}")
    if not form.changes and not form.errors:
        form.errors.append("Set at least one change.")
    return form


def comparison_view(diff: dict[str, Any]) -> dict[str, Any]:
    """Rows for the page: placed by group with the difference, the neighbourhoods whose mix share
    changes, the households with a different home or none (the first MAX_LISTED)."""
    current, changed = diff["placed_by_group"]["current"], diff["placed_by_group"]["changed"]
    groups = [
        {"group": g, "current": current.get(g, 0), "changed": changed.get(g, 0),
         "delta": changed.get(g, 0) - current.get(g, 0)}
        for g in GROUPS
        if current.get(g, 0) or changed.get(g, 0)
    ]  # fmt: skip
    totals = {"current": sum(current.values()), "changed": sum(changed.values())}
    totals["delta"] = totals["changed"] - totals["current"]
    shares = [
        {"code": code, "current": s["current"], "changed": s["changed"]}
        for code, s in diff["mix_share_by_neighbourhood"].items()
        if s["current"] != s["changed"]
    ]
    different = diff["households_with_a_different_outcome"]
    return {
        "groups": groups,
        "totals": totals,
        "shares": shares,
        "shares_total": len(diff["mix_share_by_neighbourhood"]),
        "different": different[:MAX_LISTED],
        "different_total": len(different),
        "status": diff["status"],
    }
