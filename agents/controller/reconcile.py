"""Read-modify-write of one ConfigMap key, guarded by the resourceVersion read.

Every write starts from a fresh GET, never from a cache, so what a person changed meanwhile
is the base of the edit. The write is a JSON merge patch of that one key carrying the
resourceVersion read: if the ConfigMap changed in between, the API server answers 409
Conflict, and the whole read-edit-write starts again. Nothing is written when the edit
changes nothing.

RBAC: get and patch on the ConfigMap (a Role can name it: resourceNames).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.controller.edit import Edit
from agents.kube.client import Kube, KubeConflict, KubeNotFound

MERGE_PATCH = "application/merge-patch+json"
ATTEMPTS = 5  # read-edit-write rounds before a run of conflicts counts as a failure

UPDATED = "updated"
UNCHANGED = "unchanged"
REFUSED = "invalid"
MISSING = "missing"


@dataclass(frozen=True)
class WriteResult:
    outcome: str  # UPDATED, UNCHANGED, REFUSED or MISSING
    edit: Edit
    configmap: dict[str, Any] | None  # as written (UPDATED) or as read
    conflicts: int = 0  # 409s met on the way


def key_text(configmap: dict[str, Any], key: str) -> str | None:
    data = configmap.get("data") or {}
    value = data.get(key)
    return value if isinstance(value, str) else None


class ConfigMapWriter:
    def __init__(self, kube: Kube, namespace: str, attempts: int = ATTEMPTS) -> None:
        import kubernetes  # noqa: PLC0415 - the client loads with the controller only

        self.kube = kube
        self.namespace = namespace
        self.attempts = attempts
        self._core = kubernetes.client.CoreV1Api(kube.api_client)

    async def read(self, name: str) -> dict[str, Any] | None:
        try:
            doc = await self.kube.call_json(
                self._core.read_namespaced_config_map, name, self.namespace)
        except KubeNotFound:
            return None
        return doc if isinstance(doc, dict) else None

    async def update(self, name: str, key: str,
                     change: Callable[[str | None], Edit]) -> WriteResult:
        """GET, `change(text of key)`, PATCH with the resourceVersion; again on 409.

        Raises KubeConflict after `attempts` conflicts in a row, KubeError on other
        API faults.
        """
        conflicts = 0
        while True:
            current = await self.read(name)
            if current is None:
                return WriteResult(MISSING, Edit(), None, conflicts)
            edit = change(key_text(current, key))
            if edit.problem:
                return WriteResult(REFUSED, edit, current, conflicts)
            if edit.text is None:
                return WriteResult(UNCHANGED, edit, current, conflicts)
            body: dict[str, Any] = {"data": {key: edit.text}}
            version = (current.get("metadata") or {}).get("resourceVersion")
            if version:
                body["metadata"] = {"resourceVersion": version}
            try:
                written = await self.kube.call_json(
                    self._core.patch_namespaced_config_map, name, self.namespace, body,
                    _content_type=MERGE_PATCH)
            except KubeConflict:
                conflicts += 1
                if conflicts >= self.attempts:
                    raise
                continue
            except KubeNotFound:
                return WriteResult(MISSING, edit, None, conflicts)
            return WriteResult(UPDATED, edit, written if isinstance(written, dict) else current,
                               conflicts)
