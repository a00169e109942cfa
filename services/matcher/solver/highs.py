"""HiGHS (highspy) model objects as every solver stage creates them: quiet, one thread, errors not swallowed.

- The core class `highspy._Highs`: the `highspy.Highs` wrapper installs Python callbacks on creation and
  prints HiGHS's banner to the process's stdout, where `wijkmatch solve` writes its result.
- One thread (`HIGHS_THREADS`): without the option HiGHS's MIP starts a worker per core for symmetry
  detection whatever the round's `workers` say (verified: 2 → 3 OS threads on this 2-core machine, one per
  core on a larger host), and HiGHS keeps one thread pool per process, so a later model asking for another
  count fails to run (`kError`). Every model in the process therefore sets the same count, before its
  first run. One thread also keeps a node-limited run's answer independent of the machine.
- `run` checks what `Highs.run()` returns: an error is logged and reported as "no solution", never mistaken
  for "no solution in time" without a trace.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

HIGHS_THREADS = 1


def new_model() -> Any:
    """A quiet single-threaded HiGHS model (highspy's core class)."""
    from highspy._core import _Highs

    h = _Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", HIGHS_THREADS)
    return h


def run(h: Any, what: str, notes: list[str] | None = None) -> bool:
    """`h.run()`; False (logged, and noted in `notes` when given) when HiGHS reports an error."""
    import highspy

    status = h.run()
    if status == highspy.HighsStatus.kError:
        message = f"HiGHS {what}: run failed ({h.getModelStatus()}); its answer is not used"
        log.warning("HiGHS run failed", extra={"stage": what, "model_status": str(h.getModelStatus())})
        if notes is not None:
            notes.append(message)
        return False
    return True
