"""What each wijkmatch process does on Kafka, read from the code (not a hand-kept copy).

- reads: the topic tuple its subscriber / consumer is built with;
- groups: the consumer-group default of its settings class;
- writes: every topic its outbox or producer is called with, found by walking the package's syntax tree:
  `enqueue(..., topic=T)`, `(T, key, event)` tuples appended for `enqueue_many`, and
  `producer.send(T, ...)` / `send_and_wait(T, ...)` where T is a constant of `schemas.topics`. A write
  site whose topic is not such a constant is returned as unresolved; the caller must resolve it from the
  code's own behaviour (the gateway's routing) or fail.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import schemas.topics as topics_module

ROOT = Path(__file__).resolve().parents[3]
TOPIC_CONSTANTS = {
    name: value
    for name, value in vars(topics_module).items()
    if isinstance(value, str) and value in topics_module.ALL_TOPICS
}
SEND_METHODS = {"send", "send_and_wait"}


@dataclass
class Writes:
    topics: set[str] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)  # "path:line" of write sites with a variable topic


@dataclass(frozen=True)
class Access:
    reads: frozenset[str]
    writes: frozenset[str]
    groups: frozenset[str]


def _topic_names(tree: ast.Module) -> dict[str, str]:
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "schemas.topics":
            for alias in node.names:
                if alias.name in TOPIC_CONSTANTS:
                    names[alias.asname or alias.name] = TOPIC_CONSTANTS[alias.name]
    return names


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def outbox_and_producer_writes(files: list[Path]) -> Writes:
    found = Writes()
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        names = _topic_names(tree)

        def resolve(node: ast.AST, where: int, path: Path = path, names: dict[str, str] = names) -> None:
            if isinstance(node, ast.Name) and node.id in names:
                found.topics.add(names[node.id])
            else:
                found.unresolved.append(f"{path.relative_to(ROOT)}:{where}")

        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            if name == "enqueue":
                for keyword in node.keywords:
                    if keyword.arg == "topic":
                        resolve(keyword.value, node.lineno)
            elif name == "append" and node.args and isinstance(node.args[0], ast.Tuple):
                first = node.args[0].elts[0] if node.args[0].elts else None
                if isinstance(first, ast.Name) and first.id in names:
                    found.topics.add(names[first.id])
            elif name == "enqueue_many" and len(node.args) >= 3 and isinstance(node.args[2], ast.List):
                for element in node.args[2].elts:
                    if isinstance(element, ast.Tuple) and element.elts:
                        resolve(element.elts[0], node.lineno)
            elif name in SEND_METHODS and node.args:
                resolve(node.args[0], node.lineno)
    return found


def package_files(package: str, *, exclude: tuple[str, ...] = ()) -> list[Path]:
    base = ROOT / "services" / package
    return [
        path
        for path in sorted(base.rglob("*.py"))
        if "migrations" not in path.relative_to(base).parts and str(path.relative_to(base)) not in exclude
    ]
