"""`wijkmatch solve`: stdout or -o file; exit 0 if solved, 2 for INVALID_INPUT (result file still written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli import main as wijkmatch
from services.matcher.solver.cli import solve_main
from tests.support.builders import case, problem, unit


def write(tmp_path: Path, data: object, name: str = "problem.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_valid_problem_to_stdout_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, problem([case("C1", priority=9)], [unit("U1")]))
    assert solve_main([str(path), "--workers", "1", "--seed", "3", "--time-limit", "5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "OPTIMAL"
    assert result["objective"]["priority"] == 9
    assert result["stats"]["seed"] == 3


def test_output_file_and_dispatcher(tmp_path: Path) -> None:
    path = write(tmp_path, problem([case("C1")], [unit("U1")]))
    out = tmp_path / "result.json"
    assert wijkmatch(["solve", str(path), "-o", str(out), "--deterministic", "--workers", "1"]) == 0
    result = json.loads(out.read_text())
    assert result["status"] == "OPTIMAL"
    assert result["stats"]["deterministic"] is True


def test_invalid_input_exits_2_and_still_writes_the_result(tmp_path: Path) -> None:
    bad = problem([case("C1", nationality="x")], [unit("U1")])
    out = tmp_path / "result.json"
    assert solve_main([str(write(tmp_path, bad)), "-o", str(out)]) == 2
    result = json.loads(out.read_text())
    assert result["status"] == "INVALID_INPUT"
    assert result["objective"] is None
    assert result["errors"] == [{"path": "/cases/0/nationality", "message": "unknown field"}]


def test_max_share_is_read_exactly_from_the_file(tmp_path: Path) -> None:
    text = json.dumps(problem([case("C1")], [unit("U1")])).replace(
        '"units"',
        '"policy": {"mix_rules": [{"scope": "complex", "groups": ["homeless"], "max_share": 0.12345}]},'
        ' "units"',
    )
    out = tmp_path / "result.json"
    assert solve_main([str(write(tmp_path, text)), "-o", str(out)]) == 2
    assert json.loads(out.read_text())["errors"][0]["path"] == "/policy/mix_rules/0/max_share"


def test_integer_written_as_1_point_0_is_rejected(tmp_path: Path) -> None:
    text = json.dumps(problem([case("C1")], [unit("U1")])).replace(
        '"household_size": 1', '"household_size": 1.0'
    )
    out = tmp_path / "result.json"
    assert solve_main([str(write(tmp_path, text)), "-o", str(out)]) == 2
    assert json.loads(out.read_text())["errors"][0]["path"] == "/cases/0/household_size"


def test_broken_json_and_missing_file_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    assert solve_main([str(write(tmp_path, "{not json")), "-o", str(out)]) == 2
    assert json.loads(out.read_text())["errors"][0]["path"] == ""
    assert solve_main([str(tmp_path / "missing.json"), "-o", str(out)]) == 2


def test_a_pure_assignment_loads_neither_cp_sat_nor_scipy(tmp_path: Path) -> None:
    """The pure path is one min-cost flow; CP-SAT (with pandas) and scipy would add ~0.35 s of imports."""
    import subprocess
    import sys

    path = write(tmp_path, problem([case("C1"), case("C2")], [unit("U1")]))
    script = (
        "import sys; from services.matcher.solver.cli import solve_main; "
        f"code = solve_main([{str(path)!r}, '-o', {str(tmp_path / 'r.json')!r}]); "
        "heavy = sorted(m for m in ('ortools.sat.python.cp_model', 'scipy', 'pandas') if m in sys.modules); "
        "print(code, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "0 []"
    assert json.loads((tmp_path / "r.json").read_text())["stats"]["engine"] == "min_cost_flow"
