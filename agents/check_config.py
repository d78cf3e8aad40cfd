"""`srs-agent check-config FILE`: validate an srs.conf like `srs -t`, with line:col."""

from __future__ import annotations

import sys

from agents.settings import CheckConfigSettings
from agents.srs import conf


def command(settings: CheckConfigSettings) -> int:
    problems = conf.validate_file(settings.file)
    for problem in problems:
        print(problem, file=sys.stdout)
    if problems:
        print(f"{settings.file}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{settings.file}: ok", file=sys.stderr)
    return 0
