"""Policy what-ifs on a region's pool (pure apart from calling the solver): the next round's problem under
a changed policy, solved beside the problem as it is, and the difference.

Used by the matcher's `POST /v1/regions/{region}/whatif` (the review service's what-if page calls it)
and by the lab's `wijkmatch whatif` command (docs/lab.md). Nothing here writes or publishes anything.

Changes (`KEY=VALUE`):
- `policy.max_share=S` — the maximum of every neighbourhood-scope mix rule;
- `policy.complex_max_share=S` — the same for complex-scope rules;
- `policy.quota_bonus=N`;
- `care.AREA/TYPE=N` — the slots of a care entry (added if absent);
- `quota.MUNICIPALITY/GROUP=N` — remaining persons of a quota (added if absent);
- `neighbourhood.remove=CODE` — the neighbourhood's homes leave the pool (e.g. a neighbourhood the
  municipality takes out of the spreading agreement; homes of approved or offered proposals stay);
- `neighbourhood.add=CODE/MUNICIPALITY/HOUSEHOLDS` — the neighbourhood is described with that many
  households (its group counts stay as they are, none if it was not described): a neighbourhood that
  joins the spreading agreement. A home in an undescribed neighbourhood counts as H = 0 (DOMAIN.md), so
  adding one opens room under the mix rules there.
"""

from __future__ import annotations

import copy
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.entities import GROUPS

MAX_CHANGES = 20


