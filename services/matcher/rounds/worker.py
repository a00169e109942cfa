"""The solver in a worker process: the event loop never runs CP-SAT, and a stuck solve can be killed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from services.matcher.solver.params import SolveParams
from services.platform import chaos

_T = TypeVar("_T")


def source_revision(package_dir: Path, extra: bytes = b"") -> str:
    """The first 12 hex digits of a SHA-256 over a package's Python sources (relative path and bytes, in
    path order, subpackages included) and `extra`: it changes with any edit of the code, whatever the
    package version says. "unknown" when no source can be read (a build without .py files, a permission)."""
    digest = hashlib.sha256(extra)
    try:
        paths = sorted(package_dir.rglob("*.py"))
        for path in paths:
            digest.update(path.relative_to(package_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    except OSError:
        return "unknown"
    return digest.hexdigest()[:12] if paths else "unknown"


# What the solver's answer depends on besides its own package: the problem file's parser and the numeric
# libraries it calls (OR-Tools is recorded in its own column as well).
SOLVER_INPUTS = ("schemas/problem.py",)
SOLVER_LIBRARIES = ("ortools", "highspy", "numpy", "scipy")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def versions() -> dict[str, str]:
    """OR-Tools and wijkmatch versions as installed (recorded with every round), once per process.

    wijkmatch's carries the solver's revision as a local version label ("0.1.0+solver.1a2b3c4d5e6f"): a hash
    of the solver package's sources, `schemas/problem.py` and the versions of OR-Tools, highspy, numpy and
    scipy. The package version is not bumped for every solver change, and a replay must be able to say that
    the round was solved by other code (issue 15's review: deterministic rounds recorded before a solver
    change replayed as "not identical" with nothing saying why).
    """
    import schemas
    import services.matcher.solver as solver_package

    extra = b"".join(f"{name}=={_version(name)}\0".encode() for name in SOLVER_LIBRARIES)
    try:
        root = Path(schemas.__file__).parent.parent
        extra += b"".join((root / name).read_bytes() + b"\0" for name in SOLVER_INPUTS)
        revision = source_revision(Path(solver_package.__file__).parent, extra)
    except (OSError, TypeError):  # TypeError: a namespace package without __file__
        revision = "unknown"
    return {"ortools": _version("ortools"), "wijkmatch": f"{_version('wijkmatch')}+solver.{revision}"}


def solve(problem: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the worker process."""
    from services.matcher.solver import solve_problem

    delay_s = chaos.setting("matcher.solve_delay_s")
    if delay_s:
        time.sleep(delay_s)

    return solve_problem(problem, **parameters)


def solve_round(
    problem: dict[str, Any], parameters: dict[str, Any]
) -> tuple[dict[str, Any], Any, str | None]:
    """Runs inside the worker process: the solve, then the round's context for its events (eligibility
    and candidates per proposal, the unplaced list), which needs the problem parsed and its eligible
    pairs again: done here, next to the solve, it costs the service's event loop nothing (it was the
    largest piece of a round's CPU time there). The context is an add-on: a fault in it is returned as
    text (the round's events then go out without it), never raised."""
    from services.matcher.rounds.context import round_context

    result = solve(problem, parameters)
    try:
        return result, round_context(problem, result), None
    except Exception as exc:
        return result, None, repr(exc)[:500]


PARENT_CHECK_S = 1.0


def _exit_with_parent(parent: int, interval_s: float) -> None:
    """A worker's watchdog: exit as soon as the service that started it is gone. A pool worker holds both
    ends of its call queue's pipe, so it never sees EOF when the service dies: after a SIGKILL (or the OOM
    killer) of the matcher its workers stayed behind for good, idle, or finishing a solve nobody reads
    (tests/e2e/test_matcher_processes.py)."""
    while True:
        time.sleep(interval_s)
        if os.getppid() != parent:  # re-parented: the service died
            os._exit(1)


def _init_worker(nice: int) -> None:
    # Ignore Ctrl-C in workers: the parent decides whether a round finishes or is abandoned.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(), PARENT_CHECK_S), name="parent-watch", daemon=True
    ).start()
    # Consuming, heartbeats and health checks come first; the solver takes what CPU is left.
    if nice > 0:
        with contextlib.suppress(OSError):
            os.nice(nice)


def _warm_up() -> int:
    # The solver imports its engines where first used (a cold `wijkmatch solve` of a pure problem needs
    # none of them); a long-lived worker loads them all now, so no round pays for the imports.
    import services.matcher.rounds.context
    import services.matcher.solver.cpsat
    import services.matcher.solver.lp
    import services.matcher.solver.mip
    import services.matcher.solver.solve  # noqa: F401

    return os.getpid()


class SolverPool:
    """A small spawn-based process pool; `abandon()` kills running solves and starts afresh."""

    def __init__(self, processes: int, nice: int = 0) -> None:
        self._processes = processes
        self._nice = nice
        self._executor: ProcessPoolExecutor | None = None

    def _ensure(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self._processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self._nice,),
            )
        return self._executor

    async def start(self) -> None:
        executor = self._ensure()
        await asyncio.gather(
            *(asyncio.wrap_future(executor.submit(_warm_up)) for _ in range(self._processes))
        )

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """`fn(*args)` in a worker process (a module-level function; its arguments and result pickle)."""
        executor = self._ensure()
        try:
            return await asyncio.wrap_future(executor.submit(fn, *args))
        except BrokenProcessPool:
            self._executor = None
            raise

    async def solve(self, problem: dict[str, Any], parameters: SolveParams) -> dict[str, Any]:
        return await self.run(solve, problem, parameters.as_dict())

    async def solve_round(
        self, problem: dict[str, Any], parameters: SolveParams
    ) -> tuple[dict[str, Any], Any, str | None]:
        """The solve and the round context in one worker call: (result, RoundContext or None, error)."""
        return await self.run(solve_round, problem, parameters.as_dict())

    def abandon(self) -> None:
        """Kill every worker (and so any running solve); the next solve starts a new pool."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        for process in list(getattr(executor, "_processes", {}).values()):
            if process.is_alive():
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
