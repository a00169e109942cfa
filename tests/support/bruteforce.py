"""Exhaustive optimum of tiny DOMAIN.md problems: enumerate every feasible solution.

Independent of the solver (imports only tests.support.checker). Meant for property tests
on instances of at most 7 cases and 5 units, where the number of partial matchings is at
most a few thousand.
"""

from __future__ import annotations

from collections.abc import Iterator

from tests.support.checker import Pair, Problem, eligible_pairs, evaluate, parse_problem, side_violations

MAX_CASES = 7
MAX_UNITS = 5


def matchings(p: Problem) -> Iterator[list[Pair]]:
    """Every set of new eligible pairs (each case and unit at most once), pins excluded."""
    options: dict[str, list[str]] = {c: [] for c in p.cases if c not in p.pinned_cases}
    for c, u in eligible_pairs(p):
        options[c].append(u)
    cases = [c for c in options if options[c]]

    def extend(i: int, used: frozenset[str], chosen: list[Pair]) -> Iterator[list[Pair]]:
        if i == len(cases):
            yield list(chosen)
            return
        yield from extend(i + 1, used, chosen)
        c = cases[i]
        for u in options[c]:
            if u not in used:
                chosen.append((c, u))
                yield from extend(i + 1, used | {u}, chosen)
                chosen.pop()

    yield from extend(0, frozenset(), [])


def feasible_solutions(problem: dict | Problem) -> Iterator[list[Pair]]:
    """Every feasible solution as its list of new pairs (the pins are implied)."""
    p = parse_problem(problem)
    if len(p.cases) > MAX_CASES or len(p.units) > MAX_UNITS:
        raise ValueError(f"brute force is for <= {MAX_CASES} cases and <= {MAX_UNITS} units")
    for new_pairs in matchings(p):
        if not side_violations(p, new_pairs):
            yield new_pairs


def brute_force_solution(problem: dict | Problem) -> tuple[int, int, list[Pair]]:
    """(best P, best F among best-P solutions, one such solution's new pairs)."""
    p = parse_problem(problem)
    best: tuple[int, int] | None = None
    best_pairs: list[Pair] = []
    for new_pairs in feasible_solutions(p):
        priority, _, fit_total = evaluate(p, new_pairs)
        if best is None or (priority, fit_total) > best:
            best, best_pairs = (priority, fit_total), new_pairs
    assert best is not None, "the pins alone are always a solution"
    return best[0], best[1], best_pairs


def brute_force(problem: dict | Problem) -> tuple[int, int]:
    """Lexicographic optimum (P, then F) over all feasible solutions, pins included."""
    best_p, best_f, _ = brute_force_solution(problem)
    return best_p, best_f
