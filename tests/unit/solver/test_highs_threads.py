"""HiGHS runs on one thread whatever the host (solver/highs.py), and a run HiGHS reports as failed is said so.

Each check runs in a fresh interpreter: HiGHS keeps one thread pool per process, created by the first run,
so what a test process saw before would decide the outcome.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import json, os
    import numpy as np
    from schemas.problem import validate_problem
    from services.matcher.solver import highs
    from services.matcher.solver.compile import compile_problem
    from services.matcher.solver.lp import ColumnLp
    from services.matcher.solver.mip import solve_mip
    from tests.unit.solver._instances import region_problem

    def threads():
        return len(os.listdir("/proc/self/task"))

    parsed, _ = validate_problem(region_problem(60, 24, 21))
    comp = compile_problem(parsed)
    before = threads()
    chosen, proven = solve_mip(comp, time_limit_s=20, presolve=True)
    lp = ColumnLp(comp)
    lp.add(np.ones(comp.n_pairs, dtype=bool))
    solved = lp.solve(time_limit_s=20)
    after = threads()
    # A model asking for another thread count than the process's pool: HiGHS refuses to run it.
    h = highs.new_model()
    h.setOptionValue("threads", 4)
    h.addVars(1, np.array([0.0]), np.array([1.0]))
    notes = []
    ran = highs.run(h, "probe", notes)
    print(json.dumps({"before": before, "after": after, "mip": chosen is not None, "proven": proven,
                      "lp": solved is not None and solved.optimal, "ran": ran, "notes": notes}))
    """
)


def test_highs_starts_no_threads_and_a_failed_run_is_reported() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["mip"] and found["proven"] and found["lp"]
    # Without `threads` set, HiGHS's MIP left a worker per core behind (2 -> 3 on a 2-core machine).
    assert found["after"] <= found["before"]
    assert found["ran"] is False
    assert found["notes"] and "run failed" in found["notes"][0]
