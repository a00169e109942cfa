"""docs/operations.md lists every environment variable of every service with its default, and nothing
else: its generated section equals what the settings classes say, and every variable it names anywhere
is one a settings class reads."""

from __future__ import annotations

import re

from devstack.envdoc import (
    DOC,
    documented_block,
    env_names,
    render,
    settings_classes,
    shared_settings_classes,
)
from tests.unit.deploy.conftest import ROOT


def all_variables() -> set[str]:
    names = set()
    classes = [*settings_classes().values(), *(cls for cls, _ in shared_settings_classes().values())]
    for cls in classes:
        for name, field in cls.model_fields.items():
            names.update(env_names(cls, name, field))
    return names


def test_every_service_with_settings_is_documented():
    packages = {p.parent.name for p in (ROOT / "services").glob("*/settings.py")} - {"platform"}
    assert set(settings_classes()) == packages
    assert packages >= {"intake", "matcher", "notifier", "review"}
    shared = shared_settings_classes()
    assert shared["services.platform.auth.AuthSettings"][1] == ["matcher", "notifier", "review"]


def test_the_environment_section_is_what_the_settings_classes_say():
    documented = documented_block(DOC.read_text())
    assert documented == render(), "docs/operations.md is stale: run `python -m devstack.envdoc --write`"


def test_every_variable_of_a_settings_class_is_in_the_doc_and_the_other_way_round():
    text = DOC.read_text()
    block = documented_block(text)
    in_tables = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", block, flags=re.MULTILINE))
    also = {
        n
        for row in re.findall(r"^\| `[A-Z0-9_]+` \| ([^|]*) \|", block, flags=re.M)
        for n in re.findall(r"`([A-Z0-9_]+)`", row)
    }
    assert in_tables | also == all_variables()
    # Prose names only variables that exist (a renamed setting cannot leave a stale instruction behind).
    mentioned = set(re.findall(r"\b((?:WIJKMATCH|KAFKA)_[A-Z0-9_]*[A-Z0-9]|DATABASE_URL)\b", text))
    assert mentioned >= {"WIJKMATCH_INTAKE_MASTER_KEY", "KAFKA_SECURITY_PROTOCOL"}
    assert not (mentioned - all_variables()), sorted(mentioned - all_variables())


def test_a_new_field_makes_the_section_stale(monkeypatch):
    from pydantic.fields import FieldInfo

    from services.notifier.settings import NotifierSettings

    fields = dict(NotifierSettings.model_fields)
    fields["brand_new_knob"] = FieldInfo(default=3, annotation=int)
    monkeypatch.setattr(NotifierSettings, "model_fields", fields)
    assert "WIJKMATCH_NOTIFIER_BRAND_NEW_KNOB" in render()
    assert documented_block(DOC.read_text()) != render()
