"""FastStream subscriber: decisions, proposals, offer responses and the internal pool -> offer state.

One message, one transaction: inbox row (dedupe on source + id), state change, outbox rows and delivery
rows commit together, and only then is the offset committed (AckPolicy.MANUAL). Messages the notifier
cannot use are counted and skipped, never retried for ever: on the external topic (offer responses) the
matcher already sends the rejections, so the notifier does not send them twice. An answer there closes its
offer only if its sender may answer it and it names the offer's region, proposal, case and unit (the HTTP
endpoint's rules, core/offers.py); otherwise it is counted as `refused` and changes nothing.

From the internal pool topic (written by intake only) the notifier learns who owns what: a unit upsert's
`owner` is the unit's corporation, a case upsert's `owner` the case's referrer. It keeps those ids only —
the snapshots (a case's care categories among them) are validated and dropped, never stored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.events import DATA_MODELS, CareClaimed, CloudEvent, MatchApproved, MatchCancelled, short_type
from schemas.pool import POOL_DATA_MODELS, POOL_SOURCE, PoolCloudEvent
from schemas.topics import CARE_RESPONSES, DECISIONS, OFFER_RESPONSES, POOL, PROPOSALS, pool_type
from services.notifier.adapters import care, metrics
from services.notifier.adapters import repository as repo
from services.notifier.adapters.tables import SCHEMA
from services.notifier.core.offers import ANSWER_STATUS, ResponsePeriods
from services.platform.inbox import record_once
from services.platform.kafka import no_decode, parse_without_headers
from services.platform.observability import ProgressProbe

log = logging.getLogger("wijkmatch.notifier")
TOPICS: tuple[str, ...] = (DECISIONS, PROPOSALS, OFFER_RESPONSES, POOL, CARE_RESPONSES)
REDELIVERY_PAUSE_S = 1.0
# Types the notifier acts on; the others on its topics are recorded as not for it.
HANDLED = frozenset(
    {"match.approved", "match.cancelled", "offer.accepted", "offer.declined", "care.claimed", "care.answered"}
)
# Pool upserts that name an owner the notifier sends offers to.
OWNER_POOL_TYPES = {pool_type("unit", "upserted"): "unit", pool_type("case", "upserted"): "case"}


class SenderLookup(Protocol):
    """The organisation registry's lookup by CloudEvents source (services/platform admission registry)."""

    def by_source(self, source: str) -> Any: ...


