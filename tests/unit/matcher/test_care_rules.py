"""Care claims (issue 16), the pure rules: provider choice (continuity, most free, id), refusals, the
round's capacity net of claims — and, as a property, that claims never exceed what providers report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.matcher.care.rules import (
    ProviderEntry,
    Refusal,
    assign_needs,
    choose_provider,
    refusal_forbidden,
    round_slots,
)
from services.matcher.pool.problem import PinRow, PoolView, ReferenceRow, build_problem

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def entry(
    provider: str, area: str = "BU1", care: str = "ggz", slots: int = 1, claims: int = 0
) -> ProviderEntry:
    return ProviderEntry(provider, area, care, slots, claims, T0)


def test_continuity_first_when_the_current_provider_offers_the_care_there() -> None:
    entries = [entry("a", slots=5), entry("b", slots=1)]
    choice = choose_provider("ggz", "BU1", "GM1", entries, case_id="c", continuity=("b", "a"))
    assert choice is not None and choice.entry.provider == "b" and choice.continuity


def test_continuity_skipped_when_the_current_provider_is_full_or_elsewhere() -> None:
    entries = [entry("a", slots=2), entry("b", slots=1, claims=1), entry("x", area="BU9", slots=9)]
    choice = choose_provider("ggz", "BU1", "GM1", entries, case_id="c", continuity=("b", "x"))
    assert choice is not None and choice.entry.provider == "a" and not choice.continuity


def test_most_free_then_neighbourhood_then_provider_id() -> None:
    entries = [entry("b", slots=3), entry("a", slots=3), entry("c", area="GM1", slots=3), entry("d", slots=2)]
    assert choose_provider("ggz", "BU1", "GM1", entries, case_id="c").entry.provider == "a"  # type: ignore[union-attr]
    entries = [entry("z", area="GM1", slots=4), entry("a", slots=3)]
    assert choose_provider("ggz", "BU1", "GM1", entries, case_id="c").entry.provider == "z"  # type: ignore[union-attr]


def test_a_refusal_holds_until_the_provider_reports_again() -> None:
    refused = [Refusal("c", "a", "ggz", T0 + timedelta(hours=1))]
    entries = [entry("a", slots=3)]
    assert choose_provider("ggz", "BU1", "GM1", entries, case_id="c", refusals=refused) is None
    assert choose_provider("ggz", "BU1", "GM1", entries, case_id="other", refusals=refused) is not None
    reported = [ProviderEntry("a", "BU1", "ggz", 3, 0, T0 + timedelta(hours=2))]
    assert choose_provider("ggz", "BU1", "GM1", reported, case_id="c", refusals=refused) is not None


def test_lowered_capacity_keeps_claims_and_says_so() -> None:
    lowered = entry("a", slots=1, claims=3)
    assert lowered.free == 0 and lowered.over_claimed == 2
    assert choose_provider("ggz", "BU1", "GM1", [lowered], case_id="c") is None


def test_two_needs_two_providers() -> None:
    entries = [entry("a", care="ggz"), entry("b", care="addiction", area="GM1")]
    chosen = assign_needs(["ggz", "addiction"], "BU1", "GM1", entries, case_id="c")
    assert {n: c.entry.provider for n, c in chosen.items() if c} == {"ggz": "a", "addiction": "b"}


def test_refused_pairing_is_forbidden_for_that_home_only() -> None:
    entries = [entry("a", area="BU1"), entry("c", area="BU3")]
    refused = [Refusal("c2", "a", "ggz", T0 + timedelta(hours=1))]
    cases = [{"id": "c2", "care_needs": ["ggz"]}, {"id": "c3", "care_needs": ["ggz"]}]
    units = [
        {"id": "u1", "neighbourhood": "BU1", "municipality": "GM1"},
        {"id": "u3", "neighbourhood": "BU3", "municipality": "GM1"},
    ]
    assert refusal_forbidden(cases, units, entries, refused) == {("c2", "u1")}


def test_round_capacity_is_net_of_claims_plus_pins_covering() -> None:
    entries = [entry("a", slots=3, claims=1), entry("b", slots=1, claims=2)]
    assert round_slots("BU1", "ggz", entries, pins_covering=1) == 2 + 0 + 1
    assert round_slots("BU9", "ggz", entries, pins_covering=0) is None  # no breakdown: the sum stands


def test_problem_builder_uses_the_providers_free_slots() -> None:
    pin = PinRow(
        "c1",
        "u1",
        {"id": "c1", "group": "homeless", "household_size": 1, "priority": 1, "care_needs": ["ggz"]},
        {
            "id": "u1",
            "kind": "flex",
            "municipality": "GM1",
            "neighbourhood": "BU1",
            "max_persons": 1,
            "rent": 1,
        },
    )
    pool = PoolView(
        region="r",
        reference=[
            ReferenceRow("care_capacity", "BU1/ggz", {"area": "BU1", "care_type": "ggz", "slots": 10}, T0)
        ],
        pins=[pin],
        care_providers=[entry("a", slots=4, claims=1), entry("b", slots=1, claims=1)],
    )
    problem = build_problem(pool, "round-1")
    assert problem["care_capacity"] == [{"area": "BU1", "care_type": "ggz", "slots": 3 + 0 + 1}]


@st.composite
def _scenario(draw: st.DrawFn) -> tuple[list[ProviderEntry], list[tuple[str, str, list[str]]]]:
    providers = draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=4, unique=True))
    entries = [
        ProviderEntry(
            p,
            draw(st.sampled_from(["BU1", "BU2", "GM1"])),
            draw(st.sampled_from(["ggz", "add"])),
            draw(st.integers(0, 3)),
            0,
            T0,
        )
        for p in providers
    ]
    entries = list({(e.provider, e.area, e.care_type): e for e in entries}.values())
    approvals = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["BU1", "BU2"]),
                st.sampled_from(["a", "b", "c", "d", None]),
                st.lists(st.sampled_from(["ggz", "add"]), min_size=1, max_size=2, unique=True),
            ),
            max_size=12,
        )
    )
    return entries, approvals  # type: ignore[return-value]


@settings(max_examples=200, deadline=None)
@given(_scenario())
def test_property_claims_never_exceed_reported_slots(scenario: tuple[list[ProviderEntry], list]) -> None:
    """Approvals in any order (as two matcher instances would interleave them under the provider rows'
    locks: each sees the claims committed before it): no provider entry is ever claimed beyond its slots,
    and the round's capacity always equals the free slots left."""
    entries, approvals = scenario
    state = {(e.provider, e.area, e.care_type): e for e in entries}
    for i, (hood, continuity, needs) in enumerate(approvals):
        chosen = assign_needs(
            needs, hood, "GM1", list(state.values()), case_id=f"c{i}", continuity=(continuity,)
        )
        if any(c is None for c in chosen.values()):
            continue  # care_unavailable: nothing is claimed
        for choice in chosen.values():
            assert choice is not None
            key = (choice.entry.provider, choice.entry.area, choice.entry.care_type)
            e = state[key]
            state[key] = ProviderEntry(e.provider, e.area, e.care_type, e.slots, e.claims + 1, e.reported_at)
    for e in state.values():
        assert e.claims <= e.slots
    for area in ("BU1", "BU2", "GM1"):
        for care in ("ggz", "add"):
            net = round_slots(area, care, list(state.values()), 0)
            mine = [e for e in state.values() if e.area == area and e.care_type == care]
            assert net == (sum(e.slots - e.claims for e in mine) if mine else None)


def test_a_pending_proposal_holds_its_slot_even_against_a_newer_report() -> None:
    """Provider reports count claims only, never pending proposals: a report newer than a pending proposal
    must not free its slot for the next round (it would propose beyond free capacity)."""
    from services.matcher.pool.problem import HousedRow

    later = T0 + timedelta(hours=1)
    pending = HousedRow("homeless", 1, "GM1", "BU1", None, T0, ("ggz",), pending=True)
    pool = PoolView(
        region="r",
        reference=[
            ReferenceRow("care_capacity", "BU1/ggz", {"area": "BU1", "care_type": "ggz", "slots": 1}, later)
        ],
        housed=[pending],
        care_providers=[ProviderEntry("a", "BU1", "ggz", 1, 0, later)],
    )
    assert build_problem(pool, "round-2")["care_capacity"][0]["slots"] == 0
