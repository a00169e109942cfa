"""Replay: re-solve a recorded round's exact problem with its recorded parameters and compare."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from services.matcher.pool.problem import sha256_text
from services.matcher.rounds.summary import comparable


@dataclass
class ReplayOutcome:
    round_id: str
    identical: bool
    sha_ok: bool
    recorded: dict[str, Any]
    replayed: dict[str, Any]
    reproducible_by: str
    # What solved the round and what solved it again (rounds/worker.versions(): OR-Tools, and wijkmatch with
    # the solver's source revision); None where the round's row has no record of it.
    recorded_versions: dict[str, str | None] = field(default_factory=dict)
    replayed_versions: dict[str, str | None] = field(default_factory=dict)

    def version_changes(self) -> list[str]:
        """The recorded versions that differ from this process's (a round recorded before versions were
        kept is not reported: there is nothing to compare)."""
        return [
            f"{name} {self.recorded_versions[name]} -> {self.replayed_versions.get(name)}"
            for name in sorted(self.recorded_versions)
            if self.recorded_versions[name] is not None
            and self.recorded_versions[name] != self.replayed_versions.get(name)
        ]

    def differences(self) -> list[str]:
        out = []
        if not self.sha_ok:
            out.append("the stored problem no longer matches its recorded SHA-256")
        changed = self.version_changes()
        recorded = self.recorded_versions.get("wijkmatch")
        if changed and not self.identical and recorded is not None and "+solver." not in recorded:
            out.append(
                f"the round was recorded without a solver revision (wijkmatch {recorded}): whether other "
                "code solved it cannot be told"
            )
        elif changed and not self.identical:
            out.append(
                "solved by other code than the recorded round (" + "; ".join(changed) + "): a replay is "
                "only expected to be identical on the code that recorded it"
            )
        a, b = self.recorded, self.replayed
        if a["status"] != b["status"]:
            out.append(f"status {a['status']} -> {b['status']}")
        if a["objective"] != b["objective"]:
            out.append(f"objective {a['objective']} -> {b['objective']}")
        only_a = sorted(set(map(tuple, a["pairs"])) - set(map(tuple, b["pairs"])))
        only_b = sorted(set(map(tuple, b["pairs"])) - set(map(tuple, a["pairs"])))
        if only_a or only_b:
            out.append(f"{len(only_a)} recorded pairs missing, {len(only_b)} new pairs")
        return out


def reproducible_by(parameters: dict[str, Any], result: dict[str, Any]) -> str:
    """Why a replay should be identical: deterministic mode, or both stages proven optimal (or neither)."""
    if parameters.get("deterministic"):
        return "deterministic"
    if result.get("status") == "OPTIMAL":
        return "proven_optimal"
    return "not_guaranteed"


def replay_round(row: dict[str, Any]) -> ReplayOutcome:
    """`row`: the rounds table row (problem text, problem_sha256, parameters, result). Solves in-process."""
    from services.matcher.rounds.worker import versions
    from services.matcher.solver import solve_problem

    problem_text: str = row["problem"]
    problem = json.loads(problem_text)
    parameters = dict(row["parameters"])
    replayed = solve_problem(problem, **parameters)
    recorded = row["result"] or {}
    return ReplayOutcome(
        round_id=row["id"],
        identical=comparable(recorded) == comparable(replayed),
        sha_ok=sha256_text(problem_text) == row["problem_sha256"],
        recorded=comparable(recorded),
        replayed=comparable(replayed),
        reproducible_by=reproducible_by(parameters, recorded),
        recorded_versions={
            "ortools": row.get("ortools_version"),
            "wijkmatch": row.get("wijkmatch_version"),
        },
        replayed_versions=dict(versions()),
    )
