"""deploy/ renders with kustomize; every object validates against its schema (Kubernetes core, or the CRD of
its operator: Strimzi, KEDA, prometheus-operator) with unknown fields refused."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

from schemas.topics import ALL_TOPICS
from tests.unit.deploy.conftest import ROOT, render
from tests.unit.deploy.schemas import crd_validators, custom_resource_errors

KUBERNETES_VERSION = "1.33.0"
# Custom resources of operators: kubernetes-validate knows only core schemas.
CUSTOM_GROUPS = ("kafka.strimzi.io/", "keda.sh/", "monitoring.coreos.com/")
PROMETHEUS_OPERATOR_CRDS_PRESENT = ("monitoring.coreos.com/v1", "PrometheusRule") in crd_validators() and (
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
) in crd_validators()


def _is_custom(doc: dict) -> bool:
    return doc["apiVersion"].startswith(CUSTOM_GROUPS)


def test_every_kustomization_renders():
    kustomizations = sorted(p.parent for p in (ROOT / "deploy").rglob("kustomization.yaml"))
    assert len(kustomizations) >= 6
    for folder in kustomizations:
        assert render(folder), folder


def test_every_core_resource_validates_against_the_kubernetes_schema(production):
    core = [doc for doc in production if not _is_custom(doc)]
    assert len(core) >= 20
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("group", ["kafka.strimzi.io/", "keda.sh/"])
def test_every_strimzi_and_keda_resource_validates_against_its_crd(production, group):
    docs = [doc for doc in production if doc["apiVersion"].startswith(group)]
    assert docs
    errors = [error for doc in docs for error in custom_resource_errors(doc)]
    assert not errors, "\n".join(errors)


@pytest.mark.xfail(
    not PROMETHEUS_OPERATOR_CRDS_PRESENT,
    strict=True,
    reason="prometheus-operator CRDs (PrometheusRule, ServiceMonitor) are not in ../shared/crds yet",
)
def test_every_prometheus_operator_resource_validates_against_its_crd(production):
    docs = [doc for doc in production if doc["apiVersion"].startswith("monitoring.coreos.com/")]
    assert {doc["kind"] for doc in docs} == {"PrometheusRule", "ServiceMonitor"}
    errors = [error for doc in docs for error in custom_resource_errors(doc)]
    assert not errors, "\n".join(errors)


def test_the_strict_schemas_refuse_unknown_and_misplaced_fields(production):
    user = next(doc for doc in production if doc["kind"] == "KafkaUser")
    misspelt = {**user, "spec": {**user["spec"], "authorisation": user["spec"]["authorization"]}}
    assert any("authorisation" in error for error in custom_resource_errors(misspelt))
    scaled = next(doc for doc in production if doc["kind"] == "ScaledObject")
    wrong = {**scaled, "spec": {**scaled["spec"], "lagThreshold": "5"}}
    assert custom_resource_errors(wrong)
    assert custom_resource_errors({**user, "apiVersion": "kafka.strimzi.io/v1beta2"})  # no longer served


def test_every_topic_of_the_event_contract_has_a_kafka_topic(production):
    topics = {doc["spec"]["topicName"] for doc in production if doc["kind"] == "KafkaTopic"}
    assert topics == set(ALL_TOPICS)


def test_services_have_probes_limits_and_run_unprivileged(production):
    deployments = [doc for doc in production if doc["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} >= {
        "wijkmatch-intake",
        "wijkmatch-intake-gateway",
        "wijkmatch-matcher",
        "wijkmatch-notifier",
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert ":" in container["image"] and not container["image"].endswith(":latest")


def test_no_secret_values_are_committed(production):
    assert not [doc for doc in production if doc["kind"] == "Secret"]
    secret_names = {"DATABASE_URL", "WIJKMATCH_INTAKE_MASTER_KEY", "KAFKA_SASL_PASSWORD"}
    for deployment in (doc for doc in production if doc["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {env["name"] for env in container.get("env", [])}
            assert not names & secret_names
    for config in (doc for doc in production if doc["kind"] == "ConfigMap"):
        assert not set(config.get("data", {})) & secret_names


def test_ingresses_serve_tls_through_cert_manager_and_route_only_the_public_api(production):
    ingresses = [doc for doc in production if doc["kind"] == "Ingress"]
    services = {doc["metadata"]["name"]: doc for doc in production if doc["kind"] == "Service"}
    assert ingresses
    for ingress in ingresses:
        assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
        tls_hosts = {host for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
        for rule in ingress["spec"]["rules"]:
            assert rule["host"] in tls_hosts
            for path in rule["http"]["paths"]:
                assert path["path"] != "/" or path["pathType"] == "Exact", "a / prefix would publish /metrics"
                assert not _routes(path, ["/metrics", "/healthz", "/readyz"]), path
                backend = path["backend"]["service"]
                assert backend["name"] in services
                assert backend["port"]["name"] in {
                    p["name"] for p in services[backend["name"]]["spec"]["ports"]
                }


def _routes(path: dict, urls: list[str]) -> list[str]:
    """The urls an Ingress path sends to its backend (Exact, or Prefix by whole segments)."""
    prefix = path["path"].rstrip("/") or "/"
    if path["pathType"] == "Exact":
        return [url for url in urls if url == path["path"]]
    return [url for url in urls if url == prefix or url.startswith(prefix.rstrip("/") + "/")]


def _review_page_and_api_paths() -> list[str]:
    """Every path the review service's page and API routers declare (read from their source)."""
    entrypoints = ROOT / "services" / "review" / "entrypoints"
    page = (entrypoints / "page.py").read_text()
    api = (entrypoints / "api.py").read_text()
    (api_prefix,) = re.findall(r'APIRouter\(prefix="([^"]+)"', api)
    paths = re.findall(r'@router\.(?:get|post|put|patch|delete)\(\s*"([^"]+)"', page)
    paths += [
        api_prefix + p for p in re.findall(r'@router\.(?:get|post|put|patch|delete)\(\s*"([^"]+)"', api)
    ]
    return [*paths, *(f"/static/{f.name}" for f in (ROOT / "services" / "review" / "static").iterdir())]


def test_the_review_ingress_routes_every_page_and_api_path_and_nothing_internal(production):
    ingress = next(
        doc
        for doc in production
        if doc["kind"] == "Ingress" and doc["metadata"]["name"] == "wijkmatch-review"
    )
    paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    declared = _review_page_and_api_paths()
    assert len(declared) >= 15
    for url in declared:
        concrete = re.sub(r"\{[^}]+\}", "x", url)
        assert any(_routes(p, [concrete]) for p in paths), f"the review Ingress does not route {url}"
    for internal in ("/metrics", "/healthz", "/readyz"):
        assert not any(_routes(p, [internal]) for p in paths), internal
