"""The review parser knows every explanation line the solver actually writes (a contract test between
services/matcher/solver/explain.py and services/review/core/explain.py): nothing falls into "other"."""

from __future__ import annotations

from devstack.generate import generate_problem
from services.matcher.solver import solve_problem
from services.review.core.explain import explain


def test_every_solver_explanation_line_is_understood() -> None:
    seen_rules = seen_quota = 0
    for seed in (1, 2, 3):
        problem = generate_problem(60, 40, seed=seed)
        problem["policy"]["quota_bonus"] = 25_000
        result = solve_problem(problem, time_limit_s=10, workers=1)
        assert result["assignments"], "the generated problem placed nobody"
        for a in result["assignments"]:
            e = explain({"case": a["case"], "unit": a["unit"], **a})
            assert e.other == [] or all(line.startswith("pinned:") for line in e.other), e.other
            seen_rules += len(e.rules)
            seen_quota += len(e.household) - 1
    assert seen_rules > 0  # care and mix lines were there to parse
    assert seen_quota > 0  # and quota lines
