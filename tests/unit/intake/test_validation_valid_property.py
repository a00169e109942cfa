"""Property-based: any event within EVENTS.md/DOMAIN.md's rules is accepted, and its pool snapshot is a
valid DOMAIN.md problem-file entity (checked by schemas/problem.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import pool, problem
from schemas.events import GROUPS, TYPE_PREFIX, subject_for
from services.platform.admission import Accepted, validate_message
from services.platform.admission.registry import load_registry
from tests.unit.schemas.event_examples import topic_of

REGISTRY = load_registry()
SENDERS = {  # short type -> demo organisation sending it
    "case.registered": "coa",
    "case.updated": "leger-des-heils",
    "vacancy.published": "mitros",
    "care.capacity.set": "parnassia",
    "neighbourhood.set": "regio-utrecht-west",
    "complex.set": "regio-utrecht-west",
    "policy.set": "regio-test",
    "quota.set": "gemeente-leiden",
}

codes = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/"),
    min_size=1,
    max_size=16,
)
groups = st.sampled_from(GROUPS)
counts = st.integers(0, 1_000_000_000)


def optional(draw, data: dict[str, Any], name: str, strategy, *, null_ok: bool = True) -> None:
    """Absent, null (= default) or a drawn value."""
    choice = draw(st.sampled_from(["absent", "null", "value"] if null_ok else ["absent", "value"]))
    if choice == "null":
        data[name] = None
    elif choice == "value":
        data[name] = draw(strategy)


@st.composite
def case_data(draw) -> dict[str, Any]:
    data = {
        "id": draw(codes),
        "group": draw(groups),
        "household_size": draw(st.integers(1, 1_000_000_000)),
        "priority": draw(st.integers(1, 1_000_000)),
    }
    optional(draw, data, "wheelchair", st.booleans())
    optional(draw, data, "step_free", st.booleans())
    optional(draw, data, "care_needs", st.lists(codes, unique=True, max_size=4))
    optional(draw, data, "max_rent", counts)
    optional(draw, data, "municipalities", st.lists(codes, max_size=4))
    optional(draw, data, "preferred_neighbourhoods", st.lists(codes, unique=True, max_size=4))
    optional(draw, data, "excluded_neighbourhoods", st.lists(codes, max_size=4))
    optional(draw, data, "deadline", st.dates().map(str))
    personal: dict[str, Any] = {}
    optional(
        draw, personal, "name", st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1)
    )
    optional(draw, personal, "email", st.emails())
    optional(draw, personal, "citizen_number", st.from_regex(r"\A[0-9]{9}\Z"))
    optional(draw, personal, "birth_date", st.dates().map(str))
    optional(draw, data, "personal", st.just(personal))
    return data


@st.composite
def unit_data(draw) -> dict[str, Any]:
    data = {
        "id": draw(codes),
        "kind": draw(st.sampled_from(["flex", "clustered", "regular"])),
        "municipality": draw(codes),
        "neighbourhood": draw(codes),
        "max_persons": draw(st.integers(1, 1_000_000_000)),
        "rent": draw(counts),
    }
    optional(draw, data, "complex", codes)
    optional(draw, data, "wheelchair", st.booleans())
    optional(draw, data, "step_free", st.booleans())
    optional(draw, data, "allowed_groups", st.lists(groups, max_size=6))
    optional(draw, data, "available_from", st.dates().map(str))
    return data


@st.composite
def counted(draw, total_field: str) -> dict[str, Any]:
    group_counts = draw(st.dictionaries(groups, st.integers(0, 10_000), max_size=6))
    total = sum(group_counts.values()) + draw(st.integers(0, 10_000))
    data: dict[str, Any] = {total_field: total}
    optional(draw, data, "group_counts", st.just(group_counts))
    return data


@st.composite
def policy_data(draw) -> dict[str, Any]:
    rule = st.fixed_dictionaries(
        {
            "scope": st.sampled_from(["neighbourhood", "complex"]),
            "groups": st.lists(groups, min_size=1, max_size=6, unique=True),
            "max_share": st.integers(1, 10_000).map(lambda s: 1 if s == 10_000 else s / 10_000),
        }
    )
    data: dict[str, Any] = {}
    optional(draw, data, "mix_rules", st.lists(rule, max_size=4))
    optional(draw, data, "quota_bonus", counts)
    optional(draw, data, "time_limit_s", st.one_of(st.integers(1, 3600), st.floats(0.001, 86_400)))
    optional(draw, data, "seed", st.integers(0, 2**31 - 1))
    return data


@st.composite
def valid_intake_event(draw) -> tuple[str, bytes, bytes]:
    short = draw(st.sampled_from(sorted(SENDERS)))
    org = REGISTRY.by_id(SENDERS[short])
    regions = sorted(org.regions) if org.regions is not None else None
    region = draw(st.sampled_from(regions) if regions else st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,63}\Z"))
    if short in ("case.registered", "case.updated"):
        data = {**draw(case_data()), "referrer": org.id}
    elif short == "vacancy.published":
        data = {**draw(unit_data()), "corporation": org.id}
    elif short == "care.capacity.set":
        data = {"area": draw(codes), "care_type": draw(codes), "slots": draw(counts), "provider": org.id}
    elif short == "neighbourhood.set":
        data = {"code": draw(codes), "municipality": draw(codes), **draw(counted("households"))}
    elif short == "complex.set":
        data = {"id": draw(codes), "neighbourhood": draw(codes), **draw(counted("occupied"))}
    elif short == "policy.set":
        data = draw(policy_data())
    else:
        data = {"municipality": draw(codes), "group": draw(groups), "remaining_persons": draw(counts)}
    data["region"] = region
    data = dict(draw(st.permutations(sorted(data.items()))))
    offset = timezone(timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
    moment = draw(
        st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
    )
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(codes),
        "source": sorted(org.sources)[0],
        "type": TYPE_PREFIX + short,
        "subject": subject_for(short, {k: v for k, v in data.items()}),
        "time": moment.astimezone(offset).isoformat(),
        "data": data,
    }
    if draw(st.booleans()):
        event["datacontenttype"] = "application/json"
    return short, region.encode(), json.dumps(event, ensure_ascii=draw(st.booleans())).encode()


@settings(max_examples=400, deadline=None, derandomize=True)
@given(valid_intake_event())
def test_any_valid_event_is_accepted_and_its_snapshot_is_a_problem_entity(case) -> None:
    short, key, value = case
    result = validate_message(
        topic=topic_of(short), partition=0, offset=0, key=key, value=value, registry=REGISTRY
    )
    assert isinstance(result, Accepted), getattr(result, "errors", None)
    sent = json.loads(value)["data"]
    dumped = result.data.model_dump(mode="json")
    for name, sent_value in sent.items():
        if sent_value is not None and name not in {"personal", "time_limit_s"}:
            assert dumped[name] == sent_value, name
    change = pool.pool_change_for(result.type, result.data)
    document: dict[str, Any] = {"region": result.region}
    plural = {
        "case": "cases",
        "unit": "units",
        "care_capacity": "care_capacity",
        "neighbourhood": "neighbourhoods",
        "complex": "complexes",
        "quota": "quotas",
    }
    if change.entity == "policy":
        document["policy"] = change.snapshot
    else:
        document[plural[change.entity]] = [change.snapshot]
    parsed, errors = problem.validate_problem(json.loads(json.dumps(document)))
    assert errors == [] and parsed is not None
