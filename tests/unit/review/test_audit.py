"""The audit chain: intact chains verify; an edited, removed or reordered entry is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.review.core.audit import GENESIS, entry_hash, missing_decisions, seal, verify_chain


def _chain(n: int) -> list[dict]:
    entries, prev = [], GENESIS
    start = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    for i in range(1, n + 1):
        e = seal(
            {
                "at": start + timedelta(seconds=i),
                "actor": f"staff-{i % 2}",
                "role": "reviewer",
                "action": "approve",
                "region": "utrecht",
                "proposal_id": f"p{i}",
                "round_id": "r1",
                "input_sha256": "a" * 64,
                "reason_code": None,
                "note": None,
            },
            i,
            prev,
        )
        entries.append(e)
        prev = e["hash"]
    return entries


def test_an_intact_chain_has_no_problems() -> None:
    assert verify_chain(_chain(5)) == []


def test_the_hash_covers_every_field_and_the_time_in_utc() -> None:
    e = _chain(1)[0]
    same_moment = {**e, "at": e["at"].astimezone(__import__("zoneinfo").ZoneInfo("Europe/Amsterdam"))}
    assert entry_hash(same_moment) == e["hash"]
    assert entry_hash({**e, "note": "x"}) != e["hash"]


def test_an_edited_entry_is_named() -> None:
    chain = _chain(5)
    chain[2] = {**chain[2], "actor": "someone-else"}
    problems = verify_chain(chain)
    assert [(p.seq, p.kind) for p in problems] == [(3, "edited")]


def test_a_removed_entry_is_named() -> None:
    chain = _chain(5)
    del chain[1]
    problems = verify_chain(chain)
    assert (2, "removed") in [(p.seq, p.kind) for p in problems]
    assert (3, "broken_link") in [(p.seq, p.kind) for p in problems]


def test_two_swapped_entries_are_named_as_reordered() -> None:
    chain = _chain(5)
    a, b = chain[1], chain[2]
    chain[1], chain[2] = {**b, "seq": 2}, {**a, "seq": 3}
    kinds = {(p.seq, p.kind) for p in verify_chain(chain)}
    assert (2, "reordered") in kinds
    assert (3, "reordered") in kinds


def test_a_removed_last_decision_is_found_through_the_proposal_record() -> None:
    chain = _chain(3)
    hashes = {e["hash"] for e in chain[:-1]}
    assert verify_chain(chain[:-1]) == []  # the chain alone cannot see a removed tail
    assert missing_decisions({"p3": chain[2]["hash"], "p1": chain[0]["hash"]}, hashes) == ["p3"]
