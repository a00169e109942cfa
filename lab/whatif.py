"""`wijkmatch whatif REGION --set policy.max_share=0.08 ...`: the live pool under a changed policy.

Loads the region's pool as the next round would see it (the matcher's own `load_pool` and pure
`build_problem`, in a READ ONLY transaction that is rolled back), solves it as it is and with the
changes, and shows the difference: placed by group, the share of the neighbourhood rule's groups per
neighbourhood after each solution, and which (pseudonymous) households would get a different home or
none. Nothing is published and nothing is written: no round record, no proposal, no outbox row.

Changes (`--set`, repeatable):
- `policy.max_share=S` — the maximum of every neighbourhood-scope mix rule;
- `policy.complex_max_share=S` — the same for complex-scope rules;
- `policy.quota_bonus=N`;
- `care.AREA/TYPE=N` — the slots of a care entry (added if absent);
- `neighbourhood.remove=CODE` — the neighbourhood's homes leave the pool (e.g. a neighbourhood the
  municipality takes out of the spreading agreement);
- `quota.MUNICIPALITY/GROUP=N` — remaining persons of a quota (added if absent).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

GROUPS = ("homeless", "institution_leaver", "statushouder", "labour_migrant", "elderly", "regular")


def apply_changes(problem: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A copy of `problem` with the `--set` changes applied (ValueError for an unknown change)."""
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
            for r in rules:
                r["max_share"] = float(Decimal(value))
        elif key == "policy.quota_bonus":
            policy["quota_bonus"] = int(value)
        elif key.startswith("care."):
            area, _, care_type = key[len("care.") :].partition("/")
            entries = out.setdefault("care_capacity", [])
            for e in entries:
                if e["area"] == area and e["care_type"] == care_type:
                    e["slots"] = int(value)
                    break
            else:
                entries.append({"area": area, "care_type": care_type, "slots": int(value)})
        elif key.startswith("quota."):
            municipality, _, group = key[len("quota.") :].partition("/")
            quotas = out.setdefault("quotas", [])
            for q in quotas:
                if q["municipality"] == municipality and q["group"] == group:
                    q["remaining_persons"] = int(value)
                    break
            else:
                quotas.append({"municipality": municipality, "group": group, "remaining_persons": int(value)})
        elif key == "neighbourhood.remove":
            pinned_units = {p["unit"] for p in out.get("pinned") or []}
            gone = {
                u["id"] for u in out["units"] if u["neighbourhood"] == value and u["id"] not in pinned_units
            }
            out["units"] = [u for u in out["units"] if u["id"] not in gone]
            out["forbidden"] = [f for f in out.get("forbidden") or [] if f["unit"] not in gone]
        else:
            raise ValueError(f"unknown change {key!r}")
    return out


def _shares(problem: dict[str, Any], result: dict[str, Any]) -> dict[str, float]:
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


def compare(
    problem: dict[str, Any], changed: dict[str, Any], time_limit_s: float | None = None
) -> dict[str, Any]:
    """Solve both problems and describe the difference."""
    from services.matcher.solver import solve_problem

    base = solve_problem(copy.deepcopy(problem), time_limit_s=time_limit_s, workers=1, deterministic=True)
    new = solve_problem(copy.deepcopy(changed), time_limit_s=time_limit_s, workers=1, deterministic=True)
    for name, result in (("current", base), ("changed", new)):
        if result["status"] == "INVALID_INPUT":
            raise ValueError(f"the {name} problem is invalid: {result['errors'][:3]}")
    group = {c["id"]: c["group"] for c in problem["cases"]}

    def placed(result: dict[str, Any]) -> dict[str, int]:
        counts = dict.fromkeys(GROUPS, 0)
        for a in result["assignments"]:
            counts[group[a["case"]]] += 1
        return counts

    home_a = {a["case"]: a["unit"] for a in base["assignments"]}
    home_b = {a["case"]: a["unit"] for a in new["assignments"]}
    different = [
        {"case": c, "group": group[c], "current": home_a.get(c), "changed": home_b.get(c)}
        for c in sorted(set(home_a) | set(home_b))
        if home_a.get(c) != home_b.get(c)
    ]
    shares_a, shares_b = _shares(problem, base), _shares(changed, new)
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


async def load_problem(database_url: str, region: str) -> dict[str, Any]:
    """The region's next-round problem, read in a READ ONLY transaction that is rolled back."""
    from sqlalchemy import text

    from services.matcher.pool.problem import build_problem
    from services.matcher.rounds.store import load_pool
    from services.platform.db import create_engine, session_maker

    engine = create_engine(database_url)
    try:
        async with session_maker(engine)() as session:
            await session.execute(text("SET TRANSACTION READ ONLY"))
            pool, _ = await load_pool(session, region)
            await session.rollback()
    finally:
        await engine.dispose()
    return build_problem(pool, f"whatif-{region}")


def render(region: str, diff: dict[str, Any], changes: list[str]) -> str:
    lines = [f"what-if for {region}: {', '.join(changes) or '(no change)'}  (nothing published or written)"]
    lines.append(f"status: {diff['status']['current']} -> {diff['status']['changed']}")
    lines.append(f"{'group':20} {'current':>8} {'changed':>8}")
    for g in GROUPS:
        a, b = diff["placed_by_group"]["current"][g], diff["placed_by_group"]["changed"][g]
        lines.append(f"{g:20} {a:8} {b:8}")
    moved = [s for s in diff["mix_share_by_neighbourhood"].items() if s[1]["current"] != s[1]["changed"]]
    lines.append(f"neighbourhoods whose mix share changes: {len(moved)}")
    for code, s in moved[:20]:
        lines.append(f"  {code}: {s['current']} -> {s['changed']}")
    different = diff["households_with_a_different_outcome"]
    lines.append(f"households with a different home or none: {len(different)}")
    for d in different[:30]:
        lines.append(f"  {d['case']} ({d['group']}): {d['current'] or 'none'} -> {d['changed'] or 'none'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wijkmatch whatif", description=__doc__.split("\n")[0])
    parser.add_argument("region")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--time-limit", type=float, help="solver limit (default: the region's policy)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("-o", "--output", type=Path, help="also write the comparison as JSON")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("set DATABASE_URL or --database-url")
    problem = asyncio.run(load_problem(args.database_url, args.region))
    try:
        changed = apply_changes(problem, args.changes)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        diff = compare(problem, changed, args.time_limit)
    except ValueError as exc:  # e.g. a max_share outside (0, 1]: the solver's message names the field
        print(f"wijkmatch whatif: {exc}")
        return 2
    print(render(args.region, diff, args.changes))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(diff, indent=2) + "\n")
    return 0
