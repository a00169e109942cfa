"""Engine settings shared by the engines (kept apart from cpsat.py so that importing them loads no solver)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SolveParams:
    workers: int
    seed: int
    deterministic: bool
