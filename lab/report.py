"""`wijkmatch report REGION --from --to`: the results monitor (docs/lab.md, "Results monitor").

Reads, in one READ ONLY transaction, what the matcher recorded (`matcher.rounds`, `matcher.proposals` —
whose status follows every decision, offer and answer, with the reason code of a rejection or decline —,
`matcher.cases`, `matcher.reference`) and, where those services share the database, the review service's
staff decisions (`review.proposals`) and the notifier's offers (`notifier.offers`). Nothing is written.

`collect` returns the raw counts (for tests and for the operator's own use); `publish` turns them into the
publishable report: every table of counts goes through `lab.suppress` (a count below k is "< k", and
further cells are hidden so no small count follows by subtraction), and waiting-time percentiles are
given only for groups of at least k households.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from lab import output
from lab.suppress import suppress, suppress_column

GROUPS = ("homeless", "institution_leaver", "statushouder", "labour_migrant", "elderly", "regular")
KINDS = ("flex", "clustered", "regular")
# Example targets per year (the agreements: flex homes and clustered units), pro-rated to the period.
DEFAULT_TARGETS = {"flex": 350, "clustered": 500}
DECIDED = ("approved", "offered", "accepted", "declined", "expired", "rejected")


@dataclass
class Raw:
    region: str
    start: datetime
    end: datetime
    let: dict[tuple[str, str], int] = field(default_factory=dict)  # (group, kind) -> homes let
    proposals_by_status: dict[str, int] = field(default_factory=dict)
    declines_by_reason: dict[str, int] = field(default_factory=dict)
    rejections_by_reason: dict[str, int] = field(default_factory=dict)
    quota_persons: dict[str, int] = field(default_factory=dict)  # municipality -> statushouder persons housed
    quota_remaining: dict[str, int] = field(default_factory=dict)  # municipality -> remaining (reference)
    wait_to_offer: dict[str, list[float]] = field(default_factory=dict)  # group -> days
    wait_to_housing: dict[str, list[float]] = field(default_factory=dict)
    rounds_by_status: dict[str, int] = field(default_factory=dict)
    round_starts: list[datetime] = field(default_factory=list)
    review_decisions: dict[str, int] | None = None  # review.proposals status -> count (if present)
    notifier_offers: dict[str, int] | None = None  # notifier.offers status -> count (if present)
    care: dict[str, Any] | None = None  # matcher care_outcomes for the period (if care claims exist)


def _day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC) + timedelta(days=1)


async def _table_exists(conn: Any, name: str) -> bool:
    from sqlalchemy import text

    return bool((await conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name})).scalar_one())


async def collect(database_url: str, region: str, start: datetime, end: datetime) -> Raw:
    """The raw counts for `region` between `start` (inclusive) and `end` (exclusive), read-only."""
    from sqlalchemy import text

    from services.platform.db import create_engine

    engine = create_engine(database_url)
    raw = Raw(region, start, end)
    params = {"r": region, "a": start, "b": end}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET TRANSACTION READ ONLY"))
            rows = await conn.execute(
                text(
                    "SELECT p.case_id, p.status, p.reason, p.created_at, p.updated_at, p.case_snapshot,"
                    " p.unit_snapshot,"
                    " c.event_time AS case_time FROM matcher.proposals p"
                    " LEFT JOIN matcher.cases c ON c.region = p.region AND c.id = p.case_id"
                    " WHERE p.region = :r AND p.created_at >= :a AND p.created_at < :b"
                ),
                params,
            )
            first_offer: dict[str, tuple[str, float]] = {}
            for r in rows.mappings():
                status = r["status"]
                group = r["case_snapshot"].get("group", "regular")
                raw.proposals_by_status[status] = raw.proposals_by_status.get(status, 0) + 1
                if status == "declined":
                    key = r["reason"] or "none given"
                    raw.declines_by_reason[key] = raw.declines_by_reason.get(key, 0) + 1
                if status == "rejected":
                    key = r["reason"] or "none given"
                    raw.rejections_by_reason[key] = raw.rejections_by_reason.get(key, 0) + 1
                case_time = r["case_time"]
                if status in ("offered", "accepted", "declined", "expired") and case_time is not None:
                    days = max(0.0, (r["created_at"] - case_time).total_seconds() / 86400)
                    cid = r["case_id"]
                    if cid not in first_offer or days < first_offer[cid][1]:
                        first_offer[cid] = (group, days)
                if status == "accepted":
                    kind = r["unit_snapshot"].get("kind", "regular")
                    raw.let[(group, kind)] = raw.let.get((group, kind), 0) + 1
                    if case_time is not None:
                        days = max(0.0, (r["updated_at"] - case_time).total_seconds() / 86400)
                        raw.wait_to_housing.setdefault(group, []).append(days)
                    if group == "statushouder":
                        m = r["unit_snapshot"].get("municipality", "?")
                        persons = int(r["case_snapshot"].get("household_size", 1))
                        raw.quota_persons[m] = raw.quota_persons.get(m, 0) + persons
            for group, days in first_offer.values():
                raw.wait_to_offer.setdefault(group, []).append(days)
            quota_rows = await conn.execute(
                text(
                    "SELECT snapshot FROM matcher.reference WHERE region = :r AND entity = 'quota'"
                    " AND removed IS FALSE"
                ),
                {"r": region},
            )
            for (snap,) in quota_rows:
                if snap and snap.get("group") == "statushouder":
                    raw.quota_remaining[snap["municipality"]] = int(snap.get("remaining_persons", 0))
            round_rows = await conn.execute(
                text(
                    "SELECT status, started_at FROM matcher.rounds WHERE region = :r"
                    " AND started_at >= :a AND started_at < :b ORDER BY started_at"
                ),
                params,
            )
            for status, started in round_rows:
                raw.rounds_by_status[status] = raw.rounds_by_status.get(status, 0) + 1
                raw.round_starts.append(started)
            if await _table_exists(conn, "review.proposals"):
                review_rows = await conn.execute(
                    text(
                        "SELECT status, count(*) FROM review.proposals WHERE region = :r"
                        " AND proposed_at >= :a AND proposed_at < :b GROUP BY status"
                    ),
                    params,
                )
                raw.review_decisions = {s: int(n) for s, n in review_rows}
            if await _table_exists(conn, "notifier.offers"):
                offer_rows = await conn.execute(
                    text(
                        "SELECT status, count(*) FROM notifier.offers WHERE region = :r"
                        " AND made_at >= :a AND made_at < :b GROUP BY status"
                    ),
                    params,
                )
                raw.notifier_offers = {s: int(n) for s, n in offer_rows}
            if await _table_exists(conn, "matcher.care_claims"):
                from services.matcher.pool.care_store import care_outcomes

                # The query needs only `execute`: the read-only connection stands in for a session.
                raw.care = await care_outcomes(conn, region, start, end)  # type: ignore[arg-type]
            await conn.rollback()
    finally:
        await engine.dispose()
    return raw


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 1)


def _column(
    labels: list[str],
    counts: list[int],
    k: int,
    force_rows: set[str] | frozenset[str] = frozenset(),
    force_total: bool = False,
) -> dict[str, Any]:
    if not counts:
        return {"rows": {}, "total": f"< {k}"}
    rows = [i for i, label in enumerate(labels) if label in force_rows]
    shown, total = suppress_column(counts, k, force_rows=rows, force_total=force_total)
    return {"rows": dict(zip(labels, shown, strict=True)), "total": total}


def _hidden(text: str) -> bool:
    return not text.isdigit()


# A status of the proposals table and the total of another table that count the same proposals.
LINKED = ("accepted", "declined", "rejected")


def _linked_tables(raw: Raw, k: int) -> tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The homes-let table, proposals by status, declines and rejections by reason, suppressed together:
    a number two tables share (homes let = accepted proposals, declines = declined ones, rejections =
    rejected ones) is hidden in both when either hides it, until nothing changes."""
    let_table = [[raw.let.get((g, kind), 0) for kind in KINDS] for g in GROUPS]
    statuses = sorted(raw.proposals_by_status)
    decline_reasons = sorted(raw.declines_by_reason)
    reject_reasons = sorted(raw.rejections_by_reason)
    force_status: set[str] = set()
    force_total = dict.fromkeys(LINKED, False)
    while True:
        let_s = suppress(let_table, k, [(len(GROUPS), len(KINDS))] if force_total["accepted"] else [])
        status = _column(statuses, [raw.proposals_by_status[s] for s in statuses], k, force_status)
        declines = _column(
            decline_reasons,
            [raw.declines_by_reason[r] for r in decline_reasons],
            k,
            force_total=force_total["declined"],
        )
        rejections = _column(
            reject_reasons,
            [raw.rejections_by_reason[r] for r in reject_reasons],
            k,
            force_total=force_total["rejected"],
        )
        totals = {
            "accepted": let_s.cells[-1][-1],
            "declined": declines["total"],
            "rejected": rejections["total"],
        }
        changed = False
        for name in LINKED:
            in_status = status["rows"].get(name, f"< {k}")
            if _hidden(in_status) and not _hidden(totals[name]) and not force_total[name]:
                force_total[name] = changed = True
            if _hidden(totals[name]) and not _hidden(in_status) and name not in force_status:
                force_status.add(name)
                changed = True
        if not changed:
            return let_s, status, declines, rejections


