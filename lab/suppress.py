"""Small-cell suppression for published counts (pure; docs/lab.md, "Suppression").

A table of counts is published with its row totals, column totals and grand total. Every cell (totals
included) below k is shown as "< k" (primary suppression). Because the totals are published, a hidden
cell could still be derived by subtraction; so further cells are hidden (shown as "x", secondary
suppression) until no primary cell's exact value follows from what is shown. "Follows" is decided
exactly: the shown numbers and the line relations (each row and column adds up to its total) are a
network system, so the smallest and largest value a hidden cell can take are found by two linear
programs whose optima are integral (the constraint matrix is totally unimodular); a primary cell is
safe when they differ. An attacker is assumed to know that a "< k" cell lies in [0, k-1] and an "x"
cell is at least k.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

SECONDARY = "x"


@dataclass(frozen=True)
class Suppressed:
    """The shown table with totals: `cells[i][j]` (last row and column are the totals) as text."""

    cells: list[list[str]]
    primary: np.ndarray  # bool, shape (R+1, C+1)
    secondary: np.ndarray  # bool, shape (R+1, C+1)
    k: int

    def shown(self, i: int, j: int) -> str:
        return self.cells[i][j]


def extend(table: Sequence[Sequence[int]]) -> np.ndarray:
    """The table with a totals column and a totals row."""
    x = np.asarray(table, dtype=np.int64).reshape(len(table), -1 if len(table) else 0)
    if x.size == 0 and len(table) == 0:
        return np.zeros((1, 1), dtype=np.int64)
    out = np.zeros((x.shape[0] + 1, x.shape[1] + 1), dtype=np.int64)
    out[:-1, :-1] = x
    out[:-1, -1] = x.sum(axis=1)
    out[-1, :-1] = x.sum(axis=0)
    out[-1, -1] = x.sum()
    return out


def _lines(shape: tuple[int, int]) -> list[list[tuple[tuple[int, int], int]]]:
    """Each relation sum(cells) - total = 0 of the extended table, as (cell, coefficient) lists."""
    r, c = shape
    lines = []
    for i in range(r):
        lines.append([((i, j), 1) for j in range(c - 1)] + [((i, c - 1), -1)])
    for j in range(c):
        lines.append([((i, j), 1) for i in range(r - 1)] + [((r - 1, j), -1)])
    return lines


def value_range(
    x: np.ndarray, hidden: np.ndarray, primary: np.ndarray, k: int, cell: tuple[int, int]
) -> tuple[float, float]:
    """The smallest and largest value of `cell` consistent with what is shown."""
    from scipy.optimize import linprog

    idx = {tuple(map(int, p)): n for n, p in enumerate(np.argwhere(hidden))}
    n = len(idx)
    a_eq, b_eq = [], []
    for line in _lines(x.shape):
        row = np.zeros(n)
        rhs = 0.0
        touched = False
        for p, coef in line:
            if p in idx:
                row[idx[p]] += coef
                touched = True
            else:
                rhs -= coef * float(x[p])
        if touched:
            a_eq.append(row)
            b_eq.append(rhs)
    bounds = [(0.0, float(k - 1)) if primary[p] else (float(k), None) for p in idx]
    target = np.zeros(n)
    target[idx[cell]] = 1.0
    lo = linprog(
        target, A_eq=np.array(a_eq) if a_eq else None, b_eq=b_eq or None, bounds=bounds, method="highs"
    )
    hi = linprog(
        -target, A_eq=np.array(a_eq) if a_eq else None, b_eq=b_eq or None, bounds=bounds, method="highs"
    )
    if lo.status != 0 or hi.status not in (0, 3):  # 3 = unbounded above: certainly not determined
        return (0.0, float("inf"))
    top = float("inf") if hi.status == 3 else -float(hi.fun)
    return (float(lo.fun), top)


def _determined(x: np.ndarray, hidden: np.ndarray, primary: np.ndarray, k: int) -> tuple[int, int] | None:
    for p in np.argwhere(primary):
        cell = (int(p[0]), int(p[1]))
        lo, hi = value_range(x, hidden, primary, k, cell)
        if hi - lo < 0.5:
            return cell
    return None


def _one_more(x: np.ndarray, hidden: np.ndarray, cell: tuple[int, int]) -> tuple[int, int] | None:
    """The smallest shown cell in `cell`'s row or column (inner cells before totals)."""
    r, c = x.shape
    options = [(cell[0], j) for j in range(c)] + [(i, cell[1]) for i in range(r)]
    options = [p for p in options if not hidden[p]]
    if not options:
        return None
    return min(options, key=lambda p: (p[0] == r - 1 or p[1] == c - 1, int(x[p]), p))


def suppress(
    table: Sequence[Sequence[int]], k: int = 10, force: Iterable[tuple[int, int]] = ()
) -> Suppressed:
    """Suppress `table` (counts, R x C) with its totals for publication.

    `force`: cells of the extended table (totals in row R / column C) to hide in any case — a count that
    another published table hides (the same number must not be shown in one table and hidden in another).
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    x = extend(table)
    if (x < 0).any():
        raise ValueError("counts must be >= 0")
    # k = 1 protects nothing ("< 1" could only mean 0): everything is shown, as with no suppression.
    primary = x < k if k > 1 else np.zeros(x.shape, dtype=bool)
    hidden = primary.copy()
    for forced in force:
        hidden[forced] = True
    lines = _lines(x.shape)
    while True:
        # Cheap pass first: no relation may have exactly one hidden cell.
        changed = True
        while changed:
            changed = False
            for line in lines:
                members = [p for p, _ in line]
                h = [p for p in members if hidden[p]]
                if len(h) == 1:
                    extra = _one_more(x, hidden, h[0])
                    if extra is None:
                        continue
                    hidden[extra] = True
                    changed = True
        found = _determined(x, hidden, primary, k) if primary.any() else None
        if found is None:
            break
        extra = _one_more(x, hidden, found)
        if extra is None:  # every cell in its lines is hidden; hide the smallest shown cell anywhere
            shown = np.argwhere(~hidden)
            if len(shown) == 0:
                break
            low = min(shown, key=lambda p: int(x[tuple(p)]))
            extra = (int(low[0]), int(low[1]))
        hidden[extra] = True
    secondary = hidden & ~primary
    cells = [
        [
            f"< {k}" if primary[i, j] else SECONDARY if secondary[i, j] else str(int(x[i, j]))
            for j in range(x.shape[1])
        ]
        for i in range(x.shape[0])
    ]
    return Suppressed(cells=cells, primary=primary, secondary=secondary, k=k)


def suppress_column(
    values: Sequence[int], k: int = 10, force_rows: Iterable[int] = (), force_total: bool = False
) -> tuple[list[str], str]:
    """A one-column table (e.g. counts by reason) with its total: the shown values and the shown total."""
    n = len(values)
    force = [(i, j) for i in force_rows for j in (0, 1)] + ([(n, 0), (n, 1)] if force_total else [])
    s = suppress([[int(v)] for v in values], k, force)
    return [row[0] for row in s.cells[:-1]], s.cells[-1][0]


def small(n: int, k: int = 10) -> str:
    """A single published count."""
    return f"< {k}" if n < k else str(n)
