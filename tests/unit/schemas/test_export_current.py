"""The committed JSON Schema / AsyncAPI files equal what `wijkmatch schemas export` generates now."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from schemas import events, export, pool


def test_committed_schema_files_are_current() -> None:
    stale = export.stale_files()
    assert stale == [], f"stale schema files, run `wijkmatch schemas export`: {stale}"


def test_check_mode_reports_a_stale_file_and_exits_1(tmp_path: Path, capsys) -> None:
    assert export.main(["export", "--root", str(tmp_path)]) == 0
    assert export.main(["export", "--check", "--root", str(tmp_path)]) == 0
    target = tmp_path / "json" / "nl.wijkmatch.case.registered.json"
    target.write_text(target.read_text() + " ", encoding="utf-8")
    (tmp_path / "json" / "leftover.json").write_text("{}", encoding="utf-8")
    assert export.main(["export", "--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "nl.wijkmatch.case.registered.json" in err and "leftover.json" in err


def test_every_event_type_has_a_schema_file_whose_id_is_its_dataschema() -> None:
    files = export.generate()
    for type_name in [*events.DATA_MODELS, *pool.POOL_DATA_MODELS]:
        schema = json.loads(files[f"json/{type_name}.json"])
        assert schema["$id"] == events.dataschema_for(type_name)
        assert schema["additionalProperties"] is False


def test_generation_is_deterministic() -> None:
    assert export.generate() == export.generate()


def test_asyncapi_lists_every_topic_and_every_type() -> None:
    document = yaml.safe_load(export.generate()["asyncapi.yaml"])
    addresses = {channel["address"] for channel in document["channels"].values()}
    from schemas import topics

    assert addresses == set(topics.ALL_TOPICS)
    names = {message["name"] for message in document["components"]["messages"].values()}
    assert names == set(events.DATA_MODELS) | set(pool.POOL_DATA_MODELS)


def test_every_asyncapi_reference_resolves() -> None:
    files = export.generate()
    text = files["asyncapi.yaml"]
    assert "&id" not in text and "*id" not in text  # no YAML aliases
    document = yaml.safe_load(text)
    refs: list[str] = []
    stack: list[object] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    assert refs
    for ref in refs:
        if ref.startswith("#/"):
            target: object = document
            for part in ref[2:].split("/"):
                assert isinstance(target, dict) and part in target, ref
                target = target[part]
        else:
            assert ref in files, ref
