"""`wijkmatch schemas export [--check]`: write the JSON Schemas (schemas/json/) and schemas/asyncapi.yaml.

One file per event type, `schemas/json/<full type>.json` (the schema of that type's `data`; its `$id`
is the one accepted `dataschema` value, events.dataschema_for(type)), plus `cloudevent.json` (the
envelope), the pool event types, and `problem.json` / `result.json` when schemas/problem.py exists.
Output is deterministic (sorted keys, two-space indent, trailing newline). `--check` writes nothing,
lists stale/missing/leftover files and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from schemas import events, pool, topics

SCHEMAS_DIR = Path(__file__).resolve().parent
JSON_DIR_NAME = "json"
ASYNCAPI_NAME = "asyncapi.yaml"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ENVELOPE_FILE = "cloudevent.json"

# topic -> (producers, consumers), as in EVENTS.md's topic table and ARCHITECTURE.md.
TOPIC_ROLES: dict[str, tuple[str, str]] = {
    topics.VACANCIES: ("housing corporations", "wijkmatch intake"),
    topics.CASES: ("care institutions, municipalities", "wijkmatch intake"),
    topics.CARE_CAPACITY: ("care providers", "wijkmatch intake"),
    topics.REFERENCE: ("municipality / region office", "wijkmatch intake"),
    topics.INTAKE_REJECTED: (
        "any wijkmatch service that consumes an external topic (intake)",
        "sending organisations, operators",
    ),
    topics.PROPOSALS: ("wijkmatch matcher", "wijkmatch review, wijkmatch notifier (care.claimed)"),
    topics.DECISIONS: ("wijkmatch review", "wijkmatch matcher, wijkmatch notifier"),
    topics.OFFERS: ("wijkmatch notifier", "housing corporations, care institutions, wijkmatch matcher"),
    topics.OFFER_RESPONSES: ("housing corporations", "wijkmatch notifier, wijkmatch matcher"),
    topics.POOL: (
        "wijkmatch intake (internal, via its outbox)",
        "wijkmatch matcher, wijkmatch notifier (unit and case owners only)",
    ),
    topics.CARE_REQUESTS: ("wijkmatch notifier", "care providers, wijkmatch matcher (care.expired)"),
    topics.CARE_RESPONSES: (
        "care providers (or the notifier's HTTP answer endpoint)",
        "wijkmatch matcher, wijkmatch notifier",
    ),
}


class _PlainDumper(yaml.SafeDumper):
    """YAML without anchors/aliases (&id001): every AsyncAPI tool reads it the same way."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _model_schema(model: type[BaseModel], schema_id: str, title: str, description: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = schema_id
    schema["title"] = title
    schema["description"] = description
    return schema


def _envelope_schema() -> dict[str, Any]:
    schema = events.CloudEvent.model_json_schema(mode="validation")
    props = schema["properties"]
    all_types = sorted([*events.DATA_MODELS, *pool.POOL_DATA_MODELS])
    props["type"] = {"title": "Type", "type": "string", "enum": all_types}
    props["time"] = {
        "title": "Time",
        "type": "string",
        "format": "date-time",
        "description": "RFC 3339 with a UTC offset",
    }
    props["dataschema"] = {
        "anyOf": [
            {"type": "string", "pattern": "^" + events.DATASCHEMA_BASE.replace(".", "\\.")},
            {"type": "null"},
        ],
        "default": None,
        "description": "absent, or exactly " + events.DATASCHEMA_BASE + "<type>.json",
        "title": "Dataschema",
    }
    # Extension attributes: lower-case alphanumeric names, string/integer/boolean values, ignored.
    # (the lookahead keeps the spec attributes, e.g. `data`, out of the extension rule)
    spec_names = "|".join(sorted(events.SPEC_ATTRIBUTES))
    extension_pattern = f"^(?!({spec_names})$)" + events.EXTENSION_NAME_PATTERN.removeprefix("^")
    schema["patternProperties"] = {extension_pattern: {"type": ["string", "integer", "boolean"]}}
    schema["additionalProperties"] = False
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = events.DATASCHEMA_BASE + ENVELOPE_FILE
    schema["title"] = "CloudEvent"
    schema["description"] = (
        "CloudEvents 1.0 structured-mode envelope of every wijkmatch event (EVENTS.md); "
        "`data` follows the schema of its type, " + events.DATASCHEMA_BASE + "<type>.json"
    )
    return schema


def _problem_models() -> dict[str, type[BaseModel]]:
    """problem.json / result.json from schemas/problem.py, once that module exists."""
    try:
        module = importlib.import_module("schemas.problem")
    except ModuleNotFoundError as exc:
        if exc.name == "schemas.problem":
            return {}
        raise
    found: dict[str, type[BaseModel]] = {}
    for file_stem, class_name in (("problem", "Problem"), ("result", "Result")):
        model = getattr(module, class_name, None)
        if isinstance(model, type) and issubclass(model, BaseModel):
            found[file_stem] = model
    return found


