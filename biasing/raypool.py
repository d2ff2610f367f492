"""Rows through a pool of Ray actors (the ``ray`` extra): the one place that starts or
joins Ray and sizes the pool, for ``transcribe-corpus`` and ``eval --ray``.

Without an address a local Ray instance is started (and stopped afterwards, on SIGTERM and
SIGHUP too), so the same command runs on a laptop and, with ``--ray-address auto`` on a
cluster node, on the cluster. A normal run is quiet: Ray Data's INFO lines and progress
bars stay in the session's ``logs/ray-data`` files; its warnings and errors still show.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

ROWS_PER_CALL = 8  # rows an actor handles per call (the model batches them)

# Notices Ray prints on every run although nothing is wrong: token authentication being on
# (as it should be) for a local instance, logged by this logger ...
_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"
# ... and Ray Data saying that its progress bars are off (this module turned them off)
_PROGRESS_NOTICE = "Progress bars disabled"
_EXIT_SIGNALS = ("SIGTERM", "SIGHUP")  # turned into SystemExit while a local instance runs


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run goes."""

    address: str | None = None  # None: start a local instance; "auto" or HOST:PORT: join
    num_actors: int | None = None  # None: the cluster's CPUs // threads_per_actor
    threads_per_actor: int = 1  # torch threads (and CPUs reserved) per actor
    gpus_per_actor: float = 0.0  # > 0: actors on GPUs (the caller puts the model on cuda)


def ray_map(items: Sequence[dict[str, Any]], actor: type, arguments: dict[str, Any],
            options: RayOptions, log: Callable[[str], None] = lambda line: None,
            ) -> Iterator[dict[str, Any]]:
    """Rows of ``actor(**arguments)(batch)`` over ``items`` (dicts of plain values), as
    they arrive (not in order). ``actor`` is a callable class taking a batch (a dict of
    columns) and returning one.

    An actor that dies (killed, out of memory) is not restarted: the run stops with Ray's
    error instead of retrying the same rows without end, and the caller resumes it.
    """
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise ImportError("this needs the ray extra: pip install 'ctc-biasing[ray]'") from err
    if not items:
        return
    started_here = not ray.is_initialized()
    handlers = _signal_handlers()
    try:
        with _quiet_ray():
            if started_here:
                # ray.init sets a SIGTERM handler of its own for good; the finally puts
                # back the one before
                ray.init(address=options.address, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
                _exit_on_signals(handlers)
            cpus = int(ray.cluster_resources().get("CPU", 1))
            actors = options.num_actors or max(1, cpus // max(1, options.threads_per_actor))
            actors = min(actors, max(1, (len(items) + ROWS_PER_CALL - 1) // ROWS_PER_CALL))
            log(f"Ray: {cpus} CPUs, {actors} actor(s) x {options.threads_per_actor} "
                f"thread(s)" + (f", {options.gpus_per_actor:g} GPU each"
                                if options.gpus_per_actor else ""))
            dataset = ray.data.from_items(list(items), override_num_blocks=max(
                1, min(len(items) // ROWS_PER_CALL, 4 * actors)))
            results = _map_batches(
                dataset, actor, batch_size=ROWS_PER_CALL, batch_format="default",
                fn_constructor_kwargs=arguments,
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=options.threads_per_actor, num_gpus=options.gpus_per_actor or None)
            try:
                yield from results.iter_rows()
            except ray.exceptions.ActorDiedError as err:  # not restarted: see _map_batches
                lines = [line.strip() for line in str(err).splitlines() if line.strip()]
                why = [line for line in lines[1:] if line.startswith("The actor is dead")]
                raise RuntimeError(" ".join(["a Ray actor died:", *lines[:1], *why[:1]])
                                   ) from err
    finally:
        if started_here:
            ray.shutdown()
        _restore(handlers)


def _map_batches(dataset: Any, actor: type, **arguments: Any) -> Any:
    """``dataset.map_batches(actor, ...)`` with actor restarts off where this Ray version
    takes the option.

    Ray Data restarts dead actors without end by default, and since it passes them their
    arguments through the object store, Ray core logs an error line at every actor's start
    (ray-project/ray#57733) saying such restarts may fail anyway. Without restarts that
    line goes, and an actor that dies stops the run with Ray's error (a rerun resumes)
    instead of retrying its rows without end.
    """
    parameters = inspect.signature(dataset.map_batches).parameters
    if "max_restarts" not in parameters and not any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dataset.map_batches(actor, **arguments)
    with warnings.catch_warnings():  # Ray 2.5x calls it a deprecated ray_remote_args
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
        return dataset.map_batches(actor, max_restarts=0, **arguments)


@contextlib.contextmanager
def _quiet_ray() -> Iterator[None]:
    """Ray Data's console log at WARNING, its progress bars off and Ray's two notices
    dropped, for the duration of the block (then all as before). Ray Data's log files
    keep everything."""
    from ray.data import DataContext

    context = DataContext.get_current()
    progress_bars = context.enable_progress_bars
    context.enable_progress_bars = False
    console = [h for h in logging.getLogger("ray.data").handlers
               if isinstance(h, logging.StreamHandler)
               and not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in console]
    progress_notice = _DropStartingWith(_PROGRESS_NOTICE)
    token_notice = _DropStartingWith(_TOKEN_NOTICE)
    for handler in console:
        handler.setLevel(max(handler.level, logging.WARNING))
        handler.addFilter(progress_notice)
    logging.getLogger(_TOKEN_LOGGER).addFilter(token_notice)
    try:
        yield
    finally:
        context.enable_progress_bars = progress_bars
        for handler, level in zip(console, levels):
            handler.setLevel(level)
            handler.removeFilter(progress_notice)
        logging.getLogger(_TOKEN_LOGGER).removeFilter(token_notice)


class _DropStartingWith(logging.Filter):
    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


def _signal_handlers() -> dict[signal.Signals, Any]:
    """The handlers of the exit signals now ({} outside the main thread, where Python
    cannot set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    handlers = {}
    for name in _EXIT_SIGNALS:
        number = getattr(signal, name, None)  # SIGHUP is not on Windows
        # None: a handler not set from Python, which could not be put back
        if number is not None and signal.getsignal(number) is not None:
            handlers[number] = signal.getsignal(number)
    return handlers


def _exit_on_signals(handlers: dict[signal.Signals, Any]) -> None:
    """Where a signal would have ended the process on the spot, raise SystemExit instead,
    so that finally blocks run: the results are closed and the local Ray instance is shut
    down rather than left to linger. A second signal acts as it did before."""

    def leave(signum: int, frame: FrameType | None) -> None:
        _restore(handlers)
        raise SystemExit(128 + signum)

    for number, handler in handlers.items():
        signal.signal(number, leave if handler == signal.SIG_DFL else handler)


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    for number, handler in handlers.items():
        signal.signal(number, handler)
