"""The registry's `webhooks:` section as the notifier reads it, and the shared registry accepting it."""

from __future__ import annotations

import pytest

from services.notifier.adapters.endpoints import EndpointError, registry_webhooks
from services.notifier.core.signing import new_secret
from services.platform.admission.registry import Registry

SECRET = new_secret()


def document(*hooks: dict) -> dict:
    return {
        "organisations": [
            {
                "id": "woonstad",
                "sources": ["urn:org:corp:woonstad"],
                "types": ["offer.accepted"],
                "webhooks": list(hooks),
            },
            {"id": "mitros", "sources": ["urn:org:corp:mitros"]},
        ]
    }


def hook(**changes: object) -> dict:
    return {
        "id": "w1",
        "url": "https://hooks.example.org/",
        "events": ["offer.made"],
        "secret": SECRET,
        **changes,
    }


def test_the_shared_registry_loads_a_file_with_webhooks() -> None:
    registry = Registry.from_mapping(document(hook()))
    assert registry.by_id("woonstad") is not None


def test_webhooks_are_read_per_organisation_with_secrets_from_the_environment() -> None:
    env_secret = new_secret()
    specs = registry_webhooks(
        document(
            hook(),
            hook(id="w2", secret=None, secret_env="WOONSTAD_WHSEC", events=["offer.expired", "offer.made"]),
        ),
        environ={"WOONSTAD_WHSEC": env_secret},
    )
    assert [(s.id, s.organisation, s.secret, s.events) for s in specs] == [
        ("w1", "woonstad", SECRET, ("offer.made",)),
        ("w2", "woonstad", env_secret, ("offer.expired", "offer.made")),
    ]


@pytest.mark.parametrize(
    ("hooks", "message"),
    [
        ((hook(), hook()), "webhook id 'w1' appears twice"),
        ((hook(secret=None),), "needs `secret_env`"),
        ((hook(secret=None, secret_env="UNSET_VAR_XYZ"),), "UNSET_VAR_XYZ is unset"),
        ((hook(secret="whsec_short"),), "a webhook secret"),
        ((hook(events=["case.registered"]),), "unknown webhook event types"),
        ((hook(extra=1),), "invalid webhook"),
    ],
)
def test_malformed_webhooks_are_refused_with_a_reason(hooks: tuple[dict, ...], message: str) -> None:
    with pytest.raises(EndpointError, match=message.replace("(", r"\(")):
        registry_webhooks(document(*hooks), environ={})
