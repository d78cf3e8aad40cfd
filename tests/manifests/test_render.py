"""Every kustomization renders; every component is used; nothing names a namespace."""

from __future__ import annotations

import pytest
import yaml

from tests.manifests.kustomize import (
    MANIFESTS,
    SCENARIOS,
    Obj,
    buildable,
    components,
    kustomization_dirs,
)

pytestmark = pytest.mark.integration

# The shapes of the SRS Kubernetes guide that the README's "Deploy" section documents.
GUIDE_SHAPES = {
    "quick-start", "srs-with-nginx", "edge-cluster", "origin-cluster",
    "origin-cluster-deployments", "rolling-update", "canary", "demo-publisher",
    "cleanup-cronjob", "cleanup-deployment", "one-load-balancer", "compute-resources",
}


@pytest.mark.parametrize("name", sorted(buildable()))
def test_kustomization_renders_objects(name: str, renders: dict[str, list[Obj]]) -> None:
    objs = renders[name]
    assert objs, f"manifests/{name} renders no objects"
    for obj in objs:
        assert obj.get("apiVersion") and obj.get("kind") and obj.get("metadata", {}).get("name"), (
            f"manifests/{name}: object without apiVersion, kind or name: {obj}")


def test_every_guide_shape_has_a_scenario() -> None:
    present = {p.name for p in SCENARIOS.iterdir() if (p / "kustomization.yaml").exists()}
    assert present >= GUIDE_SHAPES, f"missing scenarios: {sorted(GUIDE_SHAPES - present)}"


def referenced_dirs(directory: str, seen: set[str]) -> set[str]:
    """The kustomization dirs `directory` pulls in (resources and components), transitively."""
    path = kustomization_dirs()[directory]
    doc = yaml.safe_load((path / "kustomization.yaml").read_text()) or {}
    out: set[str] = set()
    for entry in list(doc.get("resources", [])) + list(doc.get("components", [])):
        target = (path / entry).resolve()
        if (target / "kustomization.yaml").exists():
            rel = str(target.relative_to(MANIFESTS))
            if rel not in seen:
                seen.add(rel)
                out |= {rel} | referenced_dirs(rel, seen)
    return out


def test_every_component_is_used_by_a_scenario() -> None:
    used: set[str] = set()
    for name in buildable():
        used |= referenced_dirs(name, set())
    unused = sorted(set(components()) - used)
    assert not unused, f"components no kustomization uses (so no test renders them): {unused}"


def test_manifests_are_namespace_agnostic(renders: dict[str, list[Obj]]) -> None:
    """`kubectl apply -k DIR -n NS` must put everything in NS: no object or kustomization
    pins a namespace (RoleBinding subjects default to the binding's namespace)."""
    pinned = [f"{name}: {obj['kind']}/{obj['metadata']['name']}"
              for name, objs in renders.items() for obj in objs
              if obj["metadata"].get("namespace")]
    pinned += [f"{name}: subject {s.get('name')} of RoleBinding/{obj['metadata']['name']}"
               for name, objs in renders.items() for obj in objs
               if obj["kind"] == "RoleBinding" for s in obj.get("subjects", [])
               if s.get("namespace")]
    for name, path in kustomization_dirs().items():
        doc = yaml.safe_load((path / "kustomization.yaml").read_text()) or {}
        if "namespace" in doc:
            pinned.append(f"{name}/kustomization.yaml sets namespace")
    assert not pinned, "\n".join(pinned)
