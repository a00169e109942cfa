"""The `wijkmatch` command: one entry point, one sub-command per service and tool.

Each sub-command lives in its owner's module and receives the remaining argv,
so services add and change their own options without touching this file.
"""

from __future__ import annotations

import importlib
import sys

# name -> ("module:function", one-line help). The function takes argv (list[str]) and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": ("devstack.localbroker:main", "start the bundled Kafka-compatible broker (Tansu)"),
    "db": (
        "devstack.dbcli:main",
        "start embedded PostgreSQL / run migrations (db start|upgrade|url)",
    ),
    "migrate": (
        "services.platform.migrations:main",
        "database migrations of every service (migrate upgrade|current); the production job",
    ),
    "up": ("devstack.supervisor:main", "run the whole stack locally under one supervisor"),
    "demo": ("devstack.demo:main", "the main job on the embedded default: stack + demo feed"),
    "schemas": ("schemas.export:main", "export JSON Schema / AsyncAPI files (schemas export)"),
    "intake": (
        "services.intake.cli:main",
        "run the intake service (intake [run] | gateway | relay | erase CASE_ID --region R)",
    ),
    "matcher": ("services.matcher.cli:main", "run the matcher service"),
    "notifier": (
        "services.notifier.cli:main",
        "run the notifier service (offers, expiry, signed webhooks, HTTP answers)",
    ),
    "review": (
        "services.review.cli:main",
        "run the review service (review [run] | token --role R --region X)",
    ),
    "audit": ("services.review.cli:audit_main", "verify the review audit log's hash chain (audit verify)"),
    "round": ("services.matcher.cli:round_main", "start a matching round for a region now"),
    "replay": ("services.matcher.cli:replay_main", "re-solve a recorded round and compare"),
    "demo-feed": (
        "devstack.demofeed:main",
        "publish a realistic synthetic region through the external topics",
    ),
    "solve": (
        "services.matcher.solver.cli:solve_main",
        "solve a problem file (DOMAIN.md) into a result file",
    ),
    "generate": ("devstack.generate:main", "write a realistic synthetic problem file"),
    "simulate": ("lab.simulate:main", "simulate a year per policy (wijkmatch, status quo) against hindsight"),
    "report": (
        "lab.report:main",
        "results monitor of a region from the recorded rounds, offers and decisions",
    ),
    "whatif": ("lab.whatif:main", "solve a region's current pool under a changed policy (writes nothing)"),
}


def _usage() -> str:
    lines = ["usage: wijkmatch COMMAND [ARGS...]", "", "commands:"]
    width = max(len(name) for name in COMMANDS)
    for name, (_, help_text) in COMMANDS.items():
        lines.append(f"  {name.ljust(width)}  {help_text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"wijkmatch: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[name]
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
