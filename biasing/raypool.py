"""Rows through a pool of Ray actors (the ``ray`` extra): the one place that starts or
joins Ray and sizes the pool, for ``transcribe-corpus`` and ``eval --ray``.

Without an address a local Ray instance is started (and stopped afterwards), so the same
command runs on a laptop and, with ``--ray-address auto`` on a cluster node, on the cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

ROWS_PER_CALL = 8  # rows an actor handles per call (the model batches them)


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
    columns) and returning one."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("this needs the ray extra: pip install 'ctc-biasing[ray]'") from err
    if not items:
        return
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = options.num_actors or max(1, cpus // max(1, options.threads_per_actor))
        actors = min(actors, max(1, (len(items) + ROWS_PER_CALL - 1) // ROWS_PER_CALL))
        log(f"Ray: {cpus} CPUs, {actors} actor(s) x {options.threads_per_actor} thread(s)"
            + (f", {options.gpus_per_actor:g} GPU each" if options.gpus_per_actor else ""))
        dataset = ray.data.from_items(list(items), override_num_blocks=max(
            1, min(len(items) // ROWS_PER_CALL, 4 * actors)))
        results = dataset.map_batches(
            actor, batch_size=ROWS_PER_CALL, batch_format="default",
            fn_constructor_kwargs=arguments,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=options.threads_per_actor, num_gpus=options.gpus_per_actor or None)
        yield from results.iter_rows()
    finally:
        if started_here:
            ray.shutdown()
