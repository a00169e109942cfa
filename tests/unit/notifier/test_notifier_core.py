"""Pure rules of the notifier: offers, expiry, answers, Standard Webhooks signing, retries, URL checks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from schemas.events import MatchApproved
from services.notifier.core.offers import (
    ResponsePeriods,
    answer_refusal,
    check_answer,
    event_id_for,
    is_due,
    make_offer,
    offer_id_for,
)
from services.notifier.core.retry import RetryPolicy, Verdict, judge, parse_retry_after
from services.notifier.core.signing import (
    SecretError,
    active_secrets,
    new_secret,
    secret_key,
    sign_delivery,
)
from services.notifier.core.urls import EndpointUrlError, check_targets, check_url_shape

NOW = datetime(2026, 5, 1, 9, 30, 15, 123456, tzinfo=UTC)
PERIODS = ResponsePeriods(default_hours=120, by_region={"utrecht-west": 48})


def approval(proposal: str = "p-1", region: str = "holland-rijnland") -> MatchApproved:
    return MatchApproved(
        region=region, proposal_id=proposal, case="c-1", unit="u-1", decided_at=NOW - timedelta(hours=3)
    )


# -- offers --------------------------------------------------------------------------------------


def test_offer_id_is_deterministic_per_proposal_and_differs_between_proposals() -> None:
    assert offer_id_for("p-1") == offer_id_for("p-1")
    assert offer_id_for("p-1") != offer_id_for("p-2")
    assert event_id_for("o", "offer.made") != event_id_for("o", "offer.expired")


def test_offer_deadline_counts_from_making_the_offer_with_the_region_period() -> None:
    default = make_offer(approval(), NOW, PERIODS)
    assert default.respond_by == (NOW + timedelta(hours=120)).replace(microsecond=0)
    assert default.offer_id == offer_id_for("p-1")
    assert (default.case, default.unit, default.proposal_id) == ("c-1", "u-1", "p-1")
    override = make_offer(approval(region="utrecht-west"), NOW, PERIODS)
    assert override.respond_by == (NOW + timedelta(hours=48)).replace(microsecond=0)


def test_only_open_offers_past_their_deadline_are_due() -> None:
    deadline = NOW
    assert is_due("open", deadline, NOW)
    assert not is_due("open", deadline, NOW - timedelta(seconds=1))
    for closed in ("accepted", "declined", "expired", "cancelled"):
        assert not is_due(closed, deadline, NOW + timedelta(days=1))


def _offer(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "offer_id": "o-1",
        "proposal_id": "p-1",
        "region": "r",
        "case_id": "c-1",
        "unit_id": "u-1",
        "corporation": "woonstad",
        "status": "open",
        "respond_by": NOW + timedelta(hours=1),
    }
    row.update(changes)
    return row


ANSWER = {"region": "r", "offer_id": "o-1", "proposal_id": "p-1", "case": "c-1", "unit": "u-1"}


def test_the_owning_corporation_may_answer_an_open_offer_in_time() -> None:
    assert check_answer(offer=_offer(), organisation="woonstad", data=ANSWER, now=NOW).ok


def test_another_organisation_and_an_unknown_offer_both_get_404() -> None:
    other = check_answer(offer=_offer(), organisation="mitros", data=ANSWER, now=NOW)
    unknown = check_answer(offer=None, organisation="woonstad", data=ANSWER, now=NOW)
    assert (other.ok, other.status_code) == (False, 404)
    assert (unknown.status_code, unknown.reason) == (404, other.reason)


def test_an_answer_naming_another_unit_or_after_the_deadline_or_closed_is_refused() -> None:
    wrong = check_answer(offer=_offer(), organisation="woonstad", data={**ANSWER, "unit": "u-2"}, now=NOW)
    assert (wrong.status_code, wrong.reason) == (422, "data.unit does not match the offer")
    late = check_answer(offer=_offer(), organisation="woonstad", data=ANSWER, now=NOW + timedelta(hours=2))
    assert late.status_code == 409
    closed = check_answer(offer=_offer(status="expired"), organisation="woonstad", data=ANSWER, now=NOW)
    assert (closed.status_code, closed.ok) == (409, False)


def test_while_the_units_owner_is_unknown_any_registered_sender_may_answer_as_in_the_matcher() -> None:
    # services/matcher/decisions/validation.answer_refused: an unknown owner refuses no registered sender
    for organisation in ("woonstad", "mitros"):
        check = check_answer(offer=_offer(corporation=None), organisation=organisation, data=ANSWER, now=NOW)
        assert (check.ok, check.status_code) == (True, 202)
        assert answer_refusal(_offer(corporation=None), organisation, ANSWER) is None


def test_an_answer_from_the_topic_counts_only_from_the_owner_and_naming_the_offers_case_unit_region() -> None:
    assert answer_refusal(_offer(), "woonstad", ANSWER) is None
    assert answer_refusal(_offer(), "mitros", ANSWER) == "not_the_owner"
    for field in ("region", "proposal_id", "case", "unit"):
        assert answer_refusal(_offer(), "woonstad", {**ANSWER, field: "x"}) == f"{field}_mismatch"
    # the owner check comes first: a stranger learns nothing about the offer from the reason
    assert answer_refusal(_offer(), "mitros", {**ANSWER, "unit": "x"}) == "not_the_owner"


# -- signing -------------------------------------------------------------------------------------


def test_signature_verifies_with_the_independent_standardwebhooks_package() -> None:
    secret = new_secret()
    body = b'{"type":"nl.wijkmatch.offer.made","data":{"offer_id":"o-1"}}'
    headers = sign_delivery("msg_1", body, datetime.now(UTC), [secret]).as_dict()
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) == {
        "type": "nl.wijkmatch.offer.made",
        "data": {"offer_id": "o-1"},
    }
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_during_rotation_both_secrets_verify_and_after_the_window_only_the_new_one() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    body = b"{}"
    during = active_secrets(new, old, now + timedelta(hours=1), now)
    assert during == [new, old]
    headers = sign_delivery("msg_2", body, now, during).as_dict()
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(body, headers)
    Webhook(old).verify(body, headers)
    after = active_secrets(new, old, now - timedelta(seconds=1), now)
    headers_after = sign_delivery("msg_2", body, now, after).as_dict()
    Webhook(new).verify(body, headers_after)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers_after)


def test_secrets_must_be_whsec_base64_of_24_to_64_bytes() -> None:
    assert len(secret_key(new_secret())) == 32
    for bad in ("abc", "whsec_not base64!", "whsec_" + "QUFB", ""):
        with pytest.raises(SecretError):
            secret_key(bad)


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.DELIVERED),
        (204, Verdict.DELIVERED),
        (None, Verdict.RETRY),
        (408, Verdict.RETRY),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (410, Verdict.GONE),
        (400, Verdict.DEAD),
        (404, Verdict.DEAD),
        (301, Verdict.DEAD),
    ],
)
def test_attempt_verdicts(status: int | None, verdict: Verdict) -> None:
    assert judge(status) is verdict


def test_backoff_grows_exponentially_with_jitter_inside_half_to_full_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=2.0, cap_s=20.0)
    rng = random.Random(7)
    for attempt, ceiling in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 16.0), (5, 20.0), (9, 20.0)):
        delays = [policy.backoff_s(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jitter spreads them


def test_attempts_run_out_after_max_attempts_and_retry_after_wins_when_longer() -> None:
    policy = RetryPolicy(max_attempts=3, base_s=1.0, cap_s=10.0, max_retry_after_s=100.0)
    rng = random.Random(1)
    assert policy.next_delay_s(3, None, rng) is None
    assert policy.next_delay_s(1, 30.0, rng) == 30.0
    assert policy.next_delay_s(1, 1000.0, rng) == 100.0
    assert 0.5 <= (policy.next_delay_s(1, 0.0, rng) or 0) <= 1.0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after("Fri, 01 May 2026 09:31:15 GMT", NOW) == pytest.approx(59.877, abs=0.01)
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


# -- endpoint URLs -------------------------------------------------------------------------------


def test_production_urls_must_be_https_without_credentials() -> None:
    assert check_url_shape("https://hooks.example.org/wm", allow_http=False) == "hooks.example.org"
    for bad in ("http://hooks.example.org/", "ftp://x/", "https://u:p@hooks.example.org/", "https:///x"):
        with pytest.raises(EndpointUrlError):
            check_url_shape(bad, allow_http=False)
    assert check_url_shape("http://127.0.0.1:9000/hook", allow_http=True) == "127.0.0.1"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.4",
        "172.16.5.5",
        "169.254.169.254",
        "::1",
        "fd00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ],
)
def test_non_public_targets_are_refused_unless_allowed(address: str) -> None:
    with pytest.raises(EndpointUrlError):
        check_targets("hooks.example.org", [address], allow_private=False)
    check_targets("hooks.example.org", [address], allow_private=True)


def test_a_public_target_passes_and_one_private_address_among_public_ones_fails() -> None:
    check_targets("hooks.example.org", ["93.184.216.34"], allow_private=False)
    with pytest.raises(EndpointUrlError):
        check_targets("hooks.example.org", ["93.184.216.34", "10.0.0.1"], allow_private=False)
    with pytest.raises(EndpointUrlError):
        check_targets("localhost", ["93.184.216.34"], allow_private=False)
