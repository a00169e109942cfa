"""A simulated year of arrivals for one region, deterministic by seed (docs/lab.md).

The region itself (municipalities, neighbourhoods with their households and group counts, complexes,
units, cases, care teams, statushouder tasks, mix rules) comes from the project generator
(`devstack.generate`, profile `region`), so the households and homes look like the ones every other
benchmark uses. This module adds time to it:

- cases arrive by a Poisson process per group (a backlog share is already waiting on day 0), each with
  a base priority (urgency class + deadline pressure), and leave the list unhoused after an
  exponential time (they find something else, move away, their situation changes);
- vacancies: regular homes come free one by one (turnover); flex and clustered projects are delivered
  whole (every unit of a new complex on the same day) or come free one by one; a home nobody took is
  let through the regular route after `lapse_days`;
- care capacity: each care entry's yearly intake accrues over the year with a quarterly factor (the
  capacity changes), starting with a stock;
- statushouder tasks per municipality per half year;
- acceptance: whether household c accepts home u is fixed per pair by a hash of (seed, c, u) against
  p_accept(fit), so every policy and the hindsight optimum see the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devstack.generate import generate_problem
from schemas import entities

GROUPS = entities.GROUPS
URGENT = entities.URGENT_GROUPS
DAYS = 365.0
HALF = DAYS / 2
# Quarterly factor on care intake (e.g. summer staffing): the care capacity "changes" over the year.
CARE_QUARTER_FACTOR = (1.0, 0.75, 1.1, 1.15)
CARE_INITIAL_STOCK = 0.12  # share of the year's intake free on day 0


@dataclass(frozen=True)
class YearConfig:
    cases: int = 5000
    units: int = 2000
    seed: int = 1
    backlog: float = 0.2  # share of the cases already waiting on day 0
    mean_stay_days: float = 180.0  # mean time a household stays on the list unhoused
    lapse_days: float = 28.0  # a vacancy nobody took is let through the regular route after this
    response_days: float = 7.0  # proposal -> review -> offer -> answer
    project_delivery: float = 0.5  # share of flex/clustered complexes delivered whole on one day
    priority_growth: int = 0  # priority points per day waited (0 = the region's policy has none)
    accept_base: float = 0.6  # p_accept = clip(base + slope * fit, lo, hi)
    accept_slope: float = 0.004
    accept_lo: float = 0.35
    accept_hi: float = 0.95
    max_share: float | None = None  # override the neighbourhood mix maximum (what-if on the year)
    quota_bonus: int | None = None


@dataclass
class Year:
    config: YearConfig
    region: str
    cases: list[dict[str, Any]]  # DOMAIN.md case rows (priority = base priority)
    units: list[dict[str, Any]]
    neighbourhoods: list[dict[str, Any]]  # day-0 descriptions
    complexes: list[dict[str, Any]]
    care_entries: list[dict[str, Any]]  # {area, care_type, slots = the year's intake}
    quota_targets: list[dict[str, Any]]  # {municipality, group, persons} per half year
    policy: dict[str, Any]
    arrive: np.ndarray  # per case, day (backlog: <= 0)
    leave: np.ndarray  # per case, day it leaves the list unhoused
    vacant: np.ndarray  # per unit, day it comes free
    lapse: np.ndarray  # per unit, day it is let outside wijkmatch if still vacant
    group_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    kind_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def n_cases(self) -> int:
        return len(self.cases)

    @property
    def n_units(self) -> int:
        return len(self.units)

    def care_accrued(self, day: float) -> float:
        """Share of the year's care intake released by `day` (stock + quarterly-weighted accrual)."""
        return care_accrued(day)


def care_accrued(day: float) -> float:
    f = np.asarray(CARE_QUARTER_FACTOR, dtype=float)
    f = f / f.sum()
    q = min(max(day, 0.0), DAYS) / (DAYS / 4)
    whole = int(min(q, 4))
    done = float(f[:whole].sum()) + (float(f[whole]) * (q - whole) if whole < 4 else 0.0)
    return CARE_INITIAL_STOCK + (1.0 - CARE_INITIAL_STOCK) * done


