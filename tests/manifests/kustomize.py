"""Rendering manifests/ with `kubectl kustomize`, as `kubectl apply -k` would.

kubectl is required: a machine without it fails these tests with a message saying so; they
are never skipped, since an unrendered manifest is an untested one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
SCENARIOS = MANIFESTS / "scenarios"

# kubectl 1.27 ships kustomize v5.0: components with label selectors and kind regexes.
MIN_KUSTOMIZE = (5, 0)

Obj = dict[str, Any]


def kustomization_dirs() -> dict[str, Path]:
    """Every directory with a kustomization.yaml, by path relative to manifests/."""
    return {str(p.parent.relative_to(MANIFESTS)): p.parent
            for p in sorted(MANIFESTS.rglob("kustomization.yaml"))}


def kind_of(directory: Path) -> str:
    doc = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
    return str(doc.get("kind", "Kustomization"))


def buildable() -> dict[str, Path]:
    """Kustomizations (not Components, which only build as part of one)."""
    return {k: v for k, v in kustomization_dirs().items() if kind_of(v) != "Component"}


def components() -> dict[str, Path]:
    return {k: v for k, v in kustomization_dirs().items() if kind_of(v) == "Component"}


def kubectl() -> str:
    exe = shutil.which("kubectl")
    if exe is None:
        pytest.fail(
            "kubectl not found on PATH. The manifest tests render every kustomization with "
            "`kubectl kustomize` (what `kubectl apply -k` runs); install kubectl 1.27 or newer "
            "(https://kubernetes.io/docs/tasks/tools/) and run the tests again.",
            pytrace=False,
        )
    proc = subprocess.run([exe, "version", "--client", "-o", "json"], capture_output=True,
                          text=True, check=False, timeout=30)
    info: Mapping[str, Any] = json.loads(proc.stdout) if proc.returncode == 0 else {}
    found = re.match(r"v?(\d+)\.(\d+)", str(info.get("kustomizeVersion", "")))
    if found is None or (int(found[1]), int(found[2])) < MIN_KUSTOMIZE:
        pytest.fail(
            f"{exe} bundles kustomize {info.get('kustomizeVersion', '(unknown)')}; the "
            f"manifests need kustomize v{MIN_KUSTOMIZE[0]}.{MIN_KUSTOMIZE[1]} or newer "
            "(kubectl 1.27+).",
            pytrace=False,
        )
    return exe


def render(exe: str, directory: Path) -> list[Obj]:
    proc = subprocess.run([exe, "kustomize", str(directory)], capture_output=True, text=True,
                          check=False, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory.relative_to(REPO)} failed:\n"
                             f"{proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
