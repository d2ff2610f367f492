"""Model tests run on one torch thread."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _single_torch_thread() -> Iterator[None]:
    """Run model tests on one torch thread.

    The depthwise convolutions issue thousands of small ops; with two OpenMP threads on a
    machine that is busy with other work every op waits on a descheduled thread, which can
    make a forward pass 30x slower. One thread keeps the suite fast on a shared machine.
    """
    try:
        import torch
    except ImportError:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