def publish_care(care: dict[str, Any] | None, k: int) -> dict[str, Any] | None:
    """Care arranged with the home (issue 16), publishable: a count below k is shown as "< k"; a share only
    when neither its numerator nor the rest of its denominator is below k (either would follow from the
    share and the shown total); the days only over at least k arranged matches."""
    if care is None:
        return None

    def count(n: int) -> str:
        return str(n) if n >= k else f"< {k}"

    def share(value: float | None, total: int) -> float | None:
        if value is None or total < k:
            return None
        part = round(value * total)
        return value if part >= k and total - part >= k else None

    offered = int(care["institution_leavers_offered"])
    arranged = int(care["matches_with_care_arranged"])
    return {
        "institution_leavers_approved": count(int(care["institution_leavers_approved"])),
        "institution_leavers_offered": count(offered),
        "share_leavers_care_confirmed_before_offer": share(
            care["share_leavers_care_confirmed_before_offer"], offered
        ),
        "matches_with_care_arranged": count(arranged),
        "mean_days_approval_to_confirmation": (
            care["mean_days_approval_to_confirmation"] if arranged >= k else None
        ),
        "median_days_approval_to_confirmation": (
            care["median_days_approval_to_confirmation"] if arranged >= k else None
        ),
        "share_with_provider_continuity": share(care["share_with_provider_continuity"], arranged),
        "cancelled_care_unavailable_or_other": count(int(care["cancelled_care_unavailable_or_other"])),
    }


