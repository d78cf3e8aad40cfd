"""Pure parts of API mode: a ConfigMap's files, and the Event about the pod."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.kube.configmap_source import decode_data
from agents.kube.events import MESSAGE_LIMIT, event_body, has_api_access


def test_decode_data_takes_text_and_binary_keys() -> None:
    obj = {
        "data": {"srs.conf": "listen 1935;\n"},
        "binaryData": {"logo.png": base64.b64encode(b"\x89PNG\x00").decode()},
    }
    assert decode_data(obj) == {"srs.conf": b"listen 1935;\n", "logo.png": b"\x89PNG\x00"}
    assert decode_data({"data": None}) == {}


def test_event_body_names_the_pod_and_caps_the_message() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    body = event_body("live", "srs-0", reason="ConfigInvalid", message="x" * 5000,
                      event_type="Warning", now=now)
    assert body["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "name": "srs-0",
                                      "namespace": "live"}
    assert body["metadata"] == {"generateName": "srs-0.", "namespace": "live"}
    assert body["reason"] == "ConfigInvalid" and body["type"] == "Warning"
    assert len(body["message"]) == MESSAGE_LIMIT and body["message"].endswith("...")
    assert body["firstTimestamp"] == "2026-01-02T03:04:05Z"
    assert body["eventTime"] == "2026-01-02T03:04:05.600000Z"
    assert body["source"] == {"component": "srs-agent"}


def test_api_access_needs_a_token_in_a_pod(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    token = tmp_path / "token"
    assert not has_api_access(str(token))  # volume mode: no token mounted
    token.write_text("t")
    assert has_api_access(str(token))
