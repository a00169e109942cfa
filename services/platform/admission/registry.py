"""Organisation registry: who may send which event types for which regions, and with which API keys.

YAML format (path in WIJKMATCH_ORGANISATIONS; default: demo_organisations.yaml next to this package):

    organisations:
      - id: woonstad                       # the value `corporation` / `referrer` / `provider` must carry
        name: Woonstad (demo)              # optional, for people
        sources: [urn:org:corp:woonstad]   # CloudEvents `source` URIs this organisation sends as
        types: [vacancy.published, vacancy.withdrawn]   # short (or nl.wijkmatch.-prefixed) type names
        regions: [holland-rijnland]        # or "*" for every region
        api_keys:                          # SHA-256 hex digests of the HTTP API keys, never the keys
          - 5e88...                        # a digest, see below
        webhooks:                          # optional: the notifier's webhook endpoints (docs/notifier.md)
          - {id: woonstad-offers, url: "https://...", events: [offer.made], secret_env: WOONSTAD_WHSEC}
        id_prefixes: [wst-]                # optional: the organisation's own range of unit/case ids
    require_id_prefixes: true              # optional (default false): every sender of units or cases
                                           # must have id_prefixes — set it in production

Id ranges (docs/events.md, "Who owns an id"): a unit or case id that begins with an organisation's prefix
can be sent only by that organisation, and an organisation with prefixes sends only ids in its range. No two
organisations' prefixes overlap (neither may begin with the other). With `require_id_prefixes` nobody can
claim another organisation's future id first ("id squatting"): ownership goes to the first sender of an id,
and the ranges make the rightful owner the only possible first sender.

Generate a digest for a key:  printf %s 'THE-KEY' | sha256sum
(or: python -c "import hashlib,sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())" THE-KEY)

A source URI belongs to exactly one organisation; an API key hash to exactly one organisation.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from schemas.events import CODE_PATTERN, DATA_MODELS, REGION_PATTERN, SHA256_PATTERN, full_type

ENV_VAR = "WIJKMATCH_ORGANISATIONS"
DEMO_REGISTRY_PATH = Path(__file__).resolve().parent / "demo_organisations.yaml"


class RegistryError(ValueError):
    """The registry file is missing or malformed (message says where)."""


def hash_api_key(api_key: str) -> str:
    """The SHA-256 hex digest stored in the registry for an API key."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


class _OrganisationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=200, pattern=CODE_PATTERN)]
    name: str | None = None
    sources: Annotated[list[Annotated[str, Field(min_length=1, pattern=r"^\S+$")]], Field(min_length=1)]
    types: list[str] = Field(default_factory=list)
    regions: Literal["*"] | list[Annotated[str, Field(pattern=REGION_PATTERN)]] = Field(default_factory=list)
    api_keys: list[Annotated[str, Field(pattern=SHA256_PATTERN)]] = Field(default_factory=list)
    # Webhook endpoints of the organisation: read and checked by the notifier (docs/notifier.md).
    webhooks: list[dict[str, Any]] = Field(default_factory=list)
    id_prefixes: list[Annotated[str, Field(min_length=2, max_length=40, pattern=CODE_PATTERN)]] = Field(
        default_factory=list
    )

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(t for t in value if full_type(t) not in DATA_MODELS)
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}")
        return value


class _RegistrySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    organisations: list[_OrganisationSpec]
    require_id_prefixes: bool = False


# The event types whose `id` names a unit or case: the ids an organisation owns (ownership in intake).
OWNED_ID_TYPES = frozenset(
    full_type(t)
    for t in ("vacancy.published", "vacancy.withdrawn", "case.registered", "case.updated", "case.withdrawn")
)


@dataclass(frozen=True, slots=True)
class Organisation:
    id: str
    sources: frozenset[str]
    types: frozenset[str]  # full type names
    regions: frozenset[str] | None  # None = every region ("*")
    api_key_hashes: frozenset[str] = field(default_factory=frozenset)
    name: str | None = None
    id_prefixes: tuple[str, ...] = ()

    @property
    def sends_owned_ids(self) -> bool:
        return not self.types.isdisjoint(OWNED_ID_TYPES)

    def may_send_type(self, type_name: str) -> bool:
        return full_type(type_name) in self.types

    def may_send_region(self, region: str) -> bool:
        return self.regions is None or region in self.regions


