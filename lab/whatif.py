"""`wijkmatch whatif REGION --set policy.max_share=0.08 ...`: the live pool under a changed policy.

Loads the region's pool as the next round would see it (the matcher's own `load_pool` and pure
`build_problem`, in a READ ONLY transaction that is rolled back), solves it as it is and with the
changes, and shows the difference: placed by group, the share of the neighbourhood rule's groups per
neighbourhood after each solution, and which (pseudonymous) households would get a different home or
none. Nothing is published and nothing is written: no round record, no proposal, no outbox row.

Changes (`--set`, repeatable) and the comparison are the matcher's (`services.matcher.pool.whatif`, shared
with the matcher's what-if endpoint that the review service's page calls): `policy.max_share=S`,
`policy.complex_max_share=S`, `policy.quota_bonus=N`, `care.AREA/TYPE=N`, `quota.MUNICIPALITY/GROUP=N`,
`neighbourhood.remove=CODE`, `neighbourhood.add=CODE/MUNICIPALITY/HOUSEHOLDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from services.matcher.pool import whatif as _whatif

GROUPS = _whatif.GROUPS
apply_changes = _whatif.apply_changes
compare = _whatif.compare


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
        lines.append(f"  {d['case']}: {d['current'] or 'none'} -> {d['changed'] or 'none'}")
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
