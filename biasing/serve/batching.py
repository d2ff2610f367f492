"""Dynamic batching of the acoustic model across concurrent requests.

Requests hand their waveform to :meth:`Batcher.forward` and await its model output. One
task collects waiting waveforms into a batch (at most ``max_batch``; the first waits at
most ``max_wait_s`` for company) and runs the model on it in one thread of its own, so the
event loop keeps accepting requests while the model runs, and requests that arrive during a
forward pass form the next batch. Recordings over ``long_s`` seconds run on their own in
overlapping chunks (``biasing.models.forward_long``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class _Item:
    wave: np.ndarray
    layers: tuple[int, ...]
    done: asyncio.Future[Any] = field(repr=False)


class Batcher:
    """Batch waveforms for ``model.forward``.

    Args:
        model: an acoustic model (``forward(waves, layers)``, ``sample_rate``).
        max_batch: most waveforms in one forward pass.
        max_wait_s: most time the first waveform of a batch waits for more.
        long_s: waveforms longer than this (seconds) run alone, chunked.
    """

    def __init__(self, model: Any, max_batch: int = 8, max_wait_s: float = 0.01,
                 long_s: float = 30.0) -> None:
        self.model = model
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.long_samples = int(long_s * model.sample_rate)
        self.long_s = long_s
        self.batches = 0  # forward passes run
        self.items = 0  # waveforms through them
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="ctc-biasing-model")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        self._thread.shutdown(wait=True)

    async def forward(self, wave: np.ndarray, layers: Sequence[int] = ()) -> Any:
        """The model's output for one waveform (at the model's rate)."""
        if self._task is None:
            raise RuntimeError("the batcher is not running")
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(wave, tuple(layers), done))
        return await done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                try:  # whatever is queued already joins without waiting
                    item = self._queue.get_nowait() if self._queue.qsize() else \
                        await asyncio.wait_for(self._queue.get(),
                                               max(0.0, deadline - loop.time()))
                except (asyncio.TimeoutError, TimeoutError):
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._run_batch(loop, batch)
        while not self._queue.empty():  # nothing should be left; fail what is
            item = self._queue.get_nowait()
            if item is not None and not item.done.done():
                item.done.set_exception(RuntimeError("the server is shutting down"))

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        short = [i for i in batch if len(i.wave) <= self.long_samples]
        long = [i for i in batch if len(i.wave) > self.long_samples]
        layers = tuple(sorted({k for i in batch for k in i.layers}))
        groups = ([short] if short else []) + [[i] for i in long]
        for group in groups:
            try:
                outputs = await loop.run_in_executor(self._thread, self._forward, group, layers)
            except Exception as err:
                logger.exception("model forward pass failed")
                for item in group:
                    if not item.done.done():
                        item.done.set_exception(err)
                continue
            self.batches += 1
            self.items += len(group)
            for item, output in zip(group, outputs):
                if not item.done.done():  # the client may have gone
                    item.done.set_result(output)

    def _forward(self, group: list[_Item], layers: tuple[int, ...]) -> list[Any]:
        from ..models import forward_long, trim_memory

        if len(group) == 1 and len(group[0].wave) > self.long_samples:
            outputs = [forward_long(self.model, group[0].wave, layers, chunk_s=self.long_s)]
        else:
            outputs = list(self.model.forward([i.wave for i in group], layers))
        trim_memory()  # batches of every shape fragment the heap
        return outputs