class Registry:
    """Lookups by source URI, organisation id and API key."""

    def __init__(self, organisations: Iterable[Organisation], *, require_id_prefixes: bool = False) -> None:
        self.require_id_prefixes = require_id_prefixes
        self._prefixes: list[tuple[str, Organisation]] = []
        self._by_id: dict[str, Organisation] = {}
        self._by_source: dict[str, Organisation] = {}
        self._by_key_hash: dict[str, Organisation] = {}
        for org in organisations:
            if org.id in self._by_id:
                raise RegistryError(f"organisation id {org.id!r} appears twice")
            self._by_id[org.id] = org
            for source in org.sources:
                if source in self._by_source:
                    raise RegistryError(f"source {source!r} belongs to two organisations")
                self._by_source[source] = org
            for digest in org.api_key_hashes:
                if digest in self._by_key_hash:
                    raise RegistryError(f"an API key hash of {org.id!r} is used by another organisation")
                self._by_key_hash[digest] = org
            if require_id_prefixes and org.sends_owned_ids and not org.id_prefixes:
                raise RegistryError(
                    f"organisation {org.id!r} sends units or cases but has no id_prefixes "
                    "(require_id_prefixes is set)"
                )
            for prefix in org.id_prefixes:
                for other, owner in self._prefixes:
                    if owner.id != org.id and (prefix.startswith(other) or other.startswith(prefix)):
                        raise RegistryError(
                            f"id prefix {prefix!r} of {org.id!r} overlaps {other!r} of {owner.id!r}"
                        )
                self._prefixes.append((prefix, org))

    def id_range_owner(self, entity_id: str) -> Organisation | None:
        """The organisation whose registered id range holds `entity_id` (None: in nobody's range)."""
        for prefix, org in self._prefixes:
            if entity_id.startswith(prefix):
                return org
        return None

    def id_range_error(self, organisation: Organisation, entity_id: str) -> str | None:
        """Why `organisation` may not send this unit or case id (None: it may)."""
        owner = self.id_range_owner(entity_id)
        if owner is not None and owner.id != organisation.id:
            return "lies in the id range registered to another organisation; use an id in your own range"
        if owner is None and organisation.id_prefixes:
            return f"must begin with one of organisation {organisation.id}'s id prefixes: " + ", ".join(
                organisation.id_prefixes
            )
        return None

    @property
    def organisations(self) -> tuple[Organisation, ...]:
        return tuple(self._by_id.values())

    def by_id(self, org_id: str) -> Organisation | None:
        return self._by_id.get(org_id)

    def by_source(self, source: str) -> Organisation | None:
        return self._by_source.get(source)

    def by_api_key(self, api_key: str) -> Organisation | None:
        """The organisation an HTTP API key belongs to (None if unknown)."""
        digest = hash_api_key(api_key)
        org = self._by_key_hash.get(digest)
        # The dict lookup is keyed by the digest, so timing says nothing about the key; compare anyway.
        if org is not None and any(hmac.compare_digest(digest, h) for h in org.api_key_hashes):
            return org
        return None

    @classmethod
    def from_mapping(cls, document: Mapping[str, Any]) -> Registry:
        try:
            spec = _RegistrySpec.model_validate(dict(document))
        except ValidationError as exc:
            problems = "; ".join(
                "/".join(str(p) for p in err["loc"]) + ": " + err["msg"]
                for err in exc.errors(include_input=False, include_url=False)
            )
            raise RegistryError(f"invalid organisation registry: {problems}") from None
        organisations = [
            Organisation(
                id=o.id,
                name=o.name,
                sources=frozenset(o.sources),
                types=frozenset(full_type(t) for t in o.types),
                regions=None if o.regions == "*" else frozenset(o.regions),
                api_key_hashes=frozenset(o.api_keys),
                id_prefixes=tuple(o.id_prefixes),
            )
            for o in spec.organisations
        ]
        return cls(organisations, require_id_prefixes=spec.require_id_prefixes)


def registry_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Explicit path, else $WIJKMATCH_ORGANISATIONS, else the demo registry."""
    if path:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEMO_REGISTRY_PATH


def load_registry(path: str | os.PathLike[str] | None = None) -> Registry:
    """Read and check a registry YAML file (see the module docstring for the format)."""
    import yaml

    resolved = registry_path(path)
    try:
        text = resolved.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read organisation registry {resolved}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegistryError(f"organisation registry {resolved} is not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise RegistryError(f"organisation registry {resolved} must be a mapping with 'organisations'")
    try:
        return Registry.from_mapping(document)
    except RegistryError as exc:
        raise RegistryError(f"{resolved}: {exc}") from None
