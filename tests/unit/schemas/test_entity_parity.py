"""DOMAIN.md's entities are modelled twice on purpose: strictly for events (ids ≤ 128 characters,
counts ≤ 10⁹, no `/` in codes) and as DOMAIN.md writes them for the problem file. This keeps the two
from drifting: the same fields, the same required ones, the same defaults."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from schemas import events, problem

PAIRS = ["Case", "Unit", "Neighbourhood", "Complex", "CareCapacity", "Quota", "MixRule", "Policy"]


def _shape(model: type[BaseModel]) -> dict[str, object]:
    shape: dict[str, object] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            shape[name] = "required"
        elif field.default_factory is not None:
            shape[name] = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
            shape[name] = None if default is PydanticUndefined else default
    return shape


@pytest.mark.parametrize("name", PAIRS)
def test_event_and_problem_entities_have_the_same_fields_and_defaults(name: str) -> None:
    event_shape = _shape(getattr(events, name))
    problem_shape = _shape(getattr(problem, name))
    if name == "Policy":  # the problem file keeps time_limit_s exact (Decimal), events carry a float
        assert problem_shape.pop("time_limit_s") == event_shape.pop("time_limit_s") == 10
    assert event_shape == problem_shape
