"""One error hierarchy for every agent.

ConfigError means the user gave us something we cannot run with (exit 2);
RetryableError is a passing fault worth another try; PermanentError is final.
"""


class AgentError(Exception):
    """Base of every error an agent raises on purpose."""


class ConfigError(AgentError):
    """A setting, file or object is invalid; the process cannot go on (exit 2)."""

    exit_code = 2


class RetryableError(AgentError):
    """A passing fault (SRS restarting, API timeout): try again with backoff."""


class PermanentError(AgentError):
    """A fault another try will not fix (SRS rejected the request)."""
