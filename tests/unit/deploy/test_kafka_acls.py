"""Every KafkaUser grants exactly what its process does on Kafka, as derived from the code."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from schemas.events import TOPIC_OF_TYPE
from tests.unit.deploy.kafka_access import Access, outbox_and_producer_writes, package_files

# Deployment (and KafkaUser) name -> the code that says what that process does on Kafka.


def _intake() -> Access:
    from services.intake.entrypoints.consumer import INTAKE_TOPICS
    from services.intake.settings import IntakeSettings

    writes = outbox_and_producer_writes(package_files("intake", exclude=("entrypoints/gateway.py",)))
    assert not writes.unresolved, writes.unresolved
    return Access(
        frozenset(INTAKE_TOPICS),
        frozenset(writes.topics),
        frozenset({IntakeSettings.model_fields["group_id"].default}),
    )


def _gateway() -> Access:
    from services.intake.entrypoints import gateway

    writes = outbox_and_producer_writes(package_files("intake", exclude=()))
    gateway_sites = [site for site in writes.unresolved if site.startswith("services/intake/entrypoints/")]
    assert gateway_sites and gateway_sites == writes.unresolved, writes.unresolved
    # The producer's topic is the gateway's routing of the body: every type of the contract, and junk.
    bodies = [json.dumps({"type": t, "data": {"region": "r"}}).encode() for t in TOPIC_OF_TYPE]
    bodies += [b"not json", b"[]", json.dumps({"type": "nl.wijkmatch.unknown"}).encode()]
    routed = {gateway._route(body)[0] for body in bodies}
    return Access(frozenset(), frozenset(routed), frozenset())


def _matcher() -> Access:
    from services.matcher.adapters.consumer import TOPICS
    from services.matcher.settings import MatcherSettings

    writes = outbox_and_producer_writes(package_files("matcher"))
    assert not writes.unresolved, writes.unresolved
    return Access(
        frozenset(TOPICS),
        frozenset(writes.topics),
        frozenset({MatcherSettings.model_fields["consumer_group"].default}),
    )


def _notifier() -> Access:
    from services.notifier.adapters.consumer import TOPICS
    from services.notifier.settings import NotifierSettings

    writes = outbox_and_producer_writes(package_files("notifier"))
    assert not writes.unresolved, writes.unresolved
    return Access(
        frozenset(TOPICS),
        frozenset(writes.topics),
        frozenset({NotifierSettings.model_fields["group_id"].default}),
    )


def _review() -> Access:
    from services.review.entrypoints.consumer import TOPICS
    from services.review.settings import ReviewSettings

    writes = outbox_and_producer_writes(package_files("review"))
    assert not writes.unresolved, writes.unresolved
    return Access(
        frozenset(TOPICS),
        frozenset(writes.topics),
        frozenset({ReviewSettings.model_fields["consumer_group"].default}),
    )


KAFKA_PROCESSES = {
    "wijkmatch-intake": _intake,
    "wijkmatch-intake-gateway": _gateway,
    "wijkmatch-matcher": _matcher,
    "wijkmatch-notifier": _notifier,
    "wijkmatch-review": _review,
}
# Service package -> its Deployments. A new service package (one with an app.py) must be added here, with
# its Deployment, KafkaUser and ServiceMonitor; tests/unit/deploy/test_service_manifests.py enforces it.
DEPLOYMENTS_OF_PACKAGE = {
    "intake": ("wijkmatch-intake", "wijkmatch-intake-gateway"),
    "matcher": ("wijkmatch-matcher",),
    "notifier": ("wijkmatch-notifier",),
    "review": ("wijkmatch-review",),
}


def granted(user: dict) -> Access:
    """Reads, writes and groups a KafkaUser's ACLs grant; anything else they grant fails the test."""
    reads, writes, groups = set(), set(), set()
    for acl in user["spec"]["authorization"]["acls"]:
        resource, operations = acl["resource"], set(acl["operations"])
        assert acl.get("type", "allow") == "allow" and acl.get("host", "*") == "*", acl
        assert resource.get("patternType", "literal") == "literal" and "*" not in resource["name"], acl
        if resource["type"] == "topic":
            assert operations <= {"Read", "Write", "Describe"} and "Describe" in operations, acl
            assert operations & {"Read", "Write"}, acl
            if "Read" in operations:
                reads.add(resource["name"])
            if "Write" in operations:
                writes.add(resource["name"])
        elif resource["type"] == "group":
            assert operations == {"Read"}, acl
            groups.add(resource["name"])
        else:
            pytest.fail(f"{user['metadata']['name']}: no {resource['type']} rights are needed: {acl}")
    return Access(frozenset(reads), frozenset(writes), frozenset(groups))


