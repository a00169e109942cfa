"""Offline validation of custom resources against their operators' CRD schemas, unknown fields refused.

The CRD files are data copied unchanged from the operators' repositories into the team's shared folder
(`../shared/crds/` beside the repository, see its README); WIJKMATCH_EXTRA_CRDS names further folders
(os.pathsep-separated) to validate against CRDs not yet there. The API server prunes or refuses fields a CRD
does not declare; here every object schema without `x-kubernetes-preserve-unknown-fields` gets
`additionalProperties: false`, so a misspelt or misplaced field fails the test instead of vanishing.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[3]
SHARED_CRDS = ROOT.parent / "shared" / "crds"


def crd_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("WIJKMATCH_EXTRA_CRDS", "").split(os.pathsep) if p]
    return [SHARED_CRDS, *extra]


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) -> a strict validator, for every served version of every CRD file found."""
    validators: dict[tuple[str, str], jsonschema.Draft7Validator] = {}
    for path in sorted(p for folder in crd_dirs() for p in folder.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(_strict(schema))
    return validators


def custom_resource_errors(doc: dict[str, Any]) -> list[str]:
    """Schema errors of one custom resource; a kind/version no CRD serves is an error too."""
    validator = crd_validators().get((doc.get("apiVersion", ""), doc.get("kind", "")))
    name = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    if validator is None:
        return [
            f"{name}: no CRD in {[str(d) for d in crd_dirs()]} serves "
            f"{doc.get('apiVersion')} {doc.get('kind')}"
        ]
    return [
        f"{name}: {'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(doc)
    ]
