"""A service package is deployable only with its manifests: the day services/<name>/app.py exists, this
fails until deploy/ has its Deployment, KafkaUser (with its ACL derivation) and ServiceMonitor — and, for
a service with a public page or API, its Ingress."""

from __future__ import annotations

import pytest

from tests.unit.deploy.conftest import ROOT
from tests.unit.deploy.test_kafka_acls import DEPLOYMENTS_OF_PACKAGE, KAFKA_PROCESSES

# Services whose HTTP is for people or organisations outside the cluster -> their public Deployment.
PUBLIC = {"intake": "wijkmatch-intake-gateway", "review": "wijkmatch-review"}


def service_packages() -> set[str]:
    """Packages under services/ that are a running service (the shape every service has: an app.py)."""
    return {
        path.parent.name for path in (ROOT / "services").glob("*/app.py") if path.parent.name != "platform"
    }


def test_service_packages_are_found():
    assert service_packages() >= {"intake", "matcher", "notifier", "review"}


def check_manifests(production: list[dict], packages: set[str]) -> None:
    kinds: dict[str, set[str]] = {}
    for doc in production:
        kinds.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    backends = {
        path["backend"]["service"]["name"]
        for doc in production
        if doc["kind"] == "Ingress"
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    for package in sorted(packages):
        assert package in DEPLOYMENTS_OF_PACKAGE, (
            f"services/{package} is a service but tests/unit/deploy/test_kafka_acls.py does not know its "
            "Deployments: add deploy/base/<name>.yaml, a KafkaUser, a ServiceMonitor and its ACL derivation"
        )
        assert (ROOT / "deploy" / "base" / f"{package}.yaml").exists(), f"no deploy/base/{package}.yaml"
        for name in DEPLOYMENTS_OF_PACKAGE[package]:
            assert name in kinds.get("Deployment", set()), f"{package}: no Deployment {name}"
            assert name in kinds.get("Service", set()), f"{package}: no Service {name}"
            assert name in kinds.get("KafkaUser", set()), f"{package}: no KafkaUser {name}"
            assert name in kinds.get("ServiceMonitor", set()), f"{package}: no ServiceMonitor {name}"
            assert name in KAFKA_PROCESSES, f"{package}: no ACL derivation for {name}"
        if package in PUBLIC:
            assert PUBLIC[package] in backends, f"{package}: no Ingress routes to {PUBLIC[package]}"


def test_every_service_package_has_its_manifests(production):
    check_manifests(production, service_packages())


def test_a_service_package_without_manifests_fails(production):
    with pytest.raises(AssertionError, match="services/newservice is a service"):
        check_manifests(production, service_packages() | {"newservice"})
    without_user = [doc for doc in production if doc["kind"] != "KafkaUser"]
    with pytest.raises(AssertionError, match="no KafkaUser"):
        check_manifests(without_user, {"review"})
    without_monitor = [doc for doc in production if doc["kind"] != "ServiceMonitor"]
    with pytest.raises(AssertionError, match="no ServiceMonitor"):
        check_manifests(without_monitor, {"notifier"})
    without_ingress = [doc for doc in production if doc["kind"] != "Ingress"]
    with pytest.raises(AssertionError, match="no Ingress"):
        check_manifests(without_ingress, {"intake"})
