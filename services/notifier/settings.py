"""Notifier settings: the shared platform settings plus WIJKMATCH_NOTIFIER_* options."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr

from services.notifier.core.offers import ResponsePeriods
from services.platform.settings import ServiceSettings, service_config

# INSECURE, published in docs/notifier.md: local demo and tests only (refused unless the database is local,
# `check_admin_key`). Set WIJKMATCH_NOTIFIER_ADMIN_API_KEY.
INSECURE_LOCAL_ADMIN_KEY = "demo-notifier-admin"


class NotifierSettings(ServiceSettings):
    model_config = service_config("notifier", hide_input_in_errors=True)

    # Organisation registry YAML (API keys for the answer endpoint, webhook endpoints); None = demo registry.
    organisations: str | None = Field(
        default=None,
        validation_alias=AliasChoices("WIJKMATCH_ORGANISATIONS", "organisations"),
    )
    group_id: str = "wijkmatch-notifier"
    http_port: int = 8040
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
    # Admin API (endpoints, dead letters, replay): one shared key until the admin role moves to OIDC tokens
    # (services/platform/auth.py, issue 17). Never empty.
    admin_api_key: SecretStr = SecretStr(INSECURE_LOCAL_ADMIN_KEY)
    relay_poll_interval_s: float = 0.2
    # HTTP answers per organisation (token bucket, as intake's gateway)
    answer_rate_limit_per_s: float = Field(default=10.0, gt=0)
    answer_rate_limit_burst: int = Field(default=20, ge=1)
    # Delivered webhooks (and their attempt log) are deleted after this long; dead ones are kept.
    delivery_retention_days: float = Field(default=30.0, gt=0)

    @property
    def uses_insecure_admin_key(self) -> bool:
        return self.admin_api_key.get_secret_value() == INSECURE_LOCAL_ADMIN_KEY

    def check_admin_key(self) -> None:
        """Refuse an admin key that would open the admin API (fail closed, as intake's master key and the
        review service's signing key): an empty one always, the published demo key unless the database is
        on this machine (local development and tests)."""
        if not self.admin_api_key.get_secret_value().strip():
            raise RuntimeError(
                "WIJKMATCH_NOTIFIER_ADMIN_API_KEY is empty: set it to a long random value "
                "(an empty key would open the admin API)"
            )
        if self.uses_insecure_admin_key and not self.database_is_local:
            raise RuntimeError(
                "the notifier refuses the INSECURE published admin key with a database that is not on this "
                "machine: set WIJKMATCH_NOTIFIER_ADMIN_API_KEY to a long random value"
            )

    def response_periods(self) -> ResponsePeriods:
        return ResponsePeriods(
            self.response_period_hours,
            dict(self.response_period_by_region),
            care_working_days=self.care_response_working_days,
            care_working_days_by_region=dict(self.care_response_working_days_by_region),
            care_start_lead_days=self.care_start_lead_days,
        )
