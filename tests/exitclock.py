"""The moment a process exits, on the event loop's clock (a pidfd turns readable)."""

from __future__ import annotations

import asyncio
import os


def exit_clock(pid: int) -> asyncio.Future[float]:
    """Resolves to loop.time() at the moment `pid` exits (a pidfd turns readable)."""
    loop = asyncio.get_running_loop()
    fd = os.pidfd_open(pid)
    future: asyncio.Future[float] = loop.create_future()

    def on_exit() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        if not future.done():
            future.set_result(loop.time())

    loop.add_reader(fd, on_exit)
    return future
