"""Replay: re-solve a recorded round's exact problem with its recorded parameters and compare."""

from __future__ import annotations

import json
from dataclasses import dataclass
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

    def differences(self) -> list[str]:
        out = []
        if not self.sha_ok:
            out.append("the stored problem no longer matches its recorded SHA-256")
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
    )
