"""kmock's Kubernetes emulator as the agents reach it: a kubeconfig naming it, and requests
over real HTTP as a person or a kube controller would send them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import kmock

# A watch event that ends a watch as an API server does when its resourceVersion is too old.
GONE = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "code": 410,
                                    "reason": "Expired", "message": "too old resource version"}}


def kubeconfig(path: Path, server: str, namespace: str, user: str = "test",
               token: str | None = "test-token") -> Path:
    """Write a kubeconfig for `server` at `path` (JSON is YAML); no token: no credentials."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "kmock", "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": token} if token is not None else {}}],
        "contexts": [{"name": "test", "context": {"cluster": "kmock", "user": user,
                                                   "namespace": namespace}}],
    }))
    return path


def first_watch(plural: str | None = None) -> Callable[[kmock.Request], bool]:
    """A kmock criterion matching the first watch request (of `plural`, if named) alone."""
    first: list[int] = []

    def match(request: kmock.Request) -> bool:
        if request.action != kmock.action.WATCH or (plural is not None and (
                request.resource is None or request.resource.plural != plural)):
            return False
        first[:] = first or [request.id]
        return bool(request.id == first[0])

    return match


class KmockApi:
    """The emulator serving `resources`; `env` points an agent at it with `workdir/kubeconfig`
    (as `user` with `token`)."""

    def __init__(self, emulator: kmock.KubernetesEmulator, workdir: Path,
                 resources: Iterable[str], namespace: str, *, user: str = "test",
                 token: str = "test-token") -> None:
        for resource in resources:
            emulator.resources[resource] = kmock.ResourceInfo()
        self.emulator = emulator
        self.base = str(emulator.url).rstrip("/")
        config = kubeconfig(workdir / "kubeconfig", self.base, namespace, user, token)
        self.env = {"KUBECONFIG": str(config), "HOME": str(workdir)}

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send as JSON (PATCH as a merge patch); a status of 300 or more fails the test."""
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with aiohttp.ClientSession() as http, http.request(
            method, self.base + path, json=body, headers=headers
        ) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json()
