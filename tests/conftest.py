"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.standin.harness import StandIn

StandInFactory = Callable[..., Awaitable[StandIn]]


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[StandInFactory]:
    """Start SRS stand-ins (real processes): `srs = await standin(tick=0.2, ...)`.

    Keyword arguments are those of `StandIn`; every stand-in is killed at teardown.
    """
    started: list[StandIn] = []

    async def start(**kwargs: Any) -> StandIn:
        srs = StandIn(tmp_path / f"srs-{len(started)}", **kwargs)
        started.append(srs)
        await srs.start()
        return srs

    yield start
    for srs in started:
        await srs.stop()
