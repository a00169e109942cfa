"""Turns a match.proposed payload into the plain-language explanation staff read before deciding.

The matcher's `explanation` is a list of lines (docs/solver.md, "Explanations"): its priority, each fit
part with its reason, each care entry the pair draws on, each mix rule of the home's neighbourhood or
complex, the quota it counts towards. This module sorts those lines into the questions staff ask — why
this household, why this home, which rules bound — and says plainly what the proposal does not tell
(so nobody mistakes a missing part for a zero). It shows ids, codes and numbers only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_PRIORITY = 1_000_000


@dataclass(frozen=True)
class Part:
    label: str
    value: str
    text: str


@dataclass(frozen=True)
class Explanation:
    household: list[Part] = field(default_factory=list)
    home: list[Part] = field(default_factory=list)
    rules: list[Part] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    not_given: list[str] = field(default_factory=list)
    summary: str = ""


_FIT = re.compile(r"^(preference|size|accessibility) ([+-]?\d+): (.+)$")
_PRIORITY = re.compile(r"^priority (\d+)$")
_CARE = re.compile(r"^uses 1 of (\d+) `([^`]+)` care slots in (\S+) \((\d+) in use after this round\)$")
_MIX_IN = re.compile(r"^new (.+) share in (\S+) after this round: ([\d.]+) % of max ([\d.]+) %$")
_MIX_OUT = re.compile(
    r"^adds a household outside (.+) to (\S+) "
    r"\(.+ share there after this round: ([\d.]+) % of max ([\d.]+) %\)$"
)
_QUOTA = re.compile(r"^counts (\d+) person\(s\) towards the (\S+) quota of (\S+): (\d+) of (\d+) remaining")
_PINNED = re.compile(r"^pinned:")

FIT_LABELS = {
    "preference": "Preferred neighbourhood",
    "size": "Size of the home for the household",
    "accessibility": "Accessibility",
}

# What match.proposed (EVENTS.md v1) does not carry; shown so staff know the limits of the explanation.
NOT_IN_CONTRACT = (
    "The parts of the priority (urgency class, waiting time, deadline) are set upstream by the referrer; "
    "the proposal carries only their result.",
    "How many homes this household was eligible for, and the other candidate households for this home, "
    "are not part of the proposal event yet.",
)


def _priority_words(priority: int) -> str:
    share = priority / MAX_PRIORITY
    if share >= 0.75:
        band = "very high urgency"
    elif share >= 0.5:
        band = "high urgency"
    elif share >= 0.25:
        band = "moderate urgency"
    else:
        band = "lower urgency"
    return f"{band}: {priority:,} of at most {MAX_PRIORITY:,} points".replace(",", " ")


def explain(proposal: Mapping[str, Any]) -> Explanation:
    """The explanation of one proposal (keys as in match.proposed: priority, fit, explanation)."""
    priority = int(proposal.get("priority") or 0)
    fit: Mapping[str, Any] = proposal.get("fit") or {}
    lines: Sequence[str] = proposal.get("explanation") or []
    household = [
        Part(
            "Priority",
            f"{priority:,}".replace(",", " "),
            "How urgently this household needs a home, " + _priority_words(priority),
        )
    ]
    home: list[Part] = []
    rules: list[Part] = []
    other: list[str] = []
    fit_seen: set[str] = set()
    for line in lines:
        if _PRIORITY.match(line):
            continue  # the number is shown above, with words
        if m := _FIT.match(line):
            name, points, reason = m.groups()
            fit_seen.add(name)
            home.append(Part(FIT_LABELS[name], f"{int(points):+d} points", reason))
        elif m := _CARE.match(line):
            slots, care, area, used = m.groups()
            left = max(0, int(slots) - int(used))
            rules.append(
                Part(
                    f"Care: {care} in {area}",
                    f"{left} of {slots} slots left",
                    f"this match uses 1 of {slots} {care} care slots in {area}; {used} are in use after "
                    "this round",
                )
            )
        elif m := _MIX_IN.match(line):
            groups, place, share, limit = m.groups()
            rules.append(
                Part(
                    f"Neighbourhood mix in {place}",
                    f"{share} % of max {limit} %",
                    f"the share of {groups} households in {place} after this match is {share} %; "
                    f"the maximum is {limit} %",
                )
            )
        elif m := _MIX_OUT.match(line):
            groups, place, share, limit = m.groups()
            rules.append(
                Part(
                    f"Neighbourhood mix in {place}",
                    f"{share} % of max {limit} %",
                    f"this household is not in the {groups} groups, so it lowers their share in {place} "
                    f"({share} % after this round; the maximum is {limit} %)",
                )
            )
        elif m := _QUOTA.match(line):
            persons, group, municipality, filled, remaining = m.groups()
            household.append(
                Part(
                    f"Municipal quota ({group}, {municipality})",
                    f"{filled} of {remaining} persons",
                    f"counts {persons} person(s) towards the {group} quota of {municipality}; {filled} of "
                    f"the {remaining} remaining persons are filled after this round",
                )
            )
        elif _PINNED.match(line):
            other.append(line)
        else:
            other.append(line)
    for name in ("preference", "size", "accessibility"):
        if name not in fit_seen and name in fit:
            points = int(fit[name])
            reason = "no effect on the fit" if points == 0 else "the matcher gave no reason for this part"
            home.append(Part(FIT_LABELS[name], f"{points:+d} points", reason))
    total = fit.get("total")
    if total is not None:
        home.append(Part("Fit in total", f"{int(total)} points", "the sum of the parts above"))
    summary = (
        f"Household {proposal.get('case')} ({_priority_words(priority)}) for home {proposal.get('unit')}"
        + (f", fit {int(total)} points" if total is not None else "")
        + (f"; {len(rules)} rule(s) bound this match" if rules else "")
        + "."
    )
    return Explanation(household, home, rules, other, list(NOT_IN_CONTRACT), summary)
