"""`python -m agents` is `srs-agent`."""

from agents.cli import entrypoint

entrypoint()
