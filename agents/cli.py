"""`srs-agent`: one console script, one subcommand per agent.

Each command module is imported only when its command runs, so the sidecar never
loads the Kubernetes client and `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agents import __version__
from agents.errors import ConfigError
from agents.runtime.logs import setup_logging
from agents.settings import COMMANDS, add_arguments, build

# command -> "module:function"; the function takes the command's settings, returns an exit code.
# Only commands that have landed are listed here.
ENTRYPOINTS: dict[str, str] = {
    "check-config": "agents.check_config:command",
    "cleanup": "agents.cleanup.command:command",
    "controller": "agents.controller.command:command",
    "copy-html": "agents.htmlcopy:command",
    "drain": "agents.drain:command",
    "exporter": "agents.exporter:command",
    "reload": "agents.reload:command",
    "sidecar": "agents.sidecar:command",
}


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that command's (start-up time: copy-html's no-op rerun
    and drain count every millisecond)."""
    parser = argparse.ArgumentParser(
        prog="srs-agent",
        description="Small daemons that run beside SRS in Kubernetes. "
        "Every flag has an env twin SRS_AGENT_<FLAG_IN_UPPER_SNAKE>; a flag wins over env.",
    )
    parser.add_argument("--version", action="version", version=f"srs-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in [only] if only in ENTRYPOINTS else ENTRYPOINTS:
        cls, summary = COMMANDS[name]
        cmd = sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:])
        add_arguments(cmd, cls)
    return parser


def load(name: str) -> Callable[[Any], int]:
    module_name, _, func = ENTRYPOINTS[name].partition(":")
    fn: Callable[[Any], int] = getattr(importlib.import_module(module_name), func)
    return fn


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = make_parser(argv[0] if argv and argv[0] in ENTRYPOINTS else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    command: str = args.command
    cls, _ = COMMANDS[command]
    try:
        settings = build(cls, vars(args), environ)
    except ConfigError as exc:
        print(f"srs-agent {command}: {exc}", file=sys.stderr)
        if command == "drain":  # SRS's preStop waits for the done-file: release it anyway
            from agents.drain import release_after_bad_settings  # noqa: PLC0415

            problem = release_after_bad_settings(vars(args), environ)
            if problem:
                print(f"srs-agent {command}: {problem}", file=sys.stderr)
        return ConfigError.exit_code
    setup_logging(settings.log_level, settings.log_format, command)
    try:
        return load(command)(settings)
    except ConfigError as exc:
        print(f"srs-agent {command}: {exc}", file=sys.stderr)
        return ConfigError.exit_code


def entrypoint() -> None:
    """Console-script entry point."""
    raise SystemExit(main())