class EventApplier:
    """Applies one Kafka record in the caller's transaction; returns the outcome label."""

    def __init__(
        self,
        registry: SenderLookup,
        periods: ResponsePeriods,
        source: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = registry
        self.periods = periods
        self.source = source
        self.clock = clock

    async def apply(
        self, session: AsyncSession, topic: str, partition: int, offset: int, value: bytes | None
    ) -> str:
        if topic == POOL:
            return await self._apply_pool(session, topic, partition, offset, value)
        try:
            document = json.loads(value or b"")
            envelope = CloudEvent.model_validate(document)
            kind = short_type(envelope.type)
            if kind not in HANDLED:
                return "ignored"
            data = DATA_MODELS[envelope.type].model_validate(envelope.data)
        except (ValueError, ValidationError, RecursionError, TypeError):
            return "invalid"
        sender = None
        if kind == "care.answered":
            # Care answers count only from the care responses topic and a registered provider allowed to
            # send them; whether it is the request's own provider is judged against the request.
            sender = self._answer_sender(topic, envelope, data, expected_topic=CARE_RESPONSES)
            if sender is None:
                return "refused"
        elif topic == CARE_RESPONSES:
            return "refused"
        elif kind in ANSWER_STATUS:
            # Answers count only from the responses topic and a registered sender allowed to send them;
            # whether that sender may answer this offer is judged against the offer (close_answered).
            sender = self._answer_sender(topic, envelope, data)
            if sender is None:
                return "refused"
        elif topic == OFFER_RESPONSES:
            return "refused"  # only answers count from the external topic
        if not await record_once(session, SCHEMA, envelope.source, envelope.id, topic, partition, offset):
            return "duplicate"
        if kind == "match.approved":
            assert isinstance(data, MatchApproved)
            if await care.waits_for_care(session, data):
                # Issue 16: the offer goes out when every care need is confirmed (perhaps already now).
                outcome = await care.offer_when_arranged(
                    session, data.proposal_id, self.clock(), self.periods, self.source
                )
            else:
                outcome = await repo.make_offer_for(session, data, self.clock(), self.periods, self.source)
        elif kind == "match.cancelled":
            assert isinstance(data, MatchCancelled)
            await care.cancel_for_proposal(session, data.proposal_id, self.clock())
            outcome = await repo.cancel_proposal(session, data, envelope.model_dump(mode="json"))
        elif kind == "care.claimed":
            assert isinstance(data, CareClaimed)
            if envelope.source != "urn:wijkmatch:matcher":
                return "refused"
            outcome = await care.on_claimed(session, data, self.clock(), self.periods, self.source)
        elif kind == "care.answered":
            assert sender is not None
            outcome = await care.answer_from_topic(
                session, data, sender, self.clock(), self.periods, self.source
            )
            if outcome.detail.startswith("refused:"):
                log.warning(
                    "care answer refused; the request is unchanged",
                    extra={"event_id": envelope.id, "detail": outcome.detail},
                )
                return "refused"
        else:
            assert sender is not None
            outcome = await repo.close_answered(session, data, sender, ANSWER_STATUS[kind])
            if outcome.detail.startswith("refused:"):
                log.warning(
                    "offer answer refused; the offer is unchanged",
                    extra={"type": kind, "event_id": envelope.id, "detail": outcome.detail},
                )
                return "refused"
        if not outcome.applied:
            log.info(
                "event changed nothing",
                extra={"type": kind, "event_id": envelope.id, "detail": outcome.detail},
            )
        return "applied" if outcome.applied else "no_change"

    async def _apply_pool(
        self, session: AsyncSession, topic: str, partition: int, offset: int, value: bytes | None
    ) -> str:
        """A pool unit / case upsert naming its owner -> unit_owners / case_referrers (ids only)."""
        try:
            envelope = PoolCloudEvent.model_validate(json.loads(value or b""))
            entity = OWNER_POOL_TYPES.get(envelope.type)
            if entity is None:
                return "ignored"
            data = POOL_DATA_MODELS[envelope.type].model_validate(envelope.data)
        except (ValueError, ValidationError, RecursionError, TypeError):
            return "invalid"
        if envelope.source != POOL_SOURCE:
            return "refused"  # only intake writes the pool (ACL); anything else teaches nothing
        owner: str | None = data.owner  # type: ignore[attr-defined]
        if owner is None:
            return "ignored"  # written before intake named owners
        if not await record_once(session, SCHEMA, envelope.source, envelope.id, topic, partition, offset):
            return "duplicate"
        region: str = data.region  # type: ignore[attr-defined]
        key: str = data.key  # type: ignore[attr-defined]
        if entity == "unit":
            await repo.record_unit_owner(session, region, key, owner, self.source)
        else:
            lease_provider: str | None = getattr(data, "lease_provider", None)
            await repo.record_case_referrer(session, region, key, owner, self.source, lease_provider)
        return "applied"

    def _answer_sender(
        self, topic: str, envelope: CloudEvent, data: Any, expected_topic: str = OFFER_RESPONSES
    ) -> str | None:
        """The organisation id of an answer's sender, if the answer may count at all: read from its
        responses topic, from a registered sender allowed that type and region (as intake checks)."""
        if topic != expected_topic:
            return None
        org = self.registry.by_source(envelope.source)
        if org is None or not org.may_send_type(envelope.type) or not org.may_send_region(data.region):
            return None
        return str(org.id)


def register_consumer(
    broker: KafkaBroker,
    sessions: async_sessionmaker[AsyncSession],
    applier: EventApplier,
    *,
    group_id: str,
    probe: ProgressProbe | None = None,
    on_applied: Callable[[], None] | None = None,
) -> Any:
    subscriber = broker.subscriber(
        *TOPICS,
        group_id=group_id,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
    )

    @subscriber(parser=parse_without_headers, decoder=no_decode)
    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        if probe is not None:
            probe.touch()
        try:
            async with sessions() as session, session.begin():
                outcome = await applier.apply(session, raw.topic, raw.partition, raw.offset, raw.value)
        except Exception as exc:
            log.error(
                "event could not be applied; it will be read again",
                extra={
                    "topic": raw.topic,
                    "partition": raw.partition,
                    "offset": raw.offset,
                    "error": type(exc).__name__,
                },
            )
            await asyncio.sleep(REDELIVERY_PAUSE_S)
            await message.nack()
            return
        metrics.EVENTS.labels(raw.topic, outcome).inc()
        if outcome == "invalid":
            log.warning(
                "unreadable event skipped",
                extra={"topic": raw.topic, "partition": raw.partition, "offset": raw.offset},
            )
        await message.ack()
        if outcome == "applied" and on_applied is not None:
            on_applied()

    return consume