def _int(value: str, what: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if n < 0:
        raise ValueError(f"{what} must be 0 or more")
    return n


def apply_changes(problem: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of `problem` with the changes applied (ValueError for an unknown or malformed change)."""
    if len(changes) > MAX_CHANGES:
        raise ValueError(f"at most {MAX_CHANGES} changes at once")
    out = copy.deepcopy(problem)
    policy = out.setdefault("policy", {})
    for change in changes:
        key, sep, value = change.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE, got {change!r}")
        if key in ("policy.max_share", "policy.complex_max_share"):
            scope = "neighbourhood" if key == "policy.max_share" else "complex"
            rules = [r for r in policy.get("mix_rules") or [] if r["scope"] == scope]
            if not rules:
                raise ValueError(f"the region's policy has no {scope}-scope mix rule to change")
            try:
                share = Decimal(value)
            except InvalidOperation:
                raise ValueError(f"{key} must be a number, got {value!r}") from None
            for r in rules:
                r["max_share"] = float(share)
        elif key == "policy.quota_bonus":
            policy["quota_bonus"] = _int(value, key)
        elif key.startswith("care."):
            area, _, care_type = key[len("care.") :].partition("/")
            entries = out.setdefault("care_capacity", [])
            for e in entries:
                if e["area"] == area and e["care_type"] == care_type:
                    e["slots"] = _int(value, key)
                    break
            else:
                entries.append({"area": area, "care_type": care_type, "slots": _int(value, key)})
        elif key.startswith("quota."):
            municipality, _, group = key[len("quota.") :].partition("/")
            quotas = out.setdefault("quotas", [])
            for q in quotas:
                if q["municipality"] == municipality and q["group"] == group:
                    q["remaining_persons"] = _int(value, key)
                    break
            else:
                quotas.append(
                    {"municipality": municipality, "group": group, "remaining_persons": _int(value, key)}
                )
        elif key == "neighbourhood.remove":
            pinned_units = {p["unit"] for p in out.get("pinned") or []}
            gone = {
                u["id"] for u in out["units"] if u["neighbourhood"] == value and u["id"] not in pinned_units
            }
            out["units"] = [u for u in out["units"] if u["id"] not in gone]
            out["forbidden"] = [f for f in out.get("forbidden") or [] if f["unit"] not in gone]
        elif key == "neighbourhood.add":
            parts = value.split("/")
            if len(parts) != 3 or not parts[0] or not parts[1]:
                raise ValueError(f"neighbourhood.add needs CODE/MUNICIPALITY/HOUSEHOLDS, got {value!r}")
            code, municipality, households = parts[0], parts[1], _int(parts[2], "households")
            nbhs = out.setdefault("neighbourhoods", [])
            for n in nbhs:
                if n["code"] == code:
                    n["households"] = households
                    n["municipality"] = municipality
                    break
            else:
                nbhs.append({"code": code, "municipality": municipality, "households": households})
        else:
            raise ValueError(f"unknown change {key!r}")
    return out


def mix_shares(problem: dict[str, Any], result: dict[str, Any]) -> dict[str, float]:
    """Share of the neighbourhood rule's groups per neighbourhood after the solution (pins included)."""
    rules = [r for r in (problem.get("policy") or {}).get("mix_rules") or [] if r["scope"] == "neighbourhood"]
    if not rules:
        return {}
    groups = set(rules[0]["groups"])
    cases = {c["id"]: c for c in problem["cases"]}
    units = {u["id"]: u for u in problem["units"]}
    h = {n["code"]: n["households"] for n in problem.get("neighbourhoods") or []}
    g = {
        n["code"]: sum((n.get("group_counts") or {}).get(x, 0) for x in groups)
        for n in problem.get("neighbourhoods") or []
    }
    for a in result.get("assignments") or []:
        code = units[a["unit"]]["neighbourhood"]
        h[code] = h.get(code, 0) + 1
        if cases[a["case"]]["group"] in groups:
            g[code] = g.get(code, 0) + 1
    return {code: round(g.get(code, 0) / h[code], 4) for code in sorted(h) if h[code]}


def describe(
    problem: dict[str, Any], changed: dict[str, Any], base: dict[str, Any], new: dict[str, Any]
) -> dict[str, Any]:
    """The difference between two solved results (pure): placed by group, mix shares per
    neighbourhood, and every (pseudonymous) household with a different home or none."""
    group = {c["id"]: c["group"] for c in problem["cases"]}

    def placed(result: dict[str, Any]) -> dict[str, int]:
        counts = dict.fromkeys(GROUPS, 0)
        for a in result["assignments"]:
            counts[group[a["case"]]] += 1
        return counts

    home_a = {a["case"]: a["unit"] for a in base["assignments"]}
    home_b = {a["case"]: a["unit"] for a in new["assignments"]}
    # Per household: its pseudonymous id and the two homes only, not its group — a household's group is
    # shown per case only to auditors (the full problem, audited); the totals by group are above.
    different = [
        {"case": c, "current": home_a.get(c), "changed": home_b.get(c)}
        for c in sorted(set(home_a) | set(home_b))
        if home_a.get(c) != home_b.get(c)
    ]
    shares_a, shares_b = mix_shares(problem, base), mix_shares(changed, new)
    return {
        "status": {"current": base["status"], "changed": new["status"]},
        "objective": {"current": base["objective"], "changed": new["objective"]},
        "placed_by_group": {"current": placed(base), "changed": placed(new)},
        "mix_share_by_neighbourhood": {
            code: {"current": shares_a.get(code), "changed": shares_b.get(code)}
            for code in sorted(set(shares_a) | set(shares_b))
        },
        "households_with_a_different_outcome": different,
    }


def compare(
    problem: dict[str, Any],
    changed: dict[str, Any],
    time_limit_s: float | None = None,
    *,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Solve both problems (deterministic mode, one worker) and describe the difference; ValueError when
    either is invalid (e.g. a max_share outside (0, 1]: the solver's message names the field). `base`: the
    current problem's result when the caller solved it already (same settings)."""
    from services.matcher.solver import solve_problem

    if base is None:
        base = solve_problem(copy.deepcopy(problem), time_limit_s=time_limit_s, workers=1, deterministic=True)
    new = solve_problem(copy.deepcopy(changed), time_limit_s=time_limit_s, workers=1, deterministic=True)
    for name, result in (("current", base), ("changed", new)):
        if result["status"] == "INVALID_INPUT":
            errors = [
                e.get("message", str(e)) if isinstance(e, dict) else str(e) for e in result["errors"][:3]
            ]
            raise ValueError(f"the {name} problem is invalid: {'; '.join(errors)}")
    return describe(problem, changed, base, new)
