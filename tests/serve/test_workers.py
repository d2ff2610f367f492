"""Decoding processes: one that dies during a request is replaced and the request told to
retry; one that dies while idle is noticed by the watch and counted out until replaced."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

pytest.importorskip("torch")

from biasing.serve.workers import DecodePool, WorkerDied, _ping

ARGUMENTS = {"model": "default", "pronunciation_cache": False, "list_cache": 1}


async def _until(condition, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def test_a_worker_that_dies_is_replaced_in_a_request_and_while_idle() -> None:
    async def run() -> None:
        pool = DecodePool(1, ARGUMENTS)
        try:
            await pool.ready()
            assert pool.live == 1
            with pytest.raises(WorkerDied, match="died and was restarted: retry"):
                await pool._run(0, os._exit, 3)  # dies during "a request"
            assert pool.live == 0  # counted out until the replacement has loaded
            await _until(lambda: pool.live == 1)
            assert await pool._run(0, _ping)
            watch = asyncio.get_running_loop().create_task(pool.watch(0.1))
            pid = await pool._run(0, os.getpid)
            os.kill(pid, signal.SIGKILL)  # dies while idle
            await _until(lambda: pool.live == 0, 30)
            await _until(lambda: pool.live == 1)
            assert await pool._run(0, os.getpid) != pid
            watch.cancel()
        finally:
            await asyncio.to_thread(pool.shutdown)

    asyncio.run(run())