def _users(rendered: list[dict]) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in rendered if doc["kind"] == "KafkaUser"}


@pytest.mark.parametrize("process", sorted(KAFKA_PROCESSES))
def test_kafka_user_grants_exactly_what_the_code_reads_writes_and_commits(production, process):
    derived = KAFKA_PROCESSES[process]()
    assert derived.reads or derived.writes  # the derivation found the process's traffic
    user = _users(production)[process]
    assert user["spec"]["authentication"]["type"] == "tls"
    acls = granted(user)
    assert acls.reads == derived.reads, f"{process}: ACL reads differ from the code"
    assert acls.writes == derived.writes, f"{process}: ACL writes differ from the code"
    assert acls.groups == derived.groups, f"{process}: ACL groups differ from the code"


def test_each_deployment_connects_as_its_own_kafka_user(production):
    users = _users(production)
    deployments = {doc["metadata"]["name"]: doc for doc in production if doc["kind"] == "Deployment"}
    assert set(deployments) == set(KAFKA_PROCESSES)
    for name, deployment in deployments.items():
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["kafka-user"]["secret"]["secretName"] == name
        assert name in users
        assert volumes["kafka-ca"]["secret"]["secretName"] == "wijkmatch-cluster-ca-cert"
        mounts = {
            m["name"]: m["mountPath"]
            for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        }
        assert mounts["kafka-user"] == "/etc/kafka/user" and mounts["kafka-ca"] == "/etc/kafka/ca"
    config = next(
        doc
        for doc in production
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "wijkmatch-config"
    )
    assert config["data"]["KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert config["data"]["KAFKA_SSL_CERTFILE"] == "/etc/kafka/user/user.crt"
    assert config["data"]["KAFKA_SSL_KEYFILE"] == "/etc/kafka/user/user.key"
    assert config["data"]["KAFKA_SSL_CAFILE"] == "/etc/kafka/ca/ca.crt"


def test_the_broker_admits_only_authenticated_authorised_clients(production):
    kafka = next(doc for doc in production if doc["kind"] == "Kafka")
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    for listener in kafka["spec"]["kafka"]["listeners"]:
        assert listener["tls"] is True and listener["authentication"]["type"] == "tls", listener
    ports = {listener["port"] for listener in kafka["spec"]["kafka"]["listeners"]}
    config = next(
        doc
        for doc in production
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "wijkmatch-config"
    )
    assert int(config["data"]["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1]) in ports


def test_keda_reads_lag_with_describe_rights_on_exactly_its_triggers(production):
    topics, groups = defaultdict(set), set()
    for scaled in (doc for doc in production if doc["kind"] == "ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["authenticationRef"]["name"] == "wijkmatch-kafka"
            assert trigger["metadata"]["tls"] == "enable"
            topics[trigger["metadata"]["topic"]].add(scaled["metadata"]["name"])
            groups.add(trigger["metadata"]["consumerGroup"])
    acls = _users(production)["wijkmatch-keda"]["spec"]["authorization"]["acls"]
    assert all(acl["operations"] == ["Describe"] for acl in acls)
    assert {a["resource"]["name"] for a in acls if a["resource"]["type"] == "topic"} == set(topics)
    assert {a["resource"]["name"] for a in acls if a["resource"]["type"] == "group"} == groups
    auth = next(doc for doc in production if doc["kind"] == "TriggerAuthentication")
    assert {(ref["parameter"], ref["name"]) for ref in auth["spec"]["secretTargetRef"]} == {
        ("ca", "wijkmatch-cluster-ca-cert"),
        ("cert", "wijkmatch-keda"),
        ("key", "wijkmatch-keda"),
    }


def test_every_kafka_user_belongs_to_a_process_or_to_keda(production):
    assert set(_users(production)) == set(KAFKA_PROCESSES) | {"wijkmatch-keda"}


def _short(topic: str) -> str:
    return topic.removeprefix("wijkmatch.").removesuffix(".v1")


def test_the_operations_doc_table_shows_the_granted_acls(production):
    from tests.unit.deploy.conftest import ROOT

    text = (ROOT / "docs" / "operations.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`wijkmatch-") and cells[0] != "`wijkmatch-keda`":
            rows[cells[0].strip("`")] = cells[1:]
    users = _users(production)
    assert set(rows) == set(KAFKA_PROCESSES)

    def names(cell: str) -> set[str]:
        return set() if cell == "—" else {n.strip().strip("`") for n in cell.split(",")}

    for name, (reads, writes, groups) in rows.items():
        acls = granted(users[name])
        assert names(reads) == {_short(t) for t in acls.reads}, name
        assert names(writes) == {_short(t) for t in acls.writes}, name
        assert names(groups) == set(acls.groups), name
