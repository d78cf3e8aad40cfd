"""Reading the `srs-agent` command lines of the manifests with the agents' own settings code,
so a flag, value or env variable the agents would reject fails here first."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from agents import settings
from agents.errors import ConfigError
from tests.manifests.objects import Pod

FIELD_REF = re.compile(r"metadata\.annotations\['([^']+)'\]")


def container_env(pod: Pod, container: Mapping[str, Any]) -> dict[str, str]:
    """The container's env as the kubelet would set it (downward API values filled in)."""
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        path = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        annotation = FIELD_REF.fullmatch(path)
        if path == "metadata.name":
            env[item["name"]] = f"{pod.workload['metadata']['name']}-0"
        elif path == "metadata.namespace":
            env[item["name"]] = "default"
        elif annotation:
            env[item["name"]] = str(pod.annotations().get(annotation[1], ""))
    return env


def parse(args: Sequence[str], env: Mapping[str, str]) -> tuple[str, Any]:
    """(command, settings) of `srs-agent ARGS` with ENV; AssertionError says what is wrong."""
    if not args or args[0] not in settings.COMMANDS:
        raise AssertionError(f"srs-agent {' '.join(args)}: unknown command")
    command = args[0]
    cls, _ = settings.COMMANDS[command]
    # No abbreviations: a manifest names every flag in full, so a flag added later cannot make
    # it ambiguous.
    parser = argparse.ArgumentParser(prog=f"srs-agent {command}", add_help=False,
                                     allow_abbrev=False)
    settings.add_arguments(parser, cls)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            namespace, unknown = parser.parse_known_args(list(args[1:]))
    except SystemExit:
        raise AssertionError(f"srs-agent {' '.join(args)}: {stderr.getvalue().strip()}") from None
    if unknown:
        raise AssertionError(f"srs-agent {' '.join(args)}: unknown arguments {unknown}")
    try:
        return command, settings.build(cls, vars(namespace), env)
    except ConfigError as exc:
        raise AssertionError(f"srs-agent {' '.join(args)}: {exc}") from None


def env_names(command: str) -> set[str]:
    """The SRS_AGENT_* variables `srs-agent COMMAND` reads (the env twins of its settings)."""
    cls, _ = settings.COMMANDS[command]
    return {settings.env_name(f) for f in dataclasses.fields(cls)}