def _mix(a: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over uint64 arrays (wraps on overflow, as intended)."""
    z = a.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def pair_uniform(seed: int, case_idx: np.ndarray, unit_idx: np.ndarray) -> np.ndarray:
    """A fixed uniform draw in [0, 1) per (case, unit) pair of the year (the household's answer)."""
    c = np.asarray(case_idx, dtype=np.uint64)
    u = np.asarray(unit_idx, dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = _mix(_mix(np.full(c.shape, seed, dtype=np.uint64) ^ c) + u * np.uint64(0x2545F4914F6CDD1D))
    return (key >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def accept_probability(config: YearConfig, fit: np.ndarray) -> np.ndarray:
    fit = np.asarray(fit, dtype=float)
    return np.clip(config.accept_base + config.accept_slope * fit, config.accept_lo, config.accept_hi)


def make_year(config: YearConfig) -> Year:
    """The year for `config` (the same config always gives the same year)."""
    base = generate_problem(config.cases, config.units, config.seed, "region")
    rng = np.random.default_rng([config.seed, 11])
    n_c, n_u = len(base["cases"]), len(base["units"])
    cases = base["cases"]
    # Base priority: urgency class (A 600k, B 300k, C 0) + deadline pressure + a tie-breaking jitter.
    # Waiting time is not in it: the simulation adds `priority_growth` per day waited when asked.
    urgency = rng.choice(3, size=n_c, p=(0.2, 0.45, 0.35))
    deadline = rng.random(n_c) < 0.3
    prio = np.array([600_000, 300_000, 0])[urgency] + deadline * rng.uniform(0, 50_000, n_c)
    prio = np.clip(prio + rng.integers(1000, 20_000, n_c), 1, 1_000_000).astype(int)
    for i, row in enumerate(cases):
        row["priority"] = int(prio[i])
    # Arrivals: a backlog already waiting (arrived up to 180 days ago), the rest uniformly over the year
    # with a mild seasonal wave (statushouders arrive in waves after permits are granted).
    group_index = np.array([GROUPS.index(c["group"]) for c in cases], dtype=int)
    backlog = rng.random(n_c) < config.backlog
    t = rng.uniform(0.0, DAYS, n_c)
    wave = group_index == GROUPS.index("statushouder")
    t[wave] = (rng.beta(2.0, 2.0, int(wave.sum())) * DAYS + rng.choice([0.0, HALF], int(wave.sum()))) % DAYS
    arrive = np.where(backlog, -rng.uniform(0.0, 180.0, n_c), t)
    stay = rng.exponential(config.mean_stay_days, n_c)
    leave = np.where(backlog, rng.exponential(config.mean_stay_days, n_c), arrive + stay)
    leave = np.maximum(leave, np.maximum(arrive, 0.0) + 1.0)
    # Vacancies: projects delivered whole or units coming free one by one.
    units = base["units"]
    kind_index = np.array([("flex", "clustered", "regular").index(u["kind"]) for u in units], dtype=int)
    vacant = rng.uniform(0.0, DAYS, n_u)
    complexes = sorted({u["complex"] for u in units if u["complex"] and u["kind"] != "regular"})
    delivered = {
        cx: float(rng.uniform(0.0, DAYS - 30)) for cx in complexes if rng.random() < config.project_delivery
    }
    for i, u in enumerate(units):
        if u["complex"] in delivered:
            vacant[i] = delivered[u["complex"]]
    lapse = vacant + config.lapse_days
    policy = dict(base["policy"])
    policy["mix_rules"] = [dict(r) for r in policy["mix_rules"]]
    if config.max_share is not None:
        for r in policy["mix_rules"]:
            if r["scope"] == "neighbourhood":
                r["max_share"] = config.max_share
    if config.quota_bonus is not None:
        policy["quota_bonus"] = config.quota_bonus
    policy["time_limit_s"] = 5
    quota_targets = [
        {"municipality": q["municipality"], "group": q["group"], "persons": int(q["remaining_persons"])}
        for q in base["quotas"]
    ]
    return Year(
        config=config,
        region=f"sim-{config.seed}",
        cases=cases,
        units=units,
        neighbourhoods=base["neighbourhoods"],
        complexes=base["complexes"],
        care_entries=base["care_capacity"],
        quota_targets=quota_targets,
        policy=policy,
        arrive=arrive,
        leave=leave,
        vacant=vacant,
        lapse=lapse,
        group_index=group_index,
        kind_index=kind_index,
    )