def publish(raw: Raw, k: int = 10, targets: dict[str, int] | None = None) -> dict[str, Any]:
    """The publishable report (every count suppressed below k) from the raw counts."""
    targets = DEFAULT_TARGETS if targets is None else targets
    days = (raw.end - raw.start).total_seconds() / 86400
    let_s, status, declines, rejections = _linked_tables(raw, k)
    let_by_kind = [sum(raw.let.get((g, kind), 0) for g in GROUPS) for kind in KINDS]
    target_rows = {
        kind: {
            "target_for_period": round(per_year * days / 365.0, 1),
            "let": let_s.cells[-1][KINDS.index(kind)] if kind in KINDS else "0",
            "share_of_target": (
                round(let_by_kind[KINDS.index(kind)] / (per_year * days / 365.0), 3)
                if kind in KINDS and per_year and let_by_kind[KINDS.index(kind)] >= k
                else None
            ),
        }
        for kind, per_year in targets.items()
    }
    decided = sum(raw.proposals_by_status.get(s, 0) for s in DECIDED)
    rejected = raw.proposals_by_status.get("rejected", 0)
    # The rate is shown only when every count it is made of is shown (else it could pin a hidden one).
    rate_shown = rejected >= k and all(not _hidden(status["rows"][s]) for s in DECIDED if s in status["rows"])
    quota_muns = sorted(set(raw.quota_persons) | set(raw.quota_remaining))
    waits: dict[str, Any] = {}
    for g in GROUPS:
        entry: dict[str, Any] = {}
        for name, values in (
            ("to_offer", raw.wait_to_offer.get(g, [])),
            ("to_housing", raw.wait_to_housing.get(g, [])),
        ):
            if len(values) >= k:
                entry[name] = {
                    "households": f">= {k}",  # the count itself is in the homes-let table
                    "p50": _percentile(values, 50),
                    "p90": _percentile(values, 90),
                }
            else:
                entry[name] = {"households": f"< {k}", "p50": None, "p90": None}
        waits[g] = entry
    gaps = [(b - a).total_seconds() for a, b in zip(raw.round_starts, raw.round_starts[1:], strict=False)]
    return {
        "region": raw.region,
        "from": raw.start.date().isoformat(),
        "to": (raw.end - timedelta(days=1)).date().isoformat(),
        "k": k,
        "homes_let": {
            "groups": list(GROUPS),
            "kinds": [*KINDS, "total"],
            "cells": let_s.cells,
            "note": f"rows: groups then the total; counts below {k} shown as '< {k}', 'x' hidden so that "
            "no small count follows from the totals",
        },
        "targets": target_rows,
        "quota": {
            "municipalities": quota_muns,
            "statushouder_persons_housed": _column(
                quota_muns, [raw.quota_persons.get(m, 0) for m in quota_muns], k
            ),
            "remaining_persons_now": {m: raw.quota_remaining.get(m) for m in quota_muns},
        },
        "waiting_days": waits,
        "proposals_by_status": status,
        "declines_by_reason": declines,
        "staff_rejections_by_reason": rejections,
        "overrule_rate": round(rejected / decided, 3) if rate_shown and decided else None,
        "rounds": {
            "by_status": dict(raw.rounds_by_status),
            "count": len(raw.round_starts),
            "gap_seconds_p50": round(float(np.median(gaps)), 1) if gaps else None,
            "gap_seconds_max": round(max(gaps), 1) if gaps else None,
            "longest_gap_starts": (raw.round_starts[int(np.argmax(gaps))].isoformat() if gaps else None),
        },
        "review_decisions": (
            _column(
                sorted(raw.review_decisions),
                [raw.review_decisions[s] for s in sorted(raw.review_decisions)],
                k,
            )
            if raw.review_decisions is not None
            else None
        ),
        "notifier_offers": (
            _column(
                sorted(raw.notifier_offers), [raw.notifier_offers[s] for s in sorted(raw.notifier_offers)], k
            )
            if raw.notifier_offers is not None
            else None
        ),
        "care": publish_care(raw.care, k),
    }


