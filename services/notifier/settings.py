"""Notifier settings: the shared platform settings plus WIJKMATCH_NOTIFIER_* options."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from services.notifier.core.offers import ResponsePeriods
from services.platform.settings import ServiceSettings, service_config


class NotifierSettings(ServiceSettings):
    model_config = service_config("notifier", hide_input_in_errors=True)

    # Organisation registry YAML (API keys for the answer endpoint, webhook endpoints); None = demo registry.
    organisations: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WIJKMATCH_ORGANISATIONS", "organisations"),
    )
    group_id: str = "wijkmatch-notifier"
    http_port: int = 8040
    # The internal health port: Prometheus /metrics (never on the API port; docs/security.md). Bind the pod
    # IP (0.0.0.0) in a cluster; 0 picks a free port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9040, ge=0, le=65535)
    migrate_on_start: bool = True
    topic_partitions: int = 4
    source: str = "urn:wijkmatch:notifier"
    # Response period: hours from the moment the offer is made; per-region overrides as JSON
    # (WIJKMATCH_NOTIFIER_RESPONSE_PERIOD_BY_REGION='{"utrecht-west": 72}').
    response_period_hours: float = Field(default=120.0, gt=0)
    response_period_by_region: dict[str, float] = Field(default_factory=dict)
    expiry_poll_s: float = Field(default=5.0, gt=0)
    # Care requests (issue 16): working days (Mon-Fri) a care provider has to answer, with per-region
    # overrides as JSON (WIJKMATCH_NOTIFIER_CARE_RESPONSE_WORKING_DAYS_BY_REGION='{"utrecht-west": 2}'),
    # and the planned start of care: this many days after the approval.
    care_response_working_days: int = Field(default=3, ge=1, le=60)
    care_response_working_days_by_region: dict[str, int] = Field(default_factory=dict)
    care_start_lead_days: int = Field(default=14, ge=0, le=365)
    # Webhook delivery
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_backoff_base_s: float = Field(default=5.0, gt=0)
    webhook_backoff_cap_s: float = Field(default=3600.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    webhook_per_endpoint_concurrency: int = Field(default=4, ge=1)
    webhook_total_concurrency: int = Field(default=64, ge=1)
    webhook_poll_s: float = Field(default=1.0, gt=0)
    # A claimed delivery whose worker died is taken again after this long (>= timeout).
    webhook_lease_s: float = Field(default=60.0, gt=0)
    # Overlap window of a rotated secret (both signatures are sent meanwhile).
    webhook_rotation_overlap_hours: float = Field(default=24.0, ge=0)
    # Local use only: http:// endpoints and loopback/private targets (the demo receiver on 127.0.0.1).
    webhook_allow_http: bool = False
    webhook_allow_private: bool = False
    # Admin API (endpoints, dead letters, replay): OIDC bearer tokens with the admin role (WIJKMATCH_AUTH_*,
    # services/platform/auth.py), as every staff route of the stack.
    relay_poll_interval_s: float = 0.2
    # HTTP answers per organisation (token bucket, as intake's gateway)
    answer_rate_limit_per_s: float = Field(default=10.0, gt=0)
    answer_rate_limit_burst: int = Field(default=20, ge=1)
    # Delivered webhooks (and their attempt log) are deleted after this long; dead ones are kept.
    delivery_retention_days: float = Field(default=30.0, gt=0)

    def response_periods(self) -> ResponsePeriods:
        return ResponsePeriods(
            self.response_period_hours,
            dict(self.response_period_by_region),
            care_working_days=self.care_response_working_days,
            care_working_days_by_region=dict(self.care_response_working_days_by_region),
            care_start_lead_days=self.care_start_lead_days,
        )
