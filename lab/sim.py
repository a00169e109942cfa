"""Run one allocation policy over a simulated year (pure apart from calling the solver; docs/lab.md).

Policies:
- `online` — wijkmatch: a round at a cadence (`daily`, `weekly`, or `change`: after every arrival,
  vacancy or answer, with a debounce), each round DOMAIN.md's problem of the waiting households and
  vacant homes solved by the real solver (`solve_problem`, deterministic mode); proposals become offers
  (all approved: staff overrule is not simulated) and are answered `response_days` later;
- `status_quo` — every day, each vacant home on its own (oldest vacancy first) goes to the
  highest-priority waiting household that keeps the hard rules, care capacity and mix rules;
- the hindsight optimum is not a run: see `lab.hindsight`.

While an offer is out, its household and home are held out of later rounds and counted as housed
(neighbourhood and complex counts, care slots, quota persons), as the matcher counts pending proposals; a
decline undoes that and forbids the pair.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lab.rules import CARE_TYPES, Tables, care_ok, pair_mask
from lab.year import DAYS, GROUPS, HALF, Year, care_accrued

WAITING, PENDING, HOUSED, LEFT, NOT_YET = 1, 2, 3, 4, 0
VACANT, LET, LAPSED = 1, 3, 4
MONTHS = 12


@dataclass
class RoundRecord:
    """A round's problem and the new pairs chosen (kept only when asked: tests use the checker on them)."""

    day: float
    problem: dict[str, Any]
    pairs: list[tuple[str, str]]
    result: dict[str, Any] | None = None


@dataclass
class Outcome:
    policy: str
    first_offer: np.ndarray  # day per case (nan = never)
    housed_day: np.ndarray  # day per case (nan = not housed)
    housed_unit: np.ndarray  # unit index per case (-1)
    unit_let: np.ndarray  # day the home was let through wijkmatch (nan)
    unit_gone: np.ndarray  # day the home left the pool (let or lapsed; nan = still vacant at the end)
    offers: int
    declines: int
    rounds: int
    solve_seconds: float
    care_used: np.ndarray  # accepted placements per care entry
    quota_persons: np.ndarray  # (2 halves x municipalities) persons housed towards the statushouder task
    monthly_max_share: list[float]  # per month end: highest share (neighbourhoods within the max on day 0)
    monthly_over: list[int]  # per month end: neighbourhoods above the mix maximum
    records: list[RoundRecord] = field(default_factory=list)


