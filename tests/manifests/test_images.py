"""images/<scenario>.svg is what tools/render_images.py draws from the scenario's render now."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from typing import cast
from xml.etree import ElementTree

import pytest

from tests.manifests.kustomize import REPO, SCENARIOS, Obj

pytestmark = pytest.mark.integration

IMAGES = REPO / "images"
REGENERATE = ".venv/bin/python tools/render_images.py"
NAMES = sorted(p.parent.name for p in SCENARIOS.glob("*/kustomization.yaml"))


def draw() -> Callable[[str, list[Obj]], str]:
    spec = importlib.util.spec_from_file_location(
        "render_images", REPO / "tools" / "render_images.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return cast(Callable[[str, list[Obj]], str], module.svg)


@pytest.fixture(scope="module")
def svg() -> Callable[[str, list[Obj]], str]:
    return draw()


@pytest.mark.parametrize("name", NAMES)
def test_picture_matches_the_render(name: str, scenarios: dict[str, list[Obj]],
                                    svg: Callable[[str, list[Obj]], str]) -> None:
    path = IMAGES / f"{name}.svg"
    assert path.exists(), f"images/{name}.svg is missing: run {REGENERATE}"
    current, wanted = path.read_text().splitlines(), svg(name, scenarios[name]).splitlines()
    if current != wanted:
        line = next((i for i, (a, b) in enumerate(zip(current, wanted, strict=False)) if a != b),
                    min(len(current), len(wanted)))
        pytest.fail(f"images/{name}.svg is out of date with manifests/scenarios/{name} "
                    f"(first difference at line {line + 1}): run {REGENERATE}",
                    pytrace=False)


@pytest.mark.parametrize("name", NAMES)
def test_picture_shows_every_workload_and_service(name: str, scenarios: dict[str, list[Obj]],
                                                  svg: Callable[[str, list[Obj]], str]) -> None:
    picture = svg(name, scenarios[name])
    root = ElementTree.fromstring(picture)
    text = " ".join("".join(el.itertext()) for el in root.iter()
                    if el.tag.endswith("text"))
    for obj in scenarios[name]:
        if obj["kind"] in ("Deployment", "StatefulSet", "CronJob", "Service"):
            title = f"{obj['kind']} {obj['metadata']['name']}"
            assert re.search(rf"\b{re.escape(title)}\b", text), f"{name}: {title} not drawn"
