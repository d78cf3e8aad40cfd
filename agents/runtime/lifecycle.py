"""The stop-event lifecycle: SIGTERM/SIGINT set one event; agents only ever await it.

Agents never install signal handlers; this module does, once, around the whole run.
`supervise` is the single place where an unexpected exception is caught and logged.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from agents.errors import ConfigError

log = logging.getLogger("srs_agent.lifecycle")

AgentMain = Callable[[asyncio.Event], Awaitable[int]]


def run(main: AgentMain) -> int:
    """Run `main(stop)` in a fresh event loop; SIGTERM and SIGINT set `stop`."""
    import prometheus_client  # noqa: PLC0415 - only processes that run a loop need it

    # No `*_created` series: they double the exposition and no dashboard uses them.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

    async def _runner() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def _on_signal(signum: int) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, _on_signal, sig)
        try:
            return await supervise(main, stop)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    return asyncio.run(_runner())


async def supervise(main: AgentMain, stop: asyncio.Event) -> int:
    """The top-level supervisor: the only `except Exception` in the project besides the
    ops server's, which answers 500 to a request whose handler failed and serves on."""
    try:
        return await main(stop)
    except ConfigError:
        raise
    except Exception:
        log.exception("agent crashed")
        return 1


async def wait_first(stop: asyncio.Event, *aws: Awaitable[object]) -> None:
    """Run `aws` until `stop` is set or any of them ends; cancel the rest.

    An exception of a task is re-raised after the others are cancelled.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in [*tasks, stopper]:
            t.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
    for t in done:
        if t is not stopper and not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
