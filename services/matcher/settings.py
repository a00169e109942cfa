"""Matcher settings: debounce, solver budget, refusal consequence; env prefix WIJKMATCH_MATCHER_."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field

from services.platform.settings import ServiceSettings, service_config

SCHEMA = "matcher"
SOURCE = "urn:wijkmatch:matcher"
CONSUMER_GROUP = "wijkmatch-matcher"


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class MatcherSettings(ServiceSettings):
    model_config = service_config("matcher")

    http_port: int = 8020
    # The internal health port: Prometheus /metrics (never on the API port; docs/security.md). Bind the pod
    # IP (0.0.0.0) in a cluster; 0 picks a free port (tests running several matchers).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9020, ge=0, le=65535)
    # On-demand rounds (POST /v1/rounds/{region}, role admin or service): a token bucket per region.
    round_requests_per_minute: float = Field(default=2.0, gt=0)
    round_requests_burst: int = Field(default=3, ge=1)
    # Policy what-ifs (POST /v1/regions/{region}/whatif): two solves each, so a token bucket per region,
    # one what-if solving at a time per process, and a solver limit per solve.
    whatif_requests_per_minute: float = Field(default=2.0, gt=0)
    whatif_requests_burst: int = Field(default=3, ge=1)
    whatif_time_limit_s: float = Field(default=10.0, gt=0, le=120)
    # Each what-if is solved in its own process (rounds/whatif_pool.py) at this lower CPU priority (rounds'
    # solvers have solver_nice), and stopped after this wall-clock deadline (deterministic solves have
    # work limits, not wall-clock ones).
    whatif_nice: int = Field(default=15, ge=0, le=19)
    whatif_deadline_s: float = Field(default=60.0, gt=0, le=600)
    debounce_s: float = Field(default=30.0, gt=0)
    max_delay_s: float = Field(default=120.0, gt=0)
    scheduler_interval_s: float = Field(default=0.5, gt=0)
    failure_backoff_s: float = Field(default=30.0, ge=0)
    solver_processes: int = Field(default=1, ge=1)
    # Rounds in flight at once (building and recording are database work; solving queues for a process).
    round_concurrency: int = Field(default=4, ge=1)
    # Records per fetched batch at most; a partition's pool events are applied in a few statements for the
    # whole batch (adapters/consumer.py), so a larger batch catches up faster after a burst.
    consumer_batch: int = Field(default=500, ge=1)
    # A partition's share of one fetch. aiokafka hands out a partition's buffered records before the next
    # partition's: with the default 1 MiB (~1,500 pool events) one busy partition kept the others waiting
    # for seconds while the matcher caught up. 256 KiB is the producers' batch size (platform.kafka).
    max_partition_fetch_bytes: int = Field(default=256 * 1024, ge=16 * 1024)
    # How long the broker may hold a fetch when there is nothing new. The bundled broker (Tansu) answers a
    # held fetch only when this runs out, not when a record arrives, so it is a floor under every pool
    # event's wait in a quiet moment (aiokafka's default is 500 ms; intake uses 100 ms too).
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=500)
    solver_workers: int = Field(default=1, ge=1)
    solver_nice: int = Field(default=5, ge=0, le=19)  # lower CPU priority of the solver processes
    deterministic: bool = True
    refusal_policy: Literal["forbid_pair", "park_case"] = "forbid_pair"
    park_days: float = Field(default=14.0, ge=0)
    round_retention_days: float = Field(
        default=90.0, gt=0
    )  # older round records (problem, result) are purged
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    consumer_group: str = CONSUMER_GROUP
    instance_id: str = Field(default_factory=_default_instance)
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    # Fault injection for the crash tests ONLY: the worker sleeps this long before solving, so a test
    # can SIGKILL the service while a round is provably in flight. Never set it in production.
    organisations: str | None = Field(default=None, validation_alias="WIJKMATCH_ORGANISATIONS")
