"""Who may change an entity: a unit or a case belongs to the organisation that first created it. Pure.

Units are owned by their `corporation`, cases by their `referrer` (both must equal the sender's
organisation id, so the owner is the sender of the first applied event). Care capacity is keyed per
provider already, and reference data (neighbourhood, complex, policy, quota) stays region-office-wide.
"""

from __future__ import annotations

OWNED_KINDS = frozenset({"unit", "case"})


def refused(kind: str, owner: str | None, sender: str | None) -> bool:
    """True when `sender` may not change or withdraw an existing entity of `kind` owned by `owner`.
    An unknown owner (a row stored before ownership was recorded) or sender refuses nothing."""
    return kind in OWNED_KINDS and owner is not None and sender is not None and owner != sender


def ownership_error(kind: str, key: str, region: str) -> dict[str, str]:
    """The rejection's field error: names the entity, never the owner or anything of its data."""
    return {
        "path": "/source",
        "message": f"{kind} {key} in region {region} belongs to another organisation; "
        "only its owner may change or withdraw it",
    }
