"""Every rendered object validates against the Kubernetes OpenAPI schema of 1.27 and of the
newest version kubernetes-validate knows (strict: unknown fields are errors).

The two prometheus-operator kinds are not in the core schema: they are validated against the
small schemas below (the fields of the CRDs these manifests use, unknown fields rejected),
an explicit allow-list rather than a silent skip."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from kubernetes_validate.utils import (  # type: ignore[import-untyped]
    latest_version,
    major_minor,
)

from tests.manifests.kustomize import Obj, buildable

pytestmark = pytest.mark.integration

VERSIONS = ("1.27", major_minor(latest_version()))

DURATION = {"type": "string",
            "pattern": r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                       r"(([0-9]+)s)?(([0-9]+)ms)?$"}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
LABEL_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}},
}
METADATA = {"type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "labels": STRING_MAP,
                           "annotations": STRING_MAP}}


def crd(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object", "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": {"const": "monitoring.coreos.com/v1"},
                       "kind": {"const": kind}, "metadata": METADATA, "spec": spec},
    }


CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    "PodMonitor": crd("PodMonitor", {
        "type": "object", "additionalProperties": False, "required": ["selector"],
        "properties": {
            "selector": LABEL_SELECTOR,
            "namespaceSelector": {"type": "object"},
            "jobLabel": {"type": "string"},
            "podMetricsEndpoints": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                               "scheme": {"enum": ["http", "https"]},
                               "interval": DURATION, "scrapeTimeout": DURATION,
                               "honorLabels": {"type": "boolean"},
                               "relabelings": {"type": "array"},
                               "metricRelabelings": {"type": "array"}}}},
        },
    }),
    "PrometheusRule": crd("PrometheusRule", {
        "type": "object", "additionalProperties": False, "required": ["groups"],
        "properties": {"groups": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "rules"],
            "properties": {
                "name": {"type": "string"}, "interval": DURATION,
                "rules": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["expr"],
                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                    "properties": {"alert": {"type": "string"}, "record": {"type": "string"},
                                   "expr": {"type": "string", "minLength": 1},
                                   "for": DURATION, "keep_firing_for": DURATION,
                                   "labels": STRING_MAP, "annotations": STRING_MAP}}},
            }}}},
    }),
}


def validate(obj: Obj, version: str) -> str | None:
    """None if valid, else one line saying what is wrong."""
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    if obj["kind"] in CRD_SCHEMAS:
        errors = sorted(jsonschema.Draft202012Validator(CRD_SCHEMAS[obj["kind"]])
                        .iter_errors(obj), key=str)
        return f"{where}: {errors[0].message} at {list(errors[0].absolute_path)}" \
            if errors else None
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{where}: {exc.message} at {list(exc.path)}"
    except kubernetes_validate.SchemaNotFoundError:
        return (f"{where}: {obj['apiVersion']} {obj['kind']} is not in the Kubernetes "
                f"{version} schema (add a schema to CRD_SCHEMAS if it is a CRD)")
    return None


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(buildable()))
def test_objects_validate(name: str, version: str, renders: dict[str, list[Obj]]) -> None:
    errors = [e for obj in renders[name] if (e := validate(obj, version))]
    assert not errors, f"manifests/{name} against Kubernetes {version}:\n" + "\n".join(errors)


def test_crd_schemas_reject_a_typo() -> None:
    """The allow-list schemas are strict enough to catch a misspelt field."""
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
               "metadata": {"name": "m"},
               "spec": {"selector": {}, "podMetricsEndpoints": [{"prot": "metrics"}]}}
    assert validate(monitor, VERSIONS[0]) is not None
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "r"},
            "spec": {"groups": [{"name": "g",
                                 "rules": [{"alert": "A", "expr": "up", "for": "5 m"}]}]}}
    assert validate(rule, VERSIONS[0]) is not None


def test_core_schema_rejects_a_typo() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"ports": [{"port": 80, "targetPrt": 8080}]}}
    for version in VERSIONS:
        assert validate(service, version) is not None
