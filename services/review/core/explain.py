"""Turns a match.proposed payload into the plain-language explanation staff read before deciding.

The matcher's `explanation` is a list of lines (docs/solver.md, "Explanations"): its priority, each fit
part with its reason, each care entry the pair draws on, each mix rule of the home's neighbourhood or
complex, the quota it counts towards. This module sorts those lines into the questions staff ask — why
this household, why this home, which rules bound. The optional context fields (group, eligible homes,
rank and the other candidates by id and rank) add the household's place in the competition for the home;
`unplaced_view` puts a round's unplaced households in words. What an event does not carry (always the
parts of the priority; for older events also the context) is said plainly, so nobody mistakes a missing
part for a zero. It shows ids, codes and numbers only.
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
    competition: str = ""  # this household's place among all households eligible for the home
    candidates: list[Part] = field(default_factory=list)  # the other households: id and rank only


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

# What wijkmatch never knows, and what older match.proposed events (before the optional context fields)
# do not carry; shown so staff know the limits of the explanation.
PRIORITY_PARTS_UPSTREAM = (
    "The parts of the priority (urgency class, waiting time, deadline) are set upstream by the referrer; "
    "wijkmatch receives only their result, the priority number."
)
NO_ELIGIBILITY = "How many homes this household was eligible for is not part of this (older) proposal event."
NO_CANDIDATES = "The other candidate households for this home are not part of this (older) proposal event."
NO_GROUP = "The household's target group is not part of this (older) proposal event."

GROUP_WORDS = {
    "homeless": "(threatened) homeless: one of the urgent groups of the national housing agenda",
    "institution_leaver": "leaving a care or shelter institution: one of the urgent groups",
    "statushouder": "refugee with a residence permit (statushouder): one of the urgent groups",
    "labour_migrant": "labour migrant: one of the urgent groups",
    "elderly": "elderly: the target group of clustered homes",
    "regular": "regular house-seeker",
}

# round.completed's reason codes (DOMAIN.md "Result") in plain words.
UNPLACED_REASON_WORDS = {
    "no_eligible_unit": "no home in the round passes the hard rules for this household",
    "care_capacity": "the care it needs had no slots left where suitable homes were",
    "mix_rule": "the neighbourhood mix limit was reached where suitable homes were",
    "quota": "suitable homes went to households that count towards a municipal quota",
    "outranked": "suitable homes went to households with a stronger claim overall",
}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _homes(n: int) -> str:
    return f"{n} home" if n == 1 else f"{n} homes"


def _competition(proposal: Mapping[str, Any]) -> tuple[str, list[Part]]:
    rank, total = proposal.get("rank"), proposal.get("eligible_households")
    candidates = proposal.get("candidates")
    if candidates is None:
        return "", []
    text = ""
    if rank is not None and total is not None:
        if total == 1:
            text = "No other household in this round was eligible for this home."
        else:
            text = (
                f"This household ranks {_ordinal(int(rank))} by priority of the {total} households for which "
                "this home was eligible (1st = most urgent; equal priorities share a rank)."
            )
            others = int(total) - 1
            if others > len(candidates):
                text += f" The {len(candidates)} highest-ranked of the {others} others are listed."
    parts = [
        Part(
            f"Household {c['case']}",
            f"rank {c['rank']}",
            "ranked above this household by priority"
            if rank is not None and int(c["rank"]) < int(rank)
            else "ranked level with this household"
            if rank is not None and int(c["rank"]) == int(rank)
            else "ranked below this household by priority",
        )
        for c in candidates
    ]
    return text, parts


def unplaced_view(
    unplaced: Sequence[Mapping[str, Any]] | None, unplaced_by_reason: Mapping[str, int], listed: int | None
) -> tuple[str, list[dict[str, Any]]]:
    """The unplaced households of a round in plain words: a sentence on what is listed, and the rows.

    `unplaced`: the entries to show (a slice); `listed`: how many the round.completed event listed in
    all (None: the event did not carry the list).
    """
    total = sum(int(n) for n in unplaced_by_reason.values())
    if total == 0:
        return "No household was left unplaced in this round.", []
    if listed is None or unplaced is None:
        return (
            f"{total} household(s) were left unplaced; this (older) round event gives their numbers by "
            "reason only, not the households.",
            [],
        )
    rows = [
        {
            "case": u["case"],
            "reason": u["reason"],
            "reason_words": UNPLACED_REASON_WORDS.get(u["reason"], u["reason"]),
            "eligible_units": u.get("eligible_units"),
        }
        for u in unplaced
    ]
    if listed >= total:
        text = f"All {total} unplaced household(s), most urgent first."
    else:
        text = (
            f"The {listed} most urgent of {total} unplaced households are listed (the round event holds at "
            "most 10,000, and fewer when it would grow too large); the counts by reason cover all of them."
        )
    if len(rows) < listed:
        text += f" Shown here: {len(rows)}."
    return text, rows


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
    not_given = [PRIORITY_PARTS_UPSTREAM]
    group = proposal.get("group")
    if group is not None:
        household.append(Part("Target group", str(group), GROUP_WORDS.get(str(group), str(group))))
    else:
        not_given.append(NO_GROUP)
    eligible = proposal.get("eligible_units")
    if eligible is not None:
        household.append(
            Part(
                "Homes it was eligible for",
                _homes(int(eligible)),
                f"{_homes(int(eligible))} in this round passed the hard rules for this household (group, "
                "size, accessibility, rent, municipality, excluded neighbourhoods, care available, not "
                "excluded by staff)",
            )
        )
    else:
        not_given.append(NO_ELIGIBILITY)
    competition, candidates = _competition(proposal)
    if proposal.get("candidates") is None:
        not_given.append(NO_CANDIDATES)
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
    return Explanation(household, home, rules, other, not_given, summary, competition, candidates)
