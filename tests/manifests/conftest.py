from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.manifests.kustomize import Obj, buildable, kubectl, render


@pytest.fixture(scope="session")
def renders() -> dict[str, list[Obj]]:
    """Every kustomization under manifests/, rendered once per session (in parallel), by its
    path relative to manifests/. Any failure fails every test that uses it, naming them all."""
    exe = kubectl()
    dirs = buildable()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {name: pool.submit(render, exe, path) for name, path in dirs.items()}
    results: dict[str, list[Obj]] = {}
    failures: list[str] = []
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except AssertionError as exc:
            failures.append(str(exc))
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    return results


@pytest.fixture(scope="session")
def scenarios(renders: dict[str, list[Obj]]) -> dict[str, list[Obj]]:
    """The renders of manifests/scenarios/<name>, by name."""
    return {name.split("/", 1)[1]: objs for name, objs in renders.items()
            if name.startswith("scenarios/")}
