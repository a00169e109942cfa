"""The append-only, hash-chained audit log: how an entry's hash is made and how a chain is verified.

Each entry holds the previous entry's hash; its own hash is SHA-256 over its sequence number, its fields
and that previous hash (canonical JSON). Editing an entry changes its hash; removing one breaks the next
entry's link and leaves a gap in the numbers; moving one to another position changes the number its
hash was made with. `verify_chain` names each broken entry by its sequence number.

Fields follow NEN 7513 (logging of access to care data): who (pseudonymous staff id), role, when, what
(action), why (reason code and note), which proposal and round, and the round's input SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS: tuple[str, ...] = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "region",
    "proposal_id",
    "round_id",
    "input_sha256",
    "reason_code",
    "note",
    "prev_hash",
)


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the entry's hashed fields as canonical JSON (sorted keys, no spaces)."""
    body = {name: _canonical(entry.get(name)) for name in HASHED_FIELDS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("audit times carry a UTC offset")
        return value.astimezone(UTC).isoformat()
    return value


def seal(entry: Mapping[str, Any], seq: int, prev_hash: str) -> dict[str, Any]:
    """The entry as stored: with its sequence number, the previous hash and its own hash."""
    sealed = {**entry, "seq": seq, "prev_hash": prev_hash}
    sealed["hash"] = entry_hash(sealed)
    return sealed


@dataclass(frozen=True)
class Problem:
    seq: int
    kind: str  # edited | removed | reordered | broken_link
    message: str


def verify_chain(entries: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """Every break in the chain (entries in stored sequence order); an empty list means intact."""
    rows: Sequence[Mapping[str, Any]] = sorted(entries, key=lambda e: int(e["seq"]))
    problems: list[Problem] = []
    expected_prev = GENESIS
    expected_seq = 1
    for row in rows:
        seq = int(row["seq"])
        if seq > expected_seq:
            missing = f"{expected_seq}" if seq == expected_seq + 1 else f"{expected_seq}-{seq - 1}"
            problems.append(Problem(expected_seq, "removed", f"entry {missing} is missing (removed)"))
        if row["prev_hash"] != expected_prev:
            problems.append(
                Problem(
                    seq,
                    "broken_link",
                    f"entry {seq} does not link to the entry before it (an entry was removed, edited "
                    "or moved)",
                )
            )
        if entry_hash(row) != row["hash"]:
            moved_from = _hashes_at_other_position(row, rows)
            if moved_from is not None:
                problems.append(
                    Problem(seq, "reordered", f"entry {seq} holds entry {moved_from} (reordered)")
                )
            else:
                problems.append(Problem(seq, "edited", f"entry {seq} does not match its hash (edited)"))
        expected_prev = row["hash"]
        expected_seq = seq + 1
    return problems


def _hashes_at_other_position(row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> int | None:
    for other in rows:
        candidate = int(other["seq"])
        if candidate != int(row["seq"]) and entry_hash({**row, "seq": candidate}) == row["hash"]:
            return candidate
    return None


def missing_decisions(decision_hashes: Mapping[str, str], chain_hashes: set[str]) -> list[str]:
    """Proposal ids whose recorded decision entry is not in the chain (e.g. the last entry was removed)."""
    return sorted(pid for pid, h in decision_hashes.items() if h not in chain_hashes)
