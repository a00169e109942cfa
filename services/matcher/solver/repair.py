"""Row bookkeeping on the compiled problem: repair a solution into feasibility and extend it greedily."""

from __future__ import annotations

import numpy as np

from services.matcher.solver.compile import Compiled


class _Memberships:
    """The rows each pair belongs to; most pairs belong to none, so only the others are stored."""

    def __init__(self, rows: list[np.ndarray]) -> None:
        self._rows: dict[int, list[int]] = {}
        if not rows or not any(len(r) for r in rows):
            return
        pairs = np.concatenate(rows)
        ids = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
        order = np.argsort(pairs, kind="stable")  # stable: each pair's rows stay in ascending order
        pairs, ids = pairs[order], ids[order]
        cuts = np.flatnonzero(np.diff(pairs)) + 1
        starts = np.r_[0, cuts]
        ends = np.r_[cuts, len(pairs)]
        ids_list = ids.tolist()
        self._rows = {
            k: ids_list[a:b]
            for k, a, b in zip(pairs[starts].tolist(), starts.tolist(), ends.tolist(), strict=True)
        }

    def __getitem__(self, pair: int) -> list[int] | tuple[()]:
        return self._rows.get(pair, ())


class Feasibility:
    def __init__(self, comp: Compiled) -> None:
        self.comp = comp
        self.care_cap = [row.cap for row in comp.care_rows]
        self.care_of = _Memberships([row.pairs for row in comp.care_rows])
        self.mix_g_of = _Memberships([row.pairs_g for row in comp.mix_rows])
        self.mix_o_of = _Memberships([row.pairs_other for row in comp.mix_rows])
        self.mix_coef_g = [row.coef_g for row in comp.mix_rows]
        self.mix_coef_o = [row.coef_other for row in comp.mix_rows]
        self.mix_room = [row.room for row in comp.mix_rows]

    def model_p(self, chosen: np.ndarray) -> int:
        comp = self.comp
        on = np.zeros(comp.n_pairs, dtype=bool)
        on[chosen] = True
        total = int(comp.pweight[chosen].sum())
        for q in comp.quota_rows:
            total += comp.bonus * min(q.cap, int(q.sizes[on[q.pairs]].sum()))
        return total

    def is_feasible(self, chosen: np.ndarray) -> bool:
        comp = self.comp
        if len(np.unique(comp.pc[chosen])) < len(chosen) or len(np.unique(comp.pu[chosen])) < len(chosen):
            return False
        care, lhs = self._state(chosen.tolist())
        return all(u <= c for u, c in zip(care, self.care_cap, strict=True)) and all(
            v <= r for v, r in zip(lhs, self.mix_room, strict=True)
        )

    def _state(self, chosen: list[int]) -> tuple[list[int], list[int]]:
        care = [0] * len(self.care_cap)
        lhs = [0] * len(self.mix_room)
        for k in chosen:
            self._count(k, care, lhs, 1)
        return care, lhs

    def _count(self, k: int, care: list[int], lhs: list[int], sign: int) -> None:
        """Add (sign 1) or remove (sign -1) pair k's use of the care rows and the mix rows' sides."""
        for r in self.care_of[k]:
            care[r] += sign
        for r in self.mix_g_of[k]:
            lhs[r] += sign * self.mix_coef_g[r]
        for r in self.mix_o_of[k]:
            lhs[r] -= sign * self.mix_coef_o[r]

    def repair(self, chosen: np.ndarray) -> np.ndarray:
        """Drop the least valuable pairs until every care and mix row holds."""
        w = self.comp.pweight
        keep = []
        seen_cases: set[int] = set()
        seen_units: set[int] = set()
        # A rounded LP can hold two pairs of one case or unit (x just above 0.5 twice): keep the better.
        for k in sorted(chosen.tolist(), key=lambda k: (-int(w[k]), k)):
            c, u = int(self.comp.pc[k]), int(self.comp.pu[k])
            if c not in seen_cases and u not in seen_units:
                keep.append(k)
                seen_cases.add(c)
                seen_units.add(u)
        care, lhs = self._state(keep)
        alive = set(keep)

        def drop(k: int) -> None:
            alive.discard(k)
            self._count(k, care, lhs, -1)

        for k in reversed(keep):  # least valuable first
            if any(care[r] > self.care_cap[r] for r in self.care_of[k]):
                drop(k)
        # Dropping a pair outside a rule's groups lowers that rule's room, so repeat until all rows hold.
        changed = True
        while changed:
            changed = False
            for k in reversed(keep):
                if k in alive and any(lhs[r] > self.mix_room[r] for r in self.mix_g_of[k]):
                    drop(k)
                    changed = True
        return np.array(sorted(alive), dtype=np.int64)

    def greedy(self, chosen: np.ndarray) -> np.ndarray:
        """Add pairs in order of value while every row still holds."""
        comp = self.comp
        current = chosen.tolist()
        care, lhs = self._state(current)
        case_used = np.zeros(len(comp.cases), dtype=bool)
        unit_used = np.zeros(len(comp.units), dtype=bool)
        case_used[comp.pc[chosen]] = True
        unit_used[comp.pu[chosen]] = True
        order = np.lexsort((-comp.fit, -comp.pweight))
        free = ~case_used[comp.pc] & ~unit_used[comp.pu]
        for k in order[free[order]].tolist():
            c, u = comp.pc[k], comp.pu[k]
            if case_used[c] or unit_used[u]:
                continue
            if any(care[r] + 1 > self.care_cap[r] for r in self.care_of[k]):
                continue
            if any(lhs[r] + self.mix_coef_g[r] > self.mix_room[r] for r in self.mix_g_of[k]):
                continue
            case_used[c] = unit_used[u] = True
            current.append(k)
            self._count(k, care, lhs, 1)
        return np.array(sorted(current), dtype=np.int64)
