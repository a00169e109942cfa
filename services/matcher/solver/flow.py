"""Exact lexicographic (P, then F) assignment by min-cost flow, for problems without binding side rows."""

from __future__ import annotations

import numpy as np
from ortools.graph.python import min_cost_flow

from services.matcher.solver.compile import Compiled
from services.matcher.solver.fit import MAX_PAIR_FIT, MIN_PAIR_FIT

# OR-Tools min-cost flow refuses costs whose size times (nodes + 1) overflows 64 bits (BAD_COST_RANGE).
FLOW_COST_LIMIT = 1 << 62


def lexicographic_weights(comp: Compiled, p_weight: np.ndarray) -> np.ndarray:
    """w = P-weight · M + fit with M larger than any possible difference in total fit: exact lexicography.

    With a previous round's assignment (issue 15), w · (max_pairs + 1) + kept: among equal (P, F) the most
    pairs kept from the previous round — a third stage that cannot change P or F. Left out when the
    larger weights would not fit the flow solver's cost range (then ties fall as without a hint).
    """
    scale = (MAX_PAIR_FIT - MIN_PAIR_FIT) * comp.max_pairs + 1
    w = p_weight.astype(np.int64) * scale + comp.fit
    return keep_previous(comp, w)


def keep_previous(comp: Compiled, w: np.ndarray) -> np.ndarray:
    """`w` with the previous round's pairs first among equal totals (see lexicographic_weights)."""
    if comp.previous is None or len(w) == 0:
        return w
    step = comp.max_pairs + 1
    if int(np.abs(w).max()) * step * (len(comp.cases) + len(comp.units) + 2) >= FLOW_COST_LIMIT:
        return w
    return w * step + comp.previous.astype(np.int64)


def max_weight_matching(comp: Compiled, weights: np.ndarray) -> np.ndarray:
    """Usable pair indices of a maximum-weight matching (weights must be positive)."""
    n_c, n_u, n = len(comp.cases), len(comp.units), comp.n_pairs
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    source, sink = n_c + n_u, n_c + n_u + 1
    smcf = min_cost_flow.SimpleMinCostFlow()
    case_nodes = np.arange(n_c, dtype=np.int64)
    unit_nodes = n_c + np.arange(n_u, dtype=np.int64)
    tails = np.concatenate([np.full(n_c, source), comp.pc, unit_nodes, [source]])
    heads = np.concatenate([case_nodes, n_c + comp.pu, np.full(n_u, sink), [sink]])
    caps = np.concatenate([np.ones(n_c + n + n_u, dtype=np.int64), [n_c]])
    costs = np.concatenate([np.zeros(n_c, dtype=np.int64), -weights, np.zeros(n_u + 1, dtype=np.int64)])
    arcs = smcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    supplies = np.zeros(n_c + n_u + 2, dtype=np.int64)
    supplies[source], supplies[sink] = n_c, -n_c
    smcf.set_nodes_supplies(np.arange(n_c + n_u + 2), supplies)
    status = smcf.solve()
    if status != smcf.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")
    flows = smcf.flows(arcs[n_c : n_c + n])
    return np.nonzero(flows > 0)[0].astype(np.int64)


def polish_within_cells(comp: Compiled, chosen: np.ndarray) -> np.ndarray:
    """Best fit for the same placed cases, each kept in its unit's municipality, neighbourhood and complex.

    Every side row (care, mix, quota) counts pairs only through those three places and the case, so any
    such reassignment keeps the solution feasible and P unchanged; min-cost flow makes F optimal for it.
    """
    from services.matcher.solver.compile import restrict

    if len(chosen) == 0:
        return chosen
    cell_code: dict[tuple[str, str, str | None], int] = {}
    unit_cell = np.array(
        [
            cell_code.setdefault((u.municipality, u.neighbourhood, u.complex), len(cell_code))
            for u in comp.units
        ],
        dtype=np.int64,
    )
    case_cell = np.full(len(comp.cases), -1, dtype=np.int64)
    case_cell[comp.pc[chosen]] = unit_cell[comp.pu[chosen]]
    arcs = case_cell[comp.pc] == unit_cell[comp.pu]
    sub, kept = restrict(comp, arcs)
    scale = (MAX_PAIR_FIT - MIN_PAIR_FIT) * comp.max_pairs + 1
    picked = max_weight_matching(sub, keep_previous(sub, scale + sub.fit))
    if len(picked) != len(chosen):
        return chosen
    result = np.sort(kept[picked])
    if int(comp.fit[result].sum()) < int(comp.fit[chosen].sum()):
        return chosen
    return result
