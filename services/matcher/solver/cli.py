"""The `wijkmatch solve` command: read a problem file, solve it, write the result (stdout by default)."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.matcher.solver.clock import process_started
from services.matcher.solver.solve import invalid_result, solve_problem

EXIT_OK, EXIT_INVALID = 0, 2


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wijkmatch solve", description="Solve a problem file into a result file."
    )
    p.add_argument("problem", type=Path, help="problem JSON (DOMAIN.md)")
    p.add_argument("-o", "--output", type=Path, help="result JSON (default: stdout)")
    p.add_argument("--time-limit", type=_positive_float, help="seconds for the whole run (default: policy)")
    p.add_argument("--workers", type=_non_negative_int, help="CP-SAT workers (default 2)")
    p.add_argument("--seed", type=_non_negative_int, help="random seed (default: policy.seed)")
    p.add_argument(
        "--deterministic", action="store_true", help="deterministic work limit instead of the wall clock"
    )
    p.add_argument(
        "--previous",
        type=Path,
        help="the previous round's result JSON: its new (not pinned) pairs are the warm start and are kept "
        "among equally good solutions",
    )
    return p


def previous_pairs(path: Path) -> tuple[list[list[str]] | None, list[dict[str, str]]]:
    """The new pairs of a previous result file (or a plain list of [case, unit] pairs)."""
    data, errors = read_problem(path)
    if errors:
        return None, [{"path": "/previous", "message": "the previous result file cannot be read"}]
    rows = data.get("assignments") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        return None, [{"path": "/previous", "message": "not a result file or a list of pairs"}]
    pairs = []
    for row in rows:
        if isinstance(row, dict):
            if row.get("pinned"):
                continue
            row = [row.get("case"), row.get("unit")]
        pairs.append(row)
    return pairs, []


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def read_problem(path: Path) -> tuple[Any, list[dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None, [{"path": "", "message": "the problem file cannot be read"}]
    try:
        return json.loads(text, parse_float=Decimal), []
    except json.JSONDecodeError as exc:
        return None, [{"path": "", "message": f"not valid JSON (line {exc.lineno}, column {exc.colno})"}]


def solve_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    # The time limit covers the whole run: interpreter start-up and imports, reading, solving, writing.
    started = process_started()
    data, errors = read_problem(args.problem)
    previous = None
    if not errors and args.previous is not None:
        previous, errors = previous_pairs(args.previous)
    if errors:
        result = invalid_result(None, errors, started)
    else:
        result = solve_problem(
            data,
            time_limit_s=args.time_limit,
            workers=args.workers,
            seed=args.seed,
            deterministic=args.deterministic,
            started_at=started,
            previous=previous,
        )
    text = json.dumps(result, indent=2, ensure_ascii=False, default=_json_default) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_INVALID if result["status"] == "INVALID_INPUT" else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return solve_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
