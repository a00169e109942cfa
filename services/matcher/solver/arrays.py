"""Small numpy helpers the families and engines share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def distinct(values: np.ndarray, size: int) -> int:
    """How many different values in 0..size-1 occur."""
    return int(np.count_nonzero(np.bincount(values, minlength=size)))


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """np.argsort(keys, kind="stable"), by radix sort when the keys fit in 16 bits (3 M keys: ~8 x faster)."""
    if len(keys) and keys.dtype.kind in "iu":
        low, high = int(keys.min()), int(keys.max())
        if low >= 0 and high < 1 << 16:
            return np.argsort(keys.astype(np.uint16), kind="stable")
        if low >= -(1 << 15) and high < 1 << 15:
            return np.argsort(keys.astype(np.int16), kind="stable")
    return np.argsort(keys, kind="stable")


def positions_by_key(keys: np.ndarray) -> dict[int, np.ndarray]:
    """Positions (ascending) of each key value, keys in ascending order."""
    if len(keys) == 0:
        return {}
    order = stable_argsort(keys)
    sorted_keys = keys[order]
    cuts = np.nonzero(np.diff(sorted_keys))[0] + 1
    return {int(sorted_keys[c]): part for c, part in zip(np.r_[0, cuts], np.split(order, cuts), strict=True)}


@dataclass(frozen=True)
class PairSet:
    """Pairs k = (case pc[k], unit pu[k]) among n_cases cases and n_units units."""

    pc: np.ndarray
    pu: np.ndarray
    n_cases: int
    n_units: int

    def most_chosen(self, pairs: np.ndarray) -> int:
        """At most how many of these pairs (indices) one solution can hold: each case and unit once."""
        return min(distinct(self.pc[pairs], self.n_cases), distinct(self.pu[pairs], self.n_units))


EMPTY = np.zeros(0, dtype=np.int64)
