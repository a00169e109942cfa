"""Review settings: the shared platform settings plus WIJKMATCH_REVIEW_* options (auth: WIJKMATCH_AUTH_*)."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator

from services.platform.settings import ServiceSettings, service_config

SCHEMA = "review"
SOURCE = "urn:wijkmatch:review"
CONSUMER_GROUP = "wijkmatch-review"


class ReviewSettings(ServiceSettings):
    model_config = service_config("review")

    http_port: int = 8030
    # The internal health port: Prometheus /metrics (never on the API port; docs/security.md). Bind the pod
    # IP (0.0.0.0) in a cluster; 0 picks a free port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9030, ge=0, le=65535)
    # Where the region's policy asks for four eyes: comma-separated region codes, or `*` for every
    # region. Set by the region office per deployment; the policy.set event (DOMAIN.md's Policy) has no
    # such field, and the matcher has no use for it, so it is the review service's own setting.
    four_eyes_regions: str = ""
    consumer_group: str = CONSUMER_GROUP
    topic_partitions: int = 4
    migrate_on_start: bool = True
    relay_poll_interval_s: float = 0.2
    # Bulk approve: at most this many proposals per request, and this many bulk requests per minute per
    # person (a token bucket), so a script cannot rubber-stamp a round.
    bulk_max_items: int = Field(default=50, ge=1, le=500)
    bulk_per_minute: int = Field(default=6, ge=1)
    page_size_max: int = Field(default=200, ge=1)
    # Idempotency-Key records are kept this long.
    idempotency_retention_h: float = Field(default=48.0, gt=0)
    # Mark the web page's sign-in cookie Secure (HTTPS only). Off for the local default on plain HTTP;
    # deploy/base/review.yaml turns it on.
    cookie_secure: bool = False
    # The sign-in page offers buttons that mint development tokens (only in WIJKMATCH_AUTH_MODE=local).
    dev_sign_in: bool = True
    queue_poll_s: float = Field(default=5.0, gt=0)
    # The what-if page asks the matcher's API (POST /v1/regions/{region}/whatif) with the signed-in
    # person's token; a what-if is two solves, so the wait is generous.
    matcher_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8020")
    whatif_timeout_s: float = Field(default=90.0, gt=0)

    @field_validator("four_eyes_regions")
    @classmethod
    def _regions(cls, value: str) -> str:
        return ",".join(part.strip() for part in value.split(",") if part.strip())

    @property
    def four_eyes(self) -> frozenset[str]:
        return frozenset(part for part in self.four_eyes_regions.split(",") if part)