def write(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    output.write_json(out_dir / "report.json", report)
    let = report["homes_let"]
    header = ["group", *let["kinds"]]
    rows = [[g, *let["cells"][i]] for i, g in enumerate([*let["groups"], "total"])]
    output.write_csv(out_dir / "homes_let.csv", header, rows)
    simple = []
    for section in ("proposals_by_status", "declines_by_reason", "staff_rejections_by_reason"):
        for label, value in report[section]["rows"].items():
            simple.append([section, label, value])
        simple.append([section, "total", report[section]["total"]])
    output.write_csv(out_dir / "counts.csv", ["table", "label", "count"], simple)
    wait_rows = [
        [g, w["to_offer"]["households"], w["to_offer"]["p50"], w["to_offer"]["p90"],
         w["to_housing"]["households"], w["to_housing"]["p50"], w["to_housing"]["p90"]]
        for g, w in report["waiting_days"].items()
    ]  # fmt: skip
    wait_header = ["group", "offered", "offer p50", "offer p90", "housed", "housing p50", "housing p90"]
    output.write_csv(out_dir / "waiting.csv", wait_header, wait_rows)
    # Plot only what is published: suppressed cells are drawn as 0 and marked in the title.
    totals = let["cells"][-1][:-1]
    output.bar_plot(
        out_dir / "homes_let.png",
        "Homes let by type (suppressed cells drawn as 0)",
        let["kinds"][:-1],
        {"let": [int(v) if v.isdigit() else 0 for v in totals]},
        "homes",
    )
    quota = report["quota"]
    quota_rows = [
        [m, quota["statushouder_persons_housed"]["rows"][m], quota["remaining_persons_now"][m]]
        for m in quota["municipalities"]
    ]
    target_rows = [
        [kind, t["target_for_period"], t["let"], t["share_of_target"]]
        for kind, t in report["targets"].items()
    ]
    rounds = report["rounds"]
    sections = [
        ("Homes let by group and type", "<img src='homes_let.png' alt='homes let by type'>"
         + output.html_table(header, rows)),
        ("Against the targets", output.html_table(["type", "target (period)", "let", "share"], target_rows)),
        ("Quota progress (statushouder persons)", output.html_table(
            ["municipality", "housed in period", "remaining now"], quota_rows)),
        ("Waiting days", output.html_table(wait_header, wait_rows)),
        ("Declines, staff rejections, proposals", output.html_table(["table", "label", "count"], simple)
         + f"<p>Overrule rate (staff rejections / decided proposals): {report['overrule_rate']}</p>"),
        ("Rounds", f"<p>{rounds['count']} rounds {rounds['by_status']}; gap between rounds p50 "
         f"{rounds['gap_seconds_p50']} s, longest {rounds['gap_seconds_max']} s (from "
         f"{rounds['longest_gap_starts']}).</p>"),
    ]  # fmt: skip
    if report.get("care") is not None:
        care_rows = [[name.replace("_", " "), value] for name, value in report["care"].items()]
        sections.append(("Care arranged with the home", output.html_table(["figure", "value"], care_rows)))
    page = out_dir / "report.html"
    title = f"wijkmatch results — {report['region']}, {report['from']} to {report['to']} (k = {report['k']})"
    page.write_text(output.html_page(title, sections))
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wijkmatch report", description="results monitor of a region")
    parser.add_argument("region")
    parser.add_argument("--from", dest="start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    parser.add_argument(
        "--to", dest="end", type=date.fromisoformat, required=True, help="YYYY-MM-DD (inclusive)"
    )
    parser.add_argument("-k", type=int, default=10, help="smallest count published (default 10)")
    parser.add_argument("--targets", type=Path, help='JSON {"flex": homes per year, "clustered": ...}')
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("-o", "--output", type=Path, default=Path("lab-results/report"))
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("set DATABASE_URL or --database-url")
    targets = json.loads(args.targets.read_text()) if args.targets else None
    start, end = _day_bounds(args.start, args.end)
    raw = asyncio.run(collect(args.database_url, args.region, start, end))
    report = publish(raw, args.k, targets)
    page = write(report, args.output)
    print(
        json.dumps(
            {k: report[k] for k in ("region", "from", "to", "targets", "overrule_rate", "rounds")}, indent=1
        )
    )
    print(f"report: {page}")
    return 0
