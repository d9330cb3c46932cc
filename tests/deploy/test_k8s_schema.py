"""Every Kubernetes manifest is valid against the API schemas, offline: core kinds against the
schemas that kubernetes-validate bundles (strict: unknown fields are errors), KEDA's ScaledObject
against tests/deploy/schemas/. Both as written (base files) and as kustomize renders them."""
from __future__ import annotations

import copy
import functools
import json

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest

from .support import BASE, K8S_VERSIONS, NO_KUSTOMIZE, OVERLAYS, SCHEMAS, kustomization, kustomize_bin, \
    kustomize_build, load_yaml_docs

# kubernetes-validate re-reads its (large) definitions file and version list on every call: cache
# them for this process (read-only data), which makes these tests ~10x faster.
kv_utils.schema_contents = functools.lru_cache(maxsize=None)(kv_utils.schema_contents)
kv_utils.all_versions = functools.lru_cache(maxsize=None)(kv_utils.all_versions)
_valid: set[str] = set()

CRD_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.json"}


def _crd_validator(doc: dict):
    name = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
    if name is None:
        return None
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()))


def validate(doc: dict) -> None:
    key = json.dumps(doc, sort_keys=True)
    if key in _valid:  # kustomize renders the same documents for base and overlays
        return
    where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
    crd = _crd_validator(doc)
    if crd is not None:
        errors = sorted(crd.iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, f"{where}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)
        return
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(copy.deepcopy(doc), version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where} invalid for Kubernetes {version}: {exc.caused_by}")
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')} in Kubernetes "
                        f"{version} (add one under tests/deploy/schemas/ if it is a CRD)")
    _valid.add(key)


def test_the_validator_rejects_what_it_should():
    """The checks below are not vacuous: a misspelt field and a wrong type are caught."""
    doc = load_yaml_docs(BASE / "membership.yaml")[0]
    assert doc["kind"] == "Deployment"
    bad = copy.deepcopy(doc)
    bad["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)
    bad = copy.deepcopy(doc)
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8001"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)
    scaled = next(d for d in load_yaml_docs(BASE / "reporting-projector-scaledobject.yaml"))
    scaled = copy.deepcopy(scaled)
    scaled["spec"]["maxReplicas"] = 3
    assert list(_crd_validator(scaled).iter_errors(scaled))


@pytest.mark.parametrize("name", kustomization(BASE)["resources"])
def test_base_manifest_is_valid(name):
    docs = load_yaml_docs(BASE / name)
    assert docs, f"{name} is empty"
    for doc in docs:
        validate(doc)


@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_kustomize_build_is_valid(directory):
    if not kustomize_bin():
        pytest.skip(NO_KUSTOMIZE)
    docs = kustomize_build(directory)
    assert docs
    for doc in docs:
        assert doc["metadata"].get("namespace") == "congdoan" or doc["kind"] == "Namespace", doc["metadata"]
        validate(doc)
    # Every reference to the generated ConfigMap was rewritten to its hashed name.
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    assert any(n.startswith("congdoan-config-") for n in config_maps), config_maps
    text = json.dumps(docs)
    assert '"name": "congdoan-config"' not in text
