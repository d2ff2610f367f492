"""Decoding in a pool: each worker holds a :class:`biasing.Transcriber` (decoder, phone
lexicon, adapter) and its own cache of compiled lists, and decodes model outputs with each
request's list and options.

``workers=0`` decodes in this process, one request at a time, in one thread; ``workers=N``
starts N spawned processes (the search is compiled and releases the GIL, but the phonetic
stage and list compilation are Python: processes, not threads, use more than one core). A request goes to the least busy worker, and among those equally busy to
the one that compiled its list last, so repeated lists are compiled once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import multiprocessing
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..decoders.lists import LRU
from ..decoders.pronunciations import UnpronounceableEntityWarning
from ..entities import EntityList, UnrepresentableEntityWarning
from ..transcribe import Overrides, Transcript

_WORKER: Any = None  # the Transcriber of a worker process
logger = logging.getLogger(__name__)


class WorkerDied(RuntimeError):
    """A decoding process died during a request (it has been replaced)."""

_ROUTES = 4096  # lists whose last worker is remembered


def _start_worker(arguments: dict[str, Any]) -> None:
    global _WORKER
    from ..transcribe import Transcriber

    quiet_list_warnings()
    # one torch thread: the acoustic model runs in the server process, not here
    _WORKER = Transcriber(**{**arguments, "threads": 1})
    # what the worker loaded lives as long as it does: keep the cyclic GC's passes, which a
    # request's many small objects set off, from walking it each time
    gc.freeze()


def quiet_list_warnings() -> None:
    """What a caller's list lacks (names it cannot spell or pronounce) is the caller's
    business, not the server log's: silence those warnings in this process."""
    warnings.filterwarnings("ignore", category=UnrepresentableEntityWarning)
    warnings.filterwarnings("ignore", category=UnpronounceableEntityWarning)


def _ping() -> bool:
    return _WORKER is not None


def _check_in_worker(entities: EntityList) -> None:
    _WORKER.decoder.compile(entities)


def _decode_in_worker(output: Any, entities: EntityList, overrides: Overrides,
                      details: dict[str, Any]) -> Transcript:
    return _WORKER.decode_output(output, entities, overrides, **details)


class DecodePool:
    """Decode model outputs in workers.

    Args:
        workers: processes to start; 0 decodes in this process with ``transcriber``.
        arguments: the keyword arguments of each worker's ``Transcriber``.
        transcriber: the in-process transcriber (``workers=0``).
    """

    def __init__(self, workers: int, arguments: dict[str, Any] | None = None,
                 transcriber: Any = None) -> None:
        if workers == 0 and transcriber is None:
            raise ValueError("workers=0 decodes in this process: give a transcriber")
        if workers > 0 and arguments is None:
            raise ValueError("worker processes need the Transcriber's arguments")
        self._transcriber = transcriber
        self._arguments = arguments
        self._executors: list[Executor] = []
        if workers == 0:
            self._executors.append(ThreadPoolExecutor(1, thread_name_prefix="ctc-biasing-decode"))
        else:
            self._executors = [self._process() for _ in range(workers)]
        self._busy = [0] * len(self._executors)
        # False from a worker's death until its replacement has loaded its model
        self._alive = [True] * len(self._executors)
        self._routes: LRU[str, int] = LRU(_ROUTES)  # list key -> the worker that compiled it
        self.in_process = workers == 0

    def _process(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=functools.partial(_start_worker,
                                                                 self._arguments or {}))

    async def _run(self, index: int, call: Any, *args: Any) -> Any:
        """``call(*args)`` in worker ``index``; a worker that died (killed, out of memory) is
        replaced, and the request told to retry."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executors[index], call, *args)
        except BrokenProcessPool:
            if not self.in_process:
                self._replace(index)
            raise WorkerDied(f"decoding worker {index} died and was restarted: retry the "
                             f"request") from None

    def _replace(self, index: int) -> None:
        """A new process for dead worker ``index``, counted out until it has loaded."""
        if not self._alive[index]:
            return  # already being replaced
        self._alive[index] = False
        self._executors[index].shutdown(wait=False)
        self._executors[index] = self._process()
        asyncio.get_running_loop().create_task(self._revive(index))

    async def _revive(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executors[index], _ping)
        except BrokenProcessPool:
            self._alive[index] = True  # let the next probe replace it again
            return
        except Exception as err:  # noqa: BLE001 - a worker that cannot load stays out
            logger.error("decoding worker %d failed to restart: %s", index, err)
            return
        self._alive[index] = True
        logger.info("decoding worker %d restarted", index)

    @property
    def live(self) -> int:
        """Workers up now (a dead one is counted out until its replacement has loaded)."""
        return sum(self._alive)

    async def watch(self, interval_s: float) -> None:
        """Every ``interval_s``, ping each idle worker, so one that died while idle is
        noticed and replaced before a request fails on it (runs until cancelled)."""
        while True:
            await asyncio.sleep(interval_s)
            for index in range(self.size):
                if self._busy[index] or not self._alive[index]:
                    continue
                with contextlib.suppress(WorkerDied):
                    await self._run(index, _ping)

    @property
    def size(self) -> int:
        return len(self._executors)

    async def ready(self) -> None:
        """Wait until every worker has loaded its model (raises what a worker raised)."""
        if self.in_process:
            return
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(e, _ping) for e in self._executors))

    async def check(self, entities: EntityList) -> None:
        """Compile the list where it will be decoded: raises ``ValueError`` naming the
        entities the model cannot spell (before any audio work), and warms the cache."""
        if not entities:
            return
        index = self._choose(entities.key)
        if self.in_process:
            await self._run(index, self._transcriber.decoder.compile, entities)
        else:
            await self._run(index, _check_in_worker, entities)

    async def decode(self, output: Any, entities: EntityList, overrides: Overrides,
                     **details: Any) -> Transcript:
        """``Transcriber.decode_output(output, entities, overrides, **details)`` in a
        worker (``details``: ``source``, ``duration_s``)."""
        index = self._choose(entities.key if entities else "")
        self._busy[index] += 1
        try:
            if self.in_process:
                return await self._run(index, lambda: self._transcriber.decode_output(
                    output, entities, overrides, **details))
            return await self._run(index, _decode_in_worker, output, entities, overrides,
                                   details)
        finally:
            self._busy[index] -= 1

    def _choose(self, key: str) -> int:
        """The least busy live worker, the one that compiled ``key`` last among equals."""
        up = [i for i in range(self.size) if self._alive[i]] or list(range(self.size))
        least = min(self._busy[i] for i in up)
        last = self._routes.get(key)
        index = last if last in up and self._busy[last] == least \
            else next(i for i in up if self._busy[i] == least)
        if key:
            self._routes.put(key, index)
        return index

    def shutdown(self) -> None:
        """Let running decodes finish, then stop the workers."""
        for executor in self._executors:
            executor.shutdown(wait=True)