class World:
    """The state of one policy's run."""

    def __init__(self, year: Year, tables: Tables) -> None:
        self.year, self.t = year, tables
        n_c, n_u = year.n_cases, year.n_units
        self.case = np.zeros(n_c, dtype=np.int8)
        self.unit = np.zeros(n_u, dtype=np.int8)
        self.first_offer = np.full(n_c, np.nan)
        self.housed_day = np.full(n_c, np.nan)
        self.housed_unit = np.full(n_c, -1)
        self.unit_let = np.full(n_u, np.nan)
        self.unit_gone = np.full(n_u, np.nan)
        self.declined: dict[int, set[int]] = {}
        nbh_pos = {code: i for i, code in enumerate(tables.nbh_codes)}
        self.nbh_h = np.zeros(len(tables.nbh_codes), dtype=np.int64)
        self.nbh_g = np.zeros((len(tables.nbh_codes), len(GROUPS)), dtype=np.int64)
        self.nbh_described = np.ones(len(tables.nbh_codes), dtype=bool)  # H = 0 where no description
        for n in year.neighbourhoods:
            i = nbh_pos[n["code"]]
            self.nbh_described[i] = True
            self.nbh_h[i] = n["households"]
            for g, v in (n.get("group_counts") or {}).items():
                self.nbh_g[i, GROUPS.index(g)] = v
        self.nbh_muni = {u["neighbourhood"]: u["municipality"] for u in year.units}
        self.nbh_muni.update({n["code"]: n["municipality"] for n in year.neighbourhoods})
        cx_pos = {cid: i for i, cid in enumerate(tables.cx_ids)}
        self.cx_h = np.zeros(len(tables.cx_ids), dtype=np.int64)
        self.cx_g = np.zeros((len(tables.cx_ids), len(GROUPS)), dtype=np.int64)
        self.cx_nbh = {c["id"]: c["neighbourhood"] for c in year.complexes}
        for c in year.complexes:
            i = cx_pos[c["id"]]
            self.cx_h[i] = c["occupied"]
            for g, v in (c.get("group_counts") or {}).items():
                self.cx_g[i, GROUPS.index(g)] = v
        self.care_used = np.zeros(len(tables.entries), dtype=np.int64)  # offers out + accepted
        self.care_accepted = np.zeros(len(tables.entries), dtype=np.int64)
        mun_pos = {m: i for i, m in enumerate(tables.mun_codes)}
        self.quota_target = np.zeros(len(tables.mun_codes), dtype=np.int64)
        self.quota_has = np.zeros(len(tables.mun_codes), dtype=bool)
        for q in year.quota_targets:
            if q["group"] == "statushouder":
                self.quota_target[mun_pos[q["municipality"]]] = q["persons"]
                self.quota_has[mun_pos[q["municipality"]]] = True
        self.quota_persons = np.zeros((2, len(tables.mun_codes)), dtype=np.int64)
        self.answers: list[tuple[float, int, int, int]] = []  # (day, case, unit, half)
        self.offers = self.declines = 0
        self.hold_days, self.hold_below = 0.0, 0
        self.rules = [
            (r["scope"], np.array([g in r["groups"] for g in GROUPS]), round(float(r["max_share"]) * 10000))
            for r in year.policy.get("mix_rules") or []
        ]
        self._within_at_start = np.ones(len(tables.nbh_codes), dtype=bool)
        for scope, groups, s in self.rules:
            if scope == "neighbourhood":
                share = self.nbh_g[:, groups].sum(axis=1) / np.maximum(self.nbh_h, 1)
                self._within_at_start = share * 10000 <= s
                break
        # event pointers
        self._arr = np.argsort(year.arrive, kind="stable")
        self._vac = np.argsort(year.vacant, kind="stable")
        self._pa = self._pv = 0

    # ---------------------------------------------------------------- time
    def advance(self, day: float) -> None:
        y = self.year
        while self.answers and self.answers[0][0] <= day:
            at, c, u, half = heapq.heappop(self.answers)
            self._answer(at, c, u, half)
        while self._pa < len(self._arr) and y.arrive[self._arr[self._pa]] <= day:
            c = self._arr[self._pa]
            self._pa += 1
            if self.case[c] == NOT_YET:
                self.case[c] = WAITING
        while self._pv < len(self._vac) and y.vacant[self._vac[self._pv]] <= day:
            u = self._vac[self._pv]
            self._pv += 1
            if self.unit[u] == NOT_YET:
                self.unit[u] = VACANT
        gone = (self.case == WAITING) & (y.leave <= day)
        self.case[gone] = LEFT
        lapsed = (self.unit == VACANT) & (y.lapse <= day)
        self.unit[lapsed] = LAPSED
        self.unit_gone[lapsed] = y.lapse[lapsed]

    def next_event(self, after: float) -> float:
        """The next arrival, vacancy or answer strictly after `after` (inf if none)."""
        y, best = self.year, np.inf
        if self._pa < len(self._arr):
            best = min(best, float(y.arrive[self._arr[self._pa]]))
        if self._pv < len(self._vac):
            best = min(best, float(y.vacant[self._vac[self._pv]]))
        if self.answers:
            best = min(best, self.answers[0][0])
        return max(best, after)

    def _answer(self, at: float, c: int, u: int, half: int) -> None:
        if self.t.accepts[c, u]:
            self.case[c] = HOUSED
            self.unit[u] = LET
            self.housed_day[c] = at
            self.housed_unit[c] = u
            self.unit_let[u] = at
            self.unit_gone[u] = at
            for e in self._covered(c, u):
                self.care_accepted[e] += 1
            return
        self.declines += 1
        self._effects(c, u, -1, half)
        self.declined.setdefault(int(c), set()).add(int(u))
        self.case[c] = WAITING if self.year.leave[c] > at else LEFT
        if self.year.lapse[u] > at:
            self.unit[u] = VACANT
        else:
            self.unit[u] = LAPSED
            self.unit_gone[u] = at

    # ---------------------------------------------------------------- state
    def half(self, day: float) -> int:
        return 0 if day < HALF else 1

    def available(self, day: float) -> np.ndarray:
        accrued = np.floor(self.t.entry_slots * care_accrued(day) + 1e-9).astype(np.int64)
        return np.maximum(0, accrued - self.care_used)

    def _covered(self, c: int, u: int) -> list[int]:
        out = []
        for ti in np.flatnonzero(self.t.needs[c]):
            for e in (self.t.cover_nbh[ti, u], self.t.cover_mun[ti, u]):
                if e >= 0:
                    out.append(int(e))
        return out

    def _effects(self, c: int, u: int, sign: int, half: int) -> None:
        g = self.year.group_index[c]
        n = self.t.unit_nbh[u]
        self.nbh_h[n] += sign
        self.nbh_g[n, g] += sign
        x = self.t.unit_cx[u]
        if x >= 0:
            self.cx_h[x] += sign
            self.cx_g[x, g] += sign
        for e in self._covered(c, u):
            self.care_used[e] += sign
        m = self.t.unit_mun[u]
        if GROUPS[g] == "statushouder" and self.quota_has[m]:
            self.quota_persons[half, m] += sign * int(self.t.sizes[c])

    def offer(self, c: int, u: int, day: float) -> None:
        half = self.half(day)
        self.case[c] = PENDING
        self.unit[u] = PENDING
        if np.isnan(self.first_offer[c]):
            self.first_offer[c] = day
        self._effects(c, u, +1, half)
        self.offers += 1
        heapq.heappush(self.answers, (day + self.year.config.response_days, int(c), int(u), half))

    def priority(self, cases: np.ndarray, day: float) -> np.ndarray:
        base = np.array([self.year.cases[c]["priority"] for c in cases], dtype=np.int64)
        growth = self.year.config.priority_growth
        if growth:
            waited = np.maximum(0.0, day - self.year.arrive[cases])
            base = base + (growth * waited).astype(np.int64)
        return np.clip(base, 1, 1_000_000)

    def candidates(self, day: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Waiting cases, vacant units and their eligible pairs (rules 1-8 with today's care slots)."""
        w = np.flatnonzero(self.case == WAITING)
        v = np.flatnonzero(self.unit == VACANT)
        if len(w) == 0 or len(v) == 0:
            return w, v, np.zeros((len(w), len(v)), dtype=bool)
        mask = pair_mask(self.t, w, v, care_ok(self.t, self.available(day), v))
        mask &= ~self.held(day, w, v)
        if self.declined:
            col = {int(u): j for j, u in enumerate(v)}
            for i, c in enumerate(w):
                for u in self.declined.get(int(c), ()):
                    j = col.get(u)
                    if j is not None:
                        mask[i, j] = False
        return w, v, mask

    def held(self, day: float, cases: np.ndarray, units: np.ndarray) -> np.ndarray:
        """bool (cases x units): pairs the hold policy keeps back today — a household below `hold_below`
        gets a home only once the home has been vacant `hold_days` (an experiment; 0 = no hold)."""
        if self.hold_days <= 0 or len(cases) == 0 or len(units) == 0:
            return np.zeros((len(cases), len(units)), dtype=bool)
        low = self.priority(cases, day) < self.hold_below
        young = (day - self.year.vacant[units]) < self.hold_days
        return low[:, None] & young[None, :]

    def problem(self, day: float, cases: np.ndarray, units: np.ndarray) -> dict[str, Any]:
        """DOMAIN.md's problem for these waiting cases and vacant units, with today's counts and slots."""
        y, t = self.year, self.t
        prio = self.priority(cases, day)
        case_rows = []
        for c, p in zip(cases, prio, strict=True):
            row = dict(y.cases[c])
            row["priority"] = int(p)
            case_rows.append(row)
        unit_rows = [y.units[u] for u in units]
        nbhs = sorted({int(t.unit_nbh[u]) for u in units})
        neighbourhoods = []
        for n in nbhs:
            if not self.nbh_described[n]:
                continue
            code = t.nbh_codes[n]
            neighbourhoods.append(
                {
                    "code": code,
                    "municipality": self.nbh_muni[code],
                    "households": int(self.nbh_h[n]),
                    "group_counts": {
                        g: int(self.nbh_g[n, gi]) for gi, g in enumerate(GROUPS) if self.nbh_g[n, gi]
                    },
                }
            )
        complexes = []
        for x in sorted({int(t.unit_cx[u]) for u in units if t.unit_cx[u] >= 0}):
            cid = t.cx_ids[x]
            complexes.append(
                {
                    "id": cid,
                    "neighbourhood": self.cx_nbh[cid],
                    "occupied": int(self.cx_h[x]),
                    "group_counts": {
                        g: int(self.cx_g[x, gi]) for gi, g in enumerate(GROUPS) if self.cx_g[x, gi]
                    },
                }
            )
        avail = self.available(day)
        areas = {u["neighbourhood"] for u in unit_rows} | {u["municipality"] for u in unit_rows}
        care = [
            {"area": a, "care_type": ct, "slots": int(avail[e])}
            for e, (a, ct) in enumerate(t.entries)
            if a in areas
        ]
        half = self.half(day)
        muns = {u["municipality"] for u in unit_rows}
        quotas = [
            {
                "municipality": m,
                "group": "statushouder",
                "remaining_persons": int(max(0, self.quota_target[i] - self.quota_persons[half, i])),
            }
            for i, m in enumerate(t.mun_codes)
            if self.quota_has[i] and m in muns
        ]
        case_ids = {int(c) for c in cases}
        unit_ids = {int(u) for u in units}
        pairs = {
            (y.cases[c]["id"], y.units[u]["id"])
            for c, us in self.declined.items()
            if c in case_ids
            for u in us
            if u in unit_ids
        }
        held = self.held(day, cases, units)
        for i, j in zip(*np.nonzero(held & self.t.eligible[np.ix_(cases, units)]), strict=True):
            pairs.add((y.cases[cases[i]]["id"], y.units[units[j]]["id"]))
        forbidden = sorted(pairs)
        return {
            "region": y.region,
            "round_id": f"{y.region}-d{day:.3f}",
            "policy": dict(y.policy),
            "cases": sorted(case_rows, key=lambda r: r["id"]),
            "units": sorted(unit_rows, key=lambda r: r["id"]),
            "neighbourhoods": neighbourhoods,
            "complexes": complexes,
            "care_capacity": care,
            "quotas": quotas,
            "pinned": [],
            "forbidden": [{"case": c, "unit": u} for c, u in forbidden],
        }

    # ---------------------------------------------------------------- mix (status quo)
    def mix_blocked_at_start(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per rule: places (neighbourhoods, complexes) whose R < 0 at the start of the tick."""
        out = []
        for scope, _groups, s in self.rules:
            h, g = (self.nbh_h, self.nbh_g) if scope == "neighbourhood" else (self.cx_h, self.cx_g)
            gsum = g[:, _groups].sum(axis=1)
            out.append((s * h - 10000 * gsum < 0, gsum))
        return out

    def mix_allows(self, c: int, u: int, blocked: list[tuple[np.ndarray, np.ndarray]]) -> bool:
        g = self.year.group_index[c]
        for (scope, groups, s), (r_neg, _) in zip(self.rules, blocked, strict=True):
            if not groups[g]:
                continue
            if scope == "neighbourhood":
                x = self.t.unit_nbh[u]
                h, gs = int(self.nbh_h[x]), int(self.nbh_g[x, groups].sum())
                neg = bool(r_neg[x])
            else:
                x = self.t.unit_cx[u]
                if x < 0:
                    continue  # the home is in no complex: the complex rule does not apply
                h, gs = int(self.cx_h[x]), int(self.cx_g[x, groups].sum())
                neg = bool(r_neg[x])
            if neg or 10000 * (gs + 1) > s * (h + 1):
                return False
        return True

    def snapshot_mix(self) -> tuple[float, int]:
        """The highest share of the neighbourhood rule's groups among the neighbourhoods that were within
        the maximum on day 0 (those a policy can keep there or push over); how many of all are above it."""
        for scope, groups, s in self.rules:
            if scope != "neighbourhood":
                continue
            share = self.nbh_g[:, groups].sum(axis=1) / np.maximum(self.nbh_h, 1)
            governed = share[self._within_at_start & (self.nbh_h > 0)]
            return float(governed.max(initial=0.0)), int((share * 10000 > s).sum())
        return 0.0, 0


Progress = Callable[[float], None]


def _ticks(cadence: str, debounce: float) -> float:
    return {"daily": 1.0, "weekly": 7.0}.get(cadence, debounce)


def run_policy(
    year: Year,
    tables: Tables,
    policy: str,
    *,
    cadence: str = "daily",
    debounce_days: float = 1 / 96,
    time_limit_s: float = 5.0,
    record: bool = False,
    progress: Progress | None = None,
    hold_days: float = 0.0,
    hold_below: int = 0,
    plan: list[tuple[int, int]] | None = None,
) -> Outcome:
    """Run `policy` (`online`, `status_quo` or `replay`) over the year and return what happened.

    `replay` is no online policy: it knows the year. Every day it offers the pairs of `plan` (case, unit)
    whose household is waiting and whose home is vacant, and gives the homes no plan pair still waits for
    to households outside the plan, as the status quo would but only pairs that will be accepted.
    It keeps every rule of the simulator (care slots as they accrue, mix limits with pending offers,
    the answer delay, lapses), so its P is that of a real time-respecting allocation: a lower bound on
    the hindsight optimum.
    """
    from services.matcher.solver import solve_problem

    world = World(year, tables)
    world.hold_days, world.hold_below = hold_days, hold_below
    records: list[RoundRecord] = []
    monthly_share: list[float] = []
    monthly_over: list[int] = []
    rounds, solve_s = 0, 0.0
    day = 0.0
    step = 1.0 if policy == "status_quo" else _ticks(cadence, debounce_days)
    event_driven = policy == "online" and cadence == "change"
    next_month = DAYS / MONTHS
    while day <= DAYS:
        world.advance(day)
        while day >= next_month - 1e-9 and len(monthly_share) < MONTHS:
            share, over = world.snapshot_mix()
            monthly_share.append(share)
            monthly_over.append(over)
            next_month += DAYS / MONTHS
        w, v, mask = world.candidates(day)
        if mask.any():
            rows, cols = w[mask.any(axis=1)], v[mask.any(axis=0)]
            if policy == "online":
                problem = world.problem(day, rows, cols)
                result = solve_problem(
                    problem, time_limit_s=time_limit_s, workers=1, seed=0, deterministic=True
                )
                rounds += 1
                solve_s += float((result.get("stats") or {}).get("solve_seconds") or 0.0)
                if result["status"] == "INVALID_INPUT":
                    raise RuntimeError(f"the simulator built an invalid problem: {result['errors'][:3]}")
                case_pos = {year.cases[c]["id"]: int(c) for c in rows}
                unit_pos = {year.units[u]["id"]: int(u) for u in cols}
                pairs = [(a["case"], a["unit"]) for a in result["assignments"] if not a.get("pinned")]
                if record:
                    records.append(RoundRecord(day, problem, pairs, result))
                for cid, uid in pairs:
                    world.offer(case_pos[cid], unit_pos[uid], day)
            elif policy == "replay":
                problem = world.problem(day, w, v) if record else {}
                pairs = _replay_tick(world, day, w, v, mask, plan or [])
                rounds += 1
                if record:
                    records.append(RoundRecord(day, problem, pairs))
            else:
                problem = world.problem(day, w, v) if record else {}
                pairs = _status_quo_tick(world, day, w, v, mask)
                rounds += 1
                if record:
                    records.append(RoundRecord(day, problem, pairs))
        if progress:
            progress(min(day, DAYS))
        if event_driven:
            nxt = world.next_event(day + 1e-9)
            day = nxt + debounce_days if np.isfinite(nxt) else DAYS + 1
            if day > DAYS and day - debounce_days <= DAYS:
                day = DAYS
            elif day > DAYS:
                break
        else:
            day += step
    # Offers still out at the end are answered; nothing new is offered.
    world.advance(DAYS + year.config.response_days + 1)
    while len(monthly_share) < MONTHS:
        share, over = world.snapshot_mix()
        monthly_share.append(share)
        monthly_over.append(over)
    return Outcome(
        policy=policy if policy != "online" else f"wijkmatch_{cadence}",
        first_offer=world.first_offer,
        housed_day=world.housed_day,
        housed_unit=world.housed_unit,
        unit_let=world.unit_let,
        unit_gone=world.unit_gone,
        offers=world.offers,
        declines=world.declines,
        rounds=rounds,
        solve_seconds=solve_s,
        care_used=world.care_accepted,
        quota_persons=world.quota_persons,
        monthly_max_share=monthly_share,
        monthly_over=monthly_over,
        records=records,
    )


def _status_quo_tick(
    world: World,
    day: float,
    w: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray,
    unit_order: np.ndarray | None = None,
) -> list[tuple[str, str]]:
    """Each vacant home (oldest vacancy first, or `unit_order`: positions in v) to the highest-priority
    eligible waiting household."""
    y = world.year
    prio = world.priority(w, day)
    # rank: priority desc, then longest waiting, then index (a deterministic order)
    order = np.lexsort((w, y.arrive[w], -prio))
    rank = np.empty(len(w), dtype=int)
    rank[order] = np.arange(len(w))
    taken = np.zeros(len(w), dtype=bool)
    blocked = world.mix_blocked_at_start()
    start_avail = world.available(day)
    used_now = np.zeros_like(start_avail)
    pairs = []
    for j in np.argsort(y.vacant[v], kind="stable") if unit_order is None else unit_order:
        u = int(v[j])
        col = mask[:, j] & ~taken
        if not col.any():
            continue
        for i in np.flatnonzero(col)[np.argsort(rank[col], kind="stable")]:
            c = int(w[i])
            cover = world._covered(c, u)
            if any(start_avail[e] - used_now[e] <= 0 for e in cover):
                continue
            if not world.mix_allows(c, u, blocked):
                continue
            for e in cover:
                used_now[e] += 1
            taken[i] = True
            world.offer(c, u, day)
            pairs.append((y.cases[c]["id"], y.units[u]["id"]))
            break
    return pairs


def _replay_tick(
    world: World, day: float, w: np.ndarray, v: np.ndarray, mask: np.ndarray, plan: list[tuple[int, int]]
) -> list[tuple[str, str]]:
    """The plan's pairs that can start today, and clairvoyant status-quo offers outside the plan.

    A household or home of a plan pair whose partner may still come (waiting / not yet vacant) is kept
    for that partner; everything else may go to pairs that will be accepted. The two sets share no
    household and no home, so one status-quo pass (care and mix checked as it offers) does both."""
    unit_of = dict(plan)
    case_of = {u: c for c, u in plan}
    keep_case = np.array(
        [int(c) in unit_of and world.unit[unit_of[int(c)]] in (NOT_YET, VACANT) for c in w], dtype=bool
    )
    keep_unit = np.array(
        [int(u) in case_of and world.case[case_of[int(u)]] in (NOT_YET, WAITING) for u in v], dtype=bool
    )
    planned = np.zeros_like(mask)
    row = {int(c): i for i, c in enumerate(w)}
    for j, u in enumerate(v):
        i = row.get(case_of.get(int(u), -1))
        if i is not None:
            planned[i, j] = mask[i, j]
    fill = mask & world.t.accepts[np.ix_(w, v)] & ~keep_case[:, None] & ~keep_unit[None, :]
    # Order: plan pairs whose household is outside every mix rule's groups first (they make room under
    # the mix rules for the others the same day), then by the day the pair's window closes.
    y = world.year
    in_rules = np.zeros(len(GROUPS), dtype=bool)
    for _scope, groups, _s in world.rules:
        in_rules |= groups
    planned_case = np.array([case_of.get(int(u), -1) for u in v])
    mixed = np.array([c >= 0 and bool(in_rules[y.group_index[c]]) for c in planned_case])
    closes = np.where(planned_case >= 0, np.minimum(y.leave[np.maximum(planned_case, 0)], y.lapse[v]), np.inf)
    order = np.lexsort((y.vacant[v], closes, mixed, planned_case < 0))
    return _status_quo_tick(world, day, w, v, planned | fill, unit_order=order)


def care_type_names() -> tuple[str, ...]:
    return CARE_TYPES
