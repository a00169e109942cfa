"""A replay says when the round was solved by other code (issue 15's review: a deterministic round recorded
before a solver change replayed as "not identical" with nothing saying why)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import services.matcher.solver as solver_package
from services.matcher.pool.problem import canonical_json, sha256_text
from services.matcher.rounds.replay import replay_round
from services.matcher.rounds.worker import source_revision, versions
from services.matcher.solver import solve_problem
from services.matcher.solver.params import SolveParams
from tests.support.builders import case, problem, unit


def test_the_solver_revision_follows_its_sources_and_libraries(tmp_path: Path) -> None:
    copy = tmp_path / "solver"
    shutil.copytree(Path(solver_package.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = source_revision(copy, b"numpy==2.0")
    assert before == source_revision(Path(solver_package.__file__).parent, b"numpy==2.0")  # the same code
    assert source_revision(copy, b"numpy==2.1") != before  # a library upgrade is other code too
    engine = copy / "engine.py"
    engine.write_text(engine.read_text() + "\n# a change\n")
    assert source_revision(copy, b"numpy==2.0") != before
    assert source_revision(tmp_path / "empty") == "unknown"  # no sources: nothing to tell builds apart
    assert re.fullmatch(r".+\+solver\.[0-9a-f]{12}", versions()["wijkmatch"])


def _recorded_round(**row_versions: str | None) -> dict:
    p = problem([case(f"c{i}", priority=100) for i in range(4)], [unit(f"u{j}") for j in range(3)])
    params = SolveParams(time_limit_s=2.0, workers=1, seed=0, deterministic=True)
    result = solve_problem(p, **params.as_dict())
    text = canonical_json(p)
    row = {"id": "r1", "problem": text, "problem_sha256": sha256_text(text), "parameters": params.as_dict()}
    return {**row, "result": result, **row_versions}


def test_a_replay_on_other_code_names_the_versions_when_it_differs() -> None:
    now = versions()
    row = _recorded_round(ortools_version=now["ortools"], wijkmatch_version="0.1.0+solver.000000000000")
    same = replay_round(row)
    assert same.identical
    assert same.version_changes() == [f"wijkmatch 0.1.0+solver.000000000000 -> {now['wijkmatch']}"]
    assert same.differences() == []  # identical anyway: nothing to explain

    row["result"] = {**row["result"], "objective": {**row["result"]["objective"], "priority": -1}}
    different = replay_round(row)  # a recorded objective this code does not reach
    assert not different.identical
    lines = different.differences()
    assert any("solved by other code" in line and now["wijkmatch"] in line for line in lines), lines


def test_a_replay_on_the_recording_code_blames_no_version() -> None:
    now = versions()
    row = _recorded_round(ortools_version=now["ortools"], wijkmatch_version=now["wijkmatch"])
    row["result"] = {**row["result"], "objective": {**row["result"]["objective"], "priority": -1}}
    outcome = replay_round(row)
    assert not outcome.identical
    assert outcome.version_changes() == []
    assert not any("other code" in line for line in outcome.differences())
    # A round recorded before versions were kept: nothing to compare, nothing claimed.
    assert replay_round(_recorded_round()).version_changes() == []


def test_a_round_recorded_without_a_solver_revision_is_said_to_be_so() -> None:
    now = versions()
    row = _recorded_round(ortools_version=now["ortools"], wijkmatch_version="0.1.0")
    row["result"] = {**row["result"], "objective": {**row["result"]["objective"], "priority": -1}}
    lines = replay_round(row).differences()
    assert any("recorded without a solver revision" in line for line in lines), lines
    assert not any("solved by other code" in line for line in lines)
