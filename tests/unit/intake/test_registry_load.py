"""The organisation registry: YAML format, hashed API keys, the demo registry as local default."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from services.platform.admission import registry as reg
from services.platform.admission.registry import RegistryError, hash_api_key, load_registry

ORG_YAML = """
organisations:
  - id: corp-a
    sources: [urn:org:corp:a, https://corp-a.example/events]
    types: [vacancy.published, nl.wijkmatch.vacancy.withdrawn]
    regions: [region-one]
    api_keys: [{digest}]
  - id: office
    sources: [urn:org:region:all]
    types: [policy.set]
    regions: "*"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orgs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_hash_api_key_is_sha256_hex_of_the_utf8_key() -> None:
    assert hash_api_key("s3cret") == hashlib.sha256(b"s3cret").hexdigest()


def test_registry_resolves_sources_ids_types_regions_and_keys(tmp_path: Path) -> None:
    registry = load_registry(_write(tmp_path, ORG_YAML.format(digest=hash_api_key("key-a"))))
    corp = registry.by_source("https://corp-a.example/events")
    assert corp is not None and corp.id == "corp-a" and registry.by_id("corp-a") is corp
    assert corp.may_send_type("vacancy.published") and corp.may_send_type("nl.wijkmatch.vacancy.withdrawn")
    assert not corp.may_send_type("case.registered")
    assert corp.may_send_region("region-one") and not corp.may_send_region("region-two")
    office = registry.by_source("urn:org:region:all")
    assert office is not None and office.may_send_region("anything-at-all")
    assert registry.by_api_key("key-a") is corp
    assert registry.by_api_key("key-b") is None
    assert registry.by_api_key(hash_api_key("key-a")) is None  # the digest itself is not a key
    assert registry.by_source("urn:org:unknown") is None


def test_registry_path_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, ORG_YAML.format(digest=hash_api_key("k")))
    monkeypatch.setenv(reg.ENV_VAR, str(path))
    assert load_registry().by_id("corp-a") is not None


def test_without_the_environment_variable_the_demo_registry_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(reg.ENV_VAR, raising=False)
    assert reg.registry_path() == reg.DEMO_REGISTRY_PATH
    registry = load_registry()
    assert registry.by_source("urn:org:corp:woonstad").id == "woonstad"


def test_demo_registry_keys_are_the_documented_demo_keys() -> None:
    registry = load_registry(reg.DEMO_REGISTRY_PATH)
    for org in registry.organisations:
        assert registry.by_api_key(f"demo-key-{org.id}") is org


def test_demo_registry_covers_the_demo_regions_and_every_intake_type() -> None:
    from schemas.events import INTAKE_TYPES

    registry = load_registry(reg.DEMO_REGISTRY_PATH)
    for region in ("holland-rijnland", "utrecht-west", "test-region"):
        for types in INTAKE_TYPES.values():
            for type_name in types:
                assert any(
                    o.may_send_type(type_name) and o.regions is not None and region in o.regions
                    for o in registry.organisations
                ), (region, type_name)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "organisations:\n  - id: a\n    sources: [urn:x]\n    types: [vacancy.sold]\n",
            "unknown event types",
        ),
        ("organisations:\n  - id: a\n    sources: []\n", "sources"),
        ("organisations:\n  - id: a\n    sources: [urn:x]\n    regions: [Not-A-Region]\n", "regions"),
        ("organisations:\n  - id: a\n    sources: [urn:x]\n    api_keys: [plaintext-key]\n", "api_keys"),
        ("organisations:\n  - id: a\n    sources: [urn:x]\n    colour: red\n", "colour"),
        (
            "organisations:\n  - id: a\n    sources: [urn:x]\n  - id: b\n    sources: [urn:x]\n",
            "belongs to two organisations",
        ),
        (
            "organisations:\n  - id: a\n    sources: [urn:x]\n  - id: a\n    sources: [urn:y]\n",
            "appears twice",
        ),
        ("- just a list\n", "must be a mapping"),
        ("organisations: [\n", "not valid YAML"),
    ],
)
def test_malformed_registries_fail_loudly_with_the_reason(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(RegistryError) as info:
        load_registry(_write(tmp_path, text))
    assert fragment in str(info.value)


def test_a_key_hash_shared_by_two_organisations_is_an_error(tmp_path: Path) -> None:
    digest = hash_api_key("shared")
    text = (
        f"organisations:\n  - id: a\n    sources: [urn:a]\n    api_keys: [{digest}]\n"
        f"  - id: b\n    sources: [urn:b]\n    api_keys: [{digest}]\n"
    )
    with pytest.raises(RegistryError, match="another organisation"):
        load_registry(_write(tmp_path, text))


def test_missing_registry_file_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "absent.yaml")


def _ranged(prefixes_a: list[str], prefixes_b: list[str], *, require: bool = False) -> reg.Registry:
    def org(name: str, prefixes: list[str]) -> dict:
        entry: dict = {
            "id": name,
            "sources": [f"urn:org:{name}"],
            "types": ["vacancy.published"],
            "regions": "*",
        }
        if prefixes:
            entry["id_prefixes"] = prefixes
        return entry

    return reg.Registry.from_mapping(
        {
            "require_id_prefixes": require,
            "organisations": [org("corp-a", prefixes_a), org("corp-b", prefixes_b)],
        }
    )


def test_id_ranges_decide_who_may_send_a_unit_or_case_id() -> None:
    registry = _ranged(["wst-", "ws2-"], ["mvw-"])
    a, b = registry.by_id("corp-a"), registry.by_id("corp-b")
    assert a is not None and b is not None
    assert registry.id_range_owner("wst-17") is a and registry.id_range_owner("mvw-1") is b
    assert registry.id_range_owner("other-1") is None
    assert registry.id_range_error(a, "ws2-9") is None
    assert "another organisation" in (registry.id_range_error(b, "wst-17") or "")
    assert "corp-a's id prefixes: wst-, ws2-" in (registry.id_range_error(a, "other-1") or "")


def test_without_ranges_every_id_stays_open_to_its_first_sender() -> None:
    registry = _ranged([], [])
    a = registry.by_id("corp-a")
    assert a is not None and registry.id_range_error(a, "anything-1") is None


@pytest.mark.parametrize(("a", "b"), [(["wst-"], ["wst-x"]), (["abc-"], ["ab"]), (["same"], ["same"])])
def test_overlapping_id_ranges_of_two_organisations_are_refused(a: list[str], b: list[str]) -> None:
    with pytest.raises(RegistryError, match="overlaps"):
        _ranged(a, b)


def test_required_ranges_refuse_a_sender_of_units_without_one() -> None:
    with pytest.raises(RegistryError, match=r"corp-b.*no id_prefixes"):
        _ranged(["wst-"], [], require=True)
    assert _ranged(["wst-"], ["mvw-"], require=True).require_id_prefixes
