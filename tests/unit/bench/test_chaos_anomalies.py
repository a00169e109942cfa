"""`make chaos` counts anomalies from what it sent and what the pipeline holds afterwards; each class is
found when it is there and not when it is not (bench/chaos.py's pure `count_anomalies`)."""

from __future__ import annotations

import copy

from bench.chaos import Observed, Workload, count_anomalies, delivery_order

R = "chaos-r"


def _clean() -> tuple[Workload, Observed]:
    sent = Workload(
        inputs={("urn:a", "e1"), ("urn:a", "e2"), ("urn:b", "e3")},
        live={("unit", R, "U1"), ("case", R, "C1"), ("case", R, "C2")},
        withdrawn={("unit", R, "U2"), ("case", R, "C3")},
    )
    seen = Observed(
        inbox={("urn:a", "e1"), ("urn:a", "e2"), ("urn:b", "e3")},
        rejected_ids={"someone-elses-event"},
        pool_status={
            ("unit", R, "U1"): "offered",
            ("case", R, "C1"): "offered",
            ("case", R, "C2"): "open",
            ("unit", R, "U2"): "withdrawn",
            # C3's withdrawal reached intake before its registration: the matcher never saw it (fine).
        },
        proposals=[
            {"id": "P1", "region": R, "case_id": "C1", "unit_id": "U1", "status": "offered"},
            {"id": "P0", "region": R, "case_id": "C2", "unit_id": "U1", "status": "cancelled"},
        ],
        offer_events=[("P1", "O1"), ("P1", "O1")],  # the same offer twice on the topic: one offer
        offer_rows=[{"proposal_id": "P1", "offer_id": "O1", "status": "open"}],
        housed=[],
        round_violations={"round-1": []},
    )
    return sent, seen


def _counts(sent: Workload, seen: Observed) -> dict[str, int]:
    return {name: entry["count"] for name, entry in count_anomalies(sent, seen).items()}


def test_a_clean_run_has_no_anomaly() -> None:
    assert set(_counts(*_clean()).values()) == {0}


def test_every_anomaly_class_is_found() -> None:
    sent, seen = _clean()
    broken = copy.deepcopy(seen)
    broken.inbox.discard(("urn:b", "e3"))  # an input intake never recorded
    broken.pool_status[("case", R, "C2")] = "withdrawn"  # a live case withdrawn
    broken.pool_status[("case", R, "C3")] = "open"  # a withdrawn case still available
    broken.proposals.append({"id": "P2", "region": R, "case_id": "C2", "unit_id": "U1", "status": "pending"})
    broken.offer_events.append(("P1", "O9"))  # a second offer id for one proposal
    broken.housed = [(R, "C1", "U1"), (R, "C1", "U3")]  # one case housed twice
    broken.round_violations["round-2"] = ["rule 3: household too large for unit U1"]
    broken.rejected_ids.add("e2")  # a valid input rejected
    counts = _counts(sent, broken)
    assert counts == {
        "lost_inputs": 1,
        "lost_effects": 2,
        "held_twice": 1,  # U1 by P1 and P2
        "offered_twice": 1,
        "housed_twice": 1,
        "rule_breaking_rounds": 1,
        "stale": 1,  # P2 holds C2, which is withdrawn
        "rejected_valid_inputs": 1,
    }


def test_a_rejected_answer_of_the_owner_counts_as_a_rejected_valid_input() -> None:
    sent, seen = _clean()
    sent.answers.add("answer-1")
    seen.rejected_ids.add("answer-1")
    assert _counts(sent, seen)["rejected_valid_inputs"] == 1


def test_an_open_offer_of_a_proposal_no_longer_offered_is_stale() -> None:
    sent, seen = _clean()
    seen.proposals[0]["status"] = "cancelled"
    assert _counts(sent, seen)["stale"] == 1


def test_delivery_sends_every_event_at_least_once_and_at_most_three_times() -> None:
    events = [{"id": f"e{i}"} for i in range(200)]
    delivered = delivery_order(events, seed=3)
    counts = {e["id"]: 0 for e in events}
    for e in delivered:
        counts[e["id"]] += 1
    assert set(counts.values()) == {1, 2, 3}
    assert [e["id"] for e in delivered] != [e["id"] for e in events]  # out of order
    assert delivery_order(events, seed=3) == delivered  # deterministic by seed
