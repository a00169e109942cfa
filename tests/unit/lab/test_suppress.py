"""Small-cell suppression never reveals a count below k, not even by subtraction (docs/lab.md)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.suppress import SECONDARY, suppress, suppress_column


def _shown_value(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _extended(x: np.ndarray) -> np.ndarray:
    e = np.zeros((x.shape[0] + 1, x.shape[1] + 1), dtype=int)
    e[:-1, :-1] = x
    e[:-1, -1] = x.sum(axis=1)
    e[-1, :-1] = x.sum(axis=0)
    e[-1, -1] = x.sum()
    return e


def _consistent(shown: list[list[str]], e: np.ndarray, k: int) -> bool:
    for i, row in enumerate(shown):
        for j, text in enumerate(row):
            if text == f"< {k}":
                if not 0 <= e[i, j] < k:
                    return False
            elif text == SECONDARY:
                if e[i, j] < k:
                    return False
            elif int(text) != e[i, j]:
                return False
    return True


def _completions(shown: list[list[str]], k: int, cap: int) -> list[np.ndarray]:
    """Every extended table (inner values in [0, cap]) that agrees with what is shown (brute force).

    The attacker knows the shown numbers, that rows and columns add up to their totals, that a "< k"
    cell lies in [0, k-1] and an "x" cell is at least k.
    """
    r, c = len(shown) - 1, len(shown[0]) - 1
    ranges = []
    for i in range(r):
        for j in range(c):
            text = shown[i][j]
            if text == f"< {k}":
                ranges.append(range(0, k))
            elif text == SECONDARY:
                ranges.append(range(k, cap + 1))
            else:
                ranges.append(range(int(text), int(text) + 1))
    out = []
    for values in itertools.product(*ranges):
        e = _extended(np.array(values, dtype=int).reshape(r, c))
        if _consistent(shown, e, k):
            out.append(e)
    return out


small_tables = st.integers(1, 2).flatmap(
    lambda r: st.integers(1, 2).flatmap(
        lambda c: st.lists(st.lists(st.integers(0, 8), min_size=c, max_size=c), min_size=r, max_size=r)
    )
)


@settings(max_examples=20, deadline=None)
@given(table=small_tables)
def test_no_small_count_is_determined_brute_force(table: list[list[int]]) -> None:
    k = 4
    shown = suppress(table, k).cells
    x = np.array(table)
    for row in shown:
        for text in row:
            value = _shown_value(text)
            if value is not None:
                assert value >= k
    # every table that shows the same view, values up to 9; the true one is among them
    # an inner cell is at most the largest shown number (a total) plus k; values beyond add nothing here
    cap = max([int(t) for row in shown for t in row if t.isdigit()] + [8]) + k
    ext = _completions(shown, k, cap)
    assert any((e[:-1, :-1] == x).all() for e in ext)
    for i, row in enumerate(shown):
        for j, text in enumerate(row):
            if text == f"< {k}":
                values = {int(e[i, j]) for e in ext}
                assert len(values) >= 2, (table, shown, i, j, values)


tables = st.integers(1, 5).flatmap(
    lambda r: st.integers(1, 4).flatmap(
        lambda c: st.lists(
            st.lists(st.one_of(st.integers(0, 12), st.integers(10, 400)), min_size=c, max_size=c),
            min_size=r,
            max_size=r,
        )
    )
)


def _lp_range(shown: list[list[str]], k: int, cell: tuple[int, int]) -> tuple[float, float]:
    """An attacker's linear program, written here independently of lab.suppress."""
    from scipy.optimize import linprog

    r, c = len(shown), len(shown[0])
    hidden = [(i, j) for i in range(r) for j in range(c) if _shown_value(shown[i][j]) is None]
    pos = {p: n for n, p in enumerate(hidden)}
    rows, rhs = [], []
    relations = [[(i, j) for j in range(c - 1)] + [(i, c - 1)] for i in range(r)]
    relations += [[(i, j) for i in range(r - 1)] + [(r - 1, j)] for j in range(c)]
    for rel in relations:
        coef = np.zeros(len(hidden))
        b = 0.0
        for n, p in enumerate(rel):
            sign = -1.0 if n == len(rel) - 1 else 1.0
            if p in pos:
                coef[pos[p]] += sign
            else:
                b -= sign * int(shown[p[0]][p[1]])
        if coef.any():
            rows.append(coef)
            rhs.append(b)
    bounds = [(0, k - 1) if shown[p[0]][p[1]].startswith("<") else (k, None) for p in hidden]
    obj = np.zeros(len(hidden))
    obj[pos[cell]] = 1
    lo = linprog(obj, A_eq=np.array(rows), b_eq=rhs, bounds=bounds, method="highs")
    hi = linprog(-obj, A_eq=np.array(rows), b_eq=rhs, bounds=bounds, method="highs")
    assert lo.status == 0
    return float(lo.fun), (float("inf") if hi.status == 3 else -float(hi.fun))


