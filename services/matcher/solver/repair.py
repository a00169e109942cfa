"""Row bookkeeping on the compiled problem: repair a solution into feasibility and extend it greedily."""

from __future__ import annotations

import numpy as np

from services.matcher.solver.compile import Compiled


class _Memberships:
    """The rows each pair belongs to, as compressed rows (a dict of lists cost 6 s at 3 M pairs)."""

    def __init__(self, rows: list[np.ndarray], n_pairs: int) -> None:
        sizes = [len(r) for r in rows]
        if not rows or not any(sizes):
            self._ptr: list[int] = [0] * (n_pairs + 1)
            self._ids: list[int] = []
            return
        pairs = np.concatenate(rows)
        ids = np.repeat(np.arange(len(rows)), sizes)
        order = np.argsort(pairs, kind="stable")  # stable: each pair's rows stay in ascending order
        self._ids = ids[order].tolist()
        self._ptr = np.r_[0, np.cumsum(np.bincount(pairs, minlength=n_pairs))].tolist()

    def __getitem__(self, pair: int) -> list[int]:
        return self._ids[self._ptr[pair] : self._ptr[pair + 1]]


class Feasibility:
    def __init__(self, comp: Compiled) -> None:
        self.comp = comp
        self.care_cap = [row.cap for row in comp.care_rows]
        n = comp.n_pairs
        self.care_of = _Memberships([row.pairs for row in comp.care_rows], n)
        self.mix_g_of = _Memberships([row.pairs_g for row in comp.mix_rows], n)
        self.mix_o_of = _Memberships([row.pairs_other for row in comp.mix_rows], n)
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
        candidates = order[free[order]]
        # Python lists in the loop: numpy scalar indexing per pair cost seconds at 3 M pairs.
        case_free, unit_free = (~case_used).tolist(), (~unit_used).tolist()
        units_left = int(unit_free.count(True))
        care_of, mix_g_of, cap, coef_g, room = (
            self.care_of,
            self.mix_g_of,
            self.care_cap,
            self.mix_coef_g,
            self.mix_room,
        )
        for k, c, u in zip(
            candidates.tolist(), comp.pc[candidates].tolist(), comp.pu[candidates].tolist(), strict=True
        ):
            if units_left == 0:
                break
            if not (case_free[c] and unit_free[u]):
                continue
            if any(care[r] + 1 > cap[r] for r in care_of[k]):
                continue
            if any(lhs[r] + coef_g[r] > room[r] for r in mix_g_of[k]):
                continue
            case_free[c] = unit_free[u] = False
            units_left -= 1
            current.append(k)
            self._count(k, care, lhs, 1)
        return np.array(sorted(current), dtype=np.int64)
