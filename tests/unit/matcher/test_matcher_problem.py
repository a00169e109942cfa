"""The problem builder, summaries and event payloads (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.events import DATA_MODELS, CloudEvent
from services.matcher import events
from services.matcher.pool.problem import (
    HousedRow,
    PinRow,
    PoolView,
    ReferenceRow,
    build_problem,
    canonical_json,
    sha256_text,
)
from services.matcher.rounds.runner import drop_pins, invalid_pin_indices
from services.matcher.rounds.summary import comparable, summarise
from services.matcher.solver import solve_problem

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = T0 + timedelta(days=1)


def case(cid: str, group: str = "homeless", size: int = 1, priority: int = 100, care: tuple = ()) -> dict:
    return {
        "id": cid,
        "group": group,
        "household_size": size,
        "priority": priority,
        "wheelchair": False,
        "step_free": False,
        "care_needs": list(care),
        "max_rent": None,
        "municipalities": [],
        "preferred_neighbourhoods": [],
        "excluded_neighbourhoods": [],
    }


def unit(uid: str, nbh: str = "BU1", complex_: str | None = None) -> dict:
    return {
        "id": uid,
        "kind": "flex",
        "municipality": "GM1",
        "neighbourhood": nbh,
        "complex": complex_,
        "max_persons": 2,
        "rent": 500,
        "wheelchair": False,
        "step_free": False,
        "allowed_groups": [],
    }


def reference(at: datetime = T0) -> list[ReferenceRow]:
    return [
        ReferenceRow("policy", "r", {"mix_rules": [], "quota_bonus": 0, "time_limit_s": 5, "seed": 0}, at),
        ReferenceRow(
            "neighbourhood",
            "BU1",
            {"code": "BU1", "municipality": "GM1", "households": 10, "group_counts": {"homeless": 1}},
            at,
        ),
        ReferenceRow(
            "complex", "CX1", {"id": "CX1", "neighbourhood": "BU1", "occupied": 4, "group_counts": {}}, at
        ),
        ReferenceRow("care_capacity", "GM1/ggz", {"area": "GM1", "care_type": "ggz", "slots": 2}, at),
        ReferenceRow(
            "quota", "GM1/homeless", {"municipality": "GM1", "group": "homeless", "remaining_persons": 5}, at
        ),
    ]


def test_committed_pairs_newer_than_reference_count_as_housed_everywhere() -> None:
    committed = HousedRow.of(case("C9", size=3, care=("ggz",)), unit("U9", "BU1", "CX1"), LATER)
    problem = build_problem(PoolView("r", reference=reference(), housed=[committed]), "r-1")
    assert problem["neighbourhoods"] == [
        {"code": "BU1", "municipality": "GM1", "households": 11, "group_counts": {"homeless": 2}}
    ]
    assert problem["complexes"][0]["occupied"] == 5
    assert problem["complexes"][0]["group_counts"] == {"homeless": 1}
    assert problem["care_capacity"] == [{"area": "GM1", "care_type": "ggz", "slots": 1}]
    assert problem["quotas"][0]["remaining_persons"] == 2


def test_reference_data_newer_than_a_committed_pair_is_taken_as_including_it() -> None:
    committed = HousedRow.of(case("C9", care=("ggz",)), unit("U9", "BU1", "CX1"), T0 - timedelta(hours=1))
    problem = build_problem(PoolView("r", reference=reference(), housed=[committed]), "r-1")
    assert problem["neighbourhoods"][0]["households"] == 10
    assert problem["care_capacity"][0]["slots"] == 2
    assert problem["quotas"][0]["remaining_persons"] == 5


def test_committed_pair_in_an_undescribed_neighbourhood_gets_a_description() -> None:
    committed = HousedRow.of(case("C9", group="statushouder"), unit("U9", "BU7"), LATER)
    problem = build_problem(PoolView("r", reference=reference(), housed=[committed]), "r-1")
    assert {
        "code": "BU7",
        "municipality": "GM1",
        "households": 1,
        "group_counts": {"statushouder": 1},
    } in problem["neighbourhoods"]


def test_pins_use_their_proposal_snapshots_and_forbidden_pairs_only_name_present_ids() -> None:
    pool = PoolView(
        "r",
        cases=[case("C2"), case("C1")],
        units=[unit("U2"), unit("U1")],
        reference=reference(),
        pins=[PinRow("C3", "U3", case("C3", priority=7), unit("U3"))],
        forbidden=[("C1", "U1"), ("C1", "U404"), ("C3", "U3"), ("C3", "U1")],
    )
    problem = build_problem(pool, "r-1")
    assert [c["id"] for c in problem["cases"]] == ["C1", "C2", "C3"]
    assert [u["id"] for u in problem["units"]] == ["U1", "U2", "U3"]
    assert problem["pinned"] == [{"case": "C3", "unit": "U3"}]
    assert problem["forbidden"] == [{"case": "C1", "unit": "U1"}, {"case": "C3", "unit": "U1"}]
    result = solve_problem(problem, time_limit_s=5, workers=1)
    assert result["status"] == "OPTIMAL", result.get("errors")
    pairs = {(a["case"], a["unit"]) for a in result["assignments"]}
    assert ("C3", "U3") in pairs and ("C1", "U1") not in pairs


def test_equal_pools_in_any_order_give_the_same_problem_text_and_sha() -> None:
    a = PoolView("r", cases=[case("C1"), case("C2")], units=[unit("U1"), unit("U2")], reference=reference())
    b = PoolView(
        "r",
        cases=[case("C2"), case("C1")],
        units=[unit("U2"), unit("U1")],
        reference=list(reversed(reference())),
    )
    assert sha256_text(canonical_json(build_problem(a, "x"))) == sha256_text(
        canonical_json(build_problem(b, "x"))
    )


def test_invalid_pins_are_held_out_with_their_case_and_unit() -> None:
    problem = {
        "pinned": [{"case": "C1", "unit": "U1"}, {"case": "C2", "unit": "U2"}],
        "cases": [case("C1"), case("C2"), case("C3")],
        "units": [unit("U1"), unit("U2")],
        "forbidden": [{"case": "C3", "unit": "U2"}, {"case": "C3", "unit": "U1"}],
    }
    bad = invalid_pin_indices(
        {"errors": [{"path": "/pinned/1", "message": "not eligible"}, {"path": "/cases/0"}]}
    )
    assert bad == {1}
    out = drop_pins(problem, bad)
    assert out["pinned"] == [{"case": "C1", "unit": "U1"}]
    assert [c["id"] for c in out["cases"]] == ["C1", "C3"]
    assert [u["id"] for u in out["units"]] == ["U1"]
    assert out["forbidden"] == [{"case": "C3", "unit": "U1"}]


def test_summary_counts_new_placements_by_group_and_unplaced_by_reason() -> None:
    problem = {"cases": [case("C1"), case("C2", "elderly"), case("C3", "regular"), case("C4")], "units": []}
    result = {
        "assignments": [
            {"case": "C1", "unit": "U1", "pinned": False},
            {"case": "C2", "unit": "U2", "pinned": False},
            {"case": "C4", "unit": "U4", "pinned": True},
        ],
        "unassigned": [{"case": "C3", "reason": "outranked"}],
    }
    summary = summarise(problem, result)
    assert summary["placed_by_group"] == {"elderly": 1, "homeless": 1}
    assert summary["unplaced_by_group"] == {"regular": 1}
    assert summary["unplaced_by_reason"] == {"outranked": 1}
    assert summary["pinned"] == 1


def test_replay_comparison_ignores_timings_but_not_pairs() -> None:
    base = {
        "status": "OPTIMAL",
        "objective": {"priority": 5, "quota_points": 0, "fit": 3, "priority_bound": 5, "gap": 0.0},
        "assignments": [{"case": "C1", "unit": "U1", "pinned": False}],
        "stats": {"solve_seconds": 1.0},
    }
    other = {**base, "stats": {"solve_seconds": 9.0}}
    assert comparable(base) == comparable(other)
    moved = {**base, "assignments": [{"case": "C1", "unit": "U2", "pinned": False}]}
    assert comparable(base) != comparable(moved)


def test_published_events_match_the_event_schemas() -> None:
    assignment = {
        "case": "C1",
        "unit": "U1",
        "priority": 100,
        "fit": {"preference": 25, "size": 20, "accessibility": 0, "total": 45},
        "explanation": ["priority 100", "size +20"],
    }
    proposed = events.match_proposed(region="r", round_id="r-1", proposal_id="p1", assignment=assignment)
    cancelled = events.match_cancelled(
        region="r", proposal_id="p1", case="C1", unit="U1", reason="case_withdrawn"
    )
    result = {
        "status": "OPTIMAL",
        "objective": {"priority": 100, "quota_points": 0, "fit": 45, "priority_bound": 100, "gap": 0.0},
        "stats": {"solve_seconds": 0.1},
    }
    completed = events.round_completed(
        region="r",
        round_id="r-1",
        result=result,
        summary={"placed_by_group": {"homeless": 1}, "unplaced_by_group": {}, "unplaced_by_reason": {}},
        problem_sha256="0" * 64,
    )
    for event in (proposed, cancelled, completed):
        envelope = CloudEvent.model_validate(event)
        DATA_MODELS[envelope.type].model_validate(envelope.data)
    assert proposed["data"]["explanation"] == ["priority 100", "size +20"]
