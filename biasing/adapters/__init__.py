"""Encoder biasing: the contextual adapter (docs/method.md, docs/adapter.md).

A small module, trained while the base CTC model stays frozen, that attends from the
model's intermediate layers to the listed entities (plus a learnt ``<no-bias>``) and shifts
the model's output toward them before any decoding.

- :mod:`.network`: the torch module (``ContextualAdapter``) and its ``AdapterConfig``;
- :mod:`.units`: how the entity encoder spells entities (characters or pieces);
- :mod:`.adapter`: the file format and ``Adapter``, a trained adapter bound to a model;
- :mod:`.train`: training on a frozen model (``ctc-biasing train-adapter``);
- :mod:`.plot`: the attention plot (frames x entities).

Importing this package needs PyTorch.
"""

from __future__ import annotations

from .adapter import (
    ADAPTER_FILE,
    Adapter,
    AdapterOutput,
    default_adapter_path,
    folder_adapter_path,
    load_adapter,
    read_adapter,
    save_adapter,
)
from .network import AdapterConfig, ContextualAdapter

__all__ = ["ADAPTER_FILE", "Adapter", "AdapterConfig", "AdapterOutput", "ContextualAdapter",
           "default_adapter_path", "folder_adapter_path", "load_adapter", "read_adapter", "save_adapter"]
