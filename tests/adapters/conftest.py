"""Adapter tests run on one torch thread, as the model tests do (see
tests/models/conftest.py, whose fixture this reuses)."""

from __future__ import annotations

from tests.models.conftest import _single_torch_thread

__all__ = ["_single_torch_thread"]
