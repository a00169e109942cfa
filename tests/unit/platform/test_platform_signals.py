"""stop_on_signals: SIGTERM sets the stop event instead of killing the process."""

from __future__ import annotations

import asyncio
import os
import signal

from services.platform.observability import stop_on_signals


async def test_sigterm_sets_the_stop_event() -> None:
    stop = stop_on_signals(signals=(signal.SIGTERM,))
    try:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(5):
            await stop.wait()
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