@settings(max_examples=60, deadline=None)
@given(table=tables, k=st.sampled_from([5, 10]))
def test_no_small_count_follows_from_totals_or_other_rows(table: list[list[int]], k: int) -> None:
    s = suppress(table, k)
    x = np.array(table)
    total_rows = x.sum(axis=1)
    for i, row in enumerate(s.cells):
        for j, text in enumerate(row):
            value = _shown_value(text)
            if value is not None:
                assert value >= k
                if i < len(table) and j < len(table[0]):
                    assert value == table[i][j]
                elif i < len(table):
                    assert value == total_rows[i]
            if text == f"< {k}":
                lo, hi = _lp_range(s.cells, k, (i, j))
                assert hi - lo >= 1 - 1e-6, (table, s.cells, (i, j), lo, hi)


def test_examples() -> None:
    # a lone small cell with published totals forces a second hidden cell in its row and column
    s = suppress([[3, 40], [25, 50]], 10)
    assert s.cells[0][0] == "< 10"
    assert sum(text == SECONDARY for row in s.cells for text in row) >= 3
    values, total = suppress_column([12, 3, 40], 10)
    assert values[1] == "< 10" and SECONDARY in [*values, total]
    assert suppress([[0]], 10).cells == [["< 10", "< 10"], ["< 10", "< 10"]]
    big = suppress([[20, 30], [40, 50]], 10)
    assert big.cells == [["20", "30", "50"], ["40", "50", "90"], ["60", "80", "140"]]


@settings(max_examples=30, deadline=None)
@given(table=tables, data=st.data())
def test_forced_cells_stay_hidden_and_nothing_small_follows(
    table: list[list[int]], data: st.DataObject
) -> None:
    r, c = len(table) + 1, len(table[0]) + 1
    force = data.draw(st.lists(st.tuples(st.integers(0, r - 1), st.integers(0, c - 1)), max_size=3))
    s = suppress(table, 10, force)
    for i, j in force:
        assert _shown_value(s.cells[i][j]) is None
    for i, row in enumerate(s.cells):
        for j, text in enumerate(row):
            if text == "< 10":
                lo, hi = _lp_range(s.cells, 10, (i, j))
                assert hi - lo >= 1 - 1e-6


def _raw(data: st.DataObject) -> Any:
    from datetime import UTC, datetime

    from lab.report import GROUPS, KINDS, Raw

    count = st.one_of(st.integers(0, 12), st.integers(10, 200))
    raw = Raw("r", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC))
    for g in GROUPS:
        for kind in KINDS:
            n = data.draw(count)
            if n:
                raw.let[(g, kind)] = n
    raw.declines_by_reason = {r: data.draw(count) for r in ("too_far", "too_small", "no_reason")}
    raw.rejections_by_reason = {r: data.draw(count) for r in ("unsuitable", "care_not_arranged")}
    raw.proposals_by_status = {
        "accepted": sum(raw.let.values()),
        "declined": sum(raw.declines_by_reason.values()),
        "rejected": sum(raw.rejections_by_reason.values()),
        "pending": data.draw(count),
        "offered": data.draw(count),
    }
    return raw


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_the_report_hides_a_shared_number_in_every_table(data: st.DataObject) -> None:
    from lab.report import publish

    raw = _raw(data)
    report = publish(raw, 10)
    status = report["proposals_by_status"]["rows"]
    linked = {
        "accepted": report["homes_let"]["cells"][-1][-1],
        "declined": report["declines_by_reason"]["total"],
        "rejected": report["staff_rejections_by_reason"]["total"],
    }
    for name, total in linked.items():
        assert (_shown_value(status[name]) is None) == (_shown_value(total) is None), (name, status, total)
        if _shown_value(total) is not None:
            assert int(total) == int(status[name]) == raw.proposals_by_status[name]
    for table in ("proposals_by_status", "declines_by_reason", "staff_rejections_by_reason"):
        column = report[table]
        cells = [[v, v] for v in column["rows"].values()] + [[column["total"], column["total"]]]
        for i, row in enumerate(cells):
            value = _shown_value(row[0])
            assert value is None or value >= 10
            if row[0] == "< 10":
                lo, hi = _lp_range(cells, 10, (i, 0))
                assert hi - lo >= 1 - 1e-6
    if report["overrule_rate"] is not None:
        assert all(
            _shown_value(status[s]) is not None for s in ("accepted", "declined", "rejected", "offered")
        )
