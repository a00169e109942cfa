"""How to solve: the one parameter class from the matcher's round settings down to the engines.

Kept apart from the engines (and importable without loading any solver): the matcher builds it in its
main process, records `as_dict()` with every round and hands that to `solve_problem` in a worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class SolveParams:
    """None means the default: time limit and seed from the problem's policy, min(2, CPUs) workers."""

    time_limit_s: float | None = None
    workers: int | None = None
    seed: int | None = None
    deterministic: bool = False
    # Issue 15: the previous round's new pairs, [case id, unit id], as a warm start and as the stability
    # tie-break among solutions equal in P and F. It is part of a round's recorded parameters, so a replay
    # solves with the same hint (the problem file, DOMAIN.md's contract, is unchanged).
    previous: tuple[tuple[str, str], ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The keyword arguments of `solve_problem` (also what a round records as its parameters).

        `previous` appears only when given, so rounds recorded before it existed replay unchanged.
        """
        out: dict[str, Any] = {
            "time_limit_s": self.time_limit_s,
            "workers": self.workers,
            "seed": self.seed,
            "deterministic": self.deterministic,
        }
        if self.previous is not None:
            out["previous"] = [list(pair) for pair in self.previous]
        return out

    def resolved(self, policy_time_limit_s: float, policy_seed: int) -> SolveParams:
        """Every default filled in (what the engines and the result's stats see)."""
        return replace(
            self,
            time_limit_s=policy_time_limit_s if self.time_limit_s is None else float(self.time_limit_s),
            workers=self.workers or min(DEFAULT_WORKERS, os.cpu_count() or 1),
            seed=policy_seed if self.seed is None else self.seed,
        )