def _asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    pool_types = sorted(pool.POOL_DATA_MODELS)
    topic_types: dict[str, list[str]] = {t: sorted(types) for t, types in events.TOPIC_TYPES.items()}
    topic_types[topics.POOL] = pool_types
    for topic in topics.ALL_TOPICS:
        channel_id = topic.removeprefix("wijkmatch.").replace(".", "_").replace("-", "_")
        producers, consumers = TOPIC_ROLES[topic]
        message_refs: dict[str, Any] = {}
        for type_name in topic_types[topic]:
            message_id = events.short_type(type_name).replace(".", "_")
            message_refs[message_id] = {"$ref": f"#/components/messages/{message_id}"}
            model = events.DATA_MODELS.get(type_name) or pool.POOL_DATA_MODELS[type_name]
            messages[message_id] = {
                "name": type_name,
                "title": type_name,
                "summary": (model.__doc__ or type_name).strip().splitlines()[0],
                "contentType": "application/json",
                "bindings": {"kafka": {"key": {"type": "string", "pattern": events.REGION_PATTERN}}},
                "payload": {
                    "allOf": [
                        {"$ref": f"{JSON_DIR_NAME}/{ENVELOPE_FILE}"},
                        {
                            "type": "object",
                            "required": ["type", "data"],
                            "properties": {
                                "type": {"const": type_name},
                                "dataschema": {"const": events.dataschema_for(type_name)},
                                "data": {"$ref": f"{JSON_DIR_NAME}/{type_name}.json"},
                            },
                        },
                    ]
                },
            }
        channels[channel_id] = {
            "address": topic,
            "description": (
                f"Kafka topic {topic}, keyed by region. Producer: {producers}. Consumer: {consumers}."
            ),
            "messages": message_refs,
        }
        refs = [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in message_refs]
        operations[f"send_{channel_id}"] = {
            "action": "send",
            "summary": f"{producers} publish",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": refs,
        }
        operations[f"receive_{channel_id}"] = {
            "action": "receive",
            "summary": f"{consumers} consume",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": refs,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "wijkmatch events",
            "version": "1.0.0",
            "description": (
                "Event contract of wijkmatch (EVENTS.md). Every message value is a CloudEvents 1.0 "
                "structured-mode JSON object; the Kafka key is the region code. Generated by "
                "`wijkmatch schemas export`; do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "the bundled local broker (wijkmatch broker)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def generate() -> dict[str, str]:
    """Every generated file: path relative to schemas/ -> exact text."""
    files: dict[str, str] = {}
    for type_name, model in sorted(events.DATA_MODELS.items()):
        files[f"{JSON_DIR_NAME}/{type_name}.json"] = _dump_json(
            _model_schema(
                model,
                events.dataschema_for(type_name),
                type_name,
                f"`data` of a {type_name} CloudEvent (EVENTS.md)",
            )
        )
    for type_name, model in sorted(pool.POOL_DATA_MODELS.items()):
        files[f"{JSON_DIR_NAME}/{type_name}.json"] = _dump_json(
            _model_schema(
                model,
                events.dataschema_for(type_name),
                type_name,
                f"`data` of a {type_name} CloudEvent (internal pool topic {topics.POOL})",
            )
        )
    files[f"{JSON_DIR_NAME}/{ENVELOPE_FILE}"] = _dump_json(_envelope_schema())
    for stem, file_model in sorted(_problem_models().items()):
        files[f"{JSON_DIR_NAME}/{stem}.json"] = _dump_json(
            _model_schema(file_model, events.DATASCHEMA_BASE + f"{stem}.json", stem, f"DOMAIN.md {stem} file")
        )
    files[ASYNCAPI_NAME] = yaml.dump(
        _asyncapi(), Dumper=_PlainDumper, sort_keys=True, allow_unicode=True, width=100
    )
    return files


def stale_files(root: Path = SCHEMAS_DIR) -> list[str]:
    """Generated files that are missing or differ on disk, and leftover files in json/ (sorted)."""
    expected = generate()
    stale = [rel for rel, text in expected.items() if _read(root / rel) != text]
    json_dir = root / JSON_DIR_NAME
    if json_dir.is_dir():
        stale += [
            f"{JSON_DIR_NAME}/{p.name}"
            for p in json_dir.glob("*.json")
            if f"{JSON_DIR_NAME}/{p.name}" not in expected
        ]
    return sorted(stale)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def write(root: Path = SCHEMAS_DIR) -> list[str]:
    """Write every generated file and delete leftovers in json/; returns the paths that changed."""
    changed = stale_files(root)
    expected = generate()
    (root / JSON_DIR_NAME).mkdir(parents=True, exist_ok=True)
    for rel in changed:
        target = root / rel
        if rel in expected:
            target.write_text(expected[rel], encoding="utf-8")
        else:
            target.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wijkmatch schemas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write schemas/json/*.json and schemas/asyncapi.yaml")
    export.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file is stale")
    export.add_argument(
        "--root", type=Path, default=SCHEMAS_DIR, help="schemas directory (default: %(default)s)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.check:
        stale = stale_files(args.root)
        if stale:
            print("stale schema files (run `wijkmatch schemas export`):", file=sys.stderr)
            for rel in stale:
                print(f"  {args.root / rel}", file=sys.stderr)
            return 1
        print(f"schema files are current ({len(generate())} files)")
        return 0
    changed = write(args.root)
    for rel in changed:
        print(f"wrote {args.root / rel}")
    print(f"{len(changed)} file(s) changed, {len(generate())} generated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
