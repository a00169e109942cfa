"""Tiny DOMAIN.md problem builders for hand-made test instances (plain dicts, no solver imports)."""

from __future__ import annotations


def case(cid: str, group: str = "homeless", size: int = 1, priority: int = 100, **extra) -> dict:
    return {"id": cid, "group": group, "household_size": size, "priority": priority, **extra}


def unit(uid: str, nbh: str = "BU01", mun: str = "GM01", persons: int = 2, rent: int = 600, **extra) -> dict:
    return {
        "id": uid,
        "kind": "flex",
        "municipality": mun,
        "neighbourhood": nbh,
        "max_persons": persons,
        "rent": rent,
        **extra,
    }


def problem(cases: list, units: list, **extra) -> dict:
    return {"region": "R1", "round_id": "r-1", "cases": cases, "units": units, **extra}
