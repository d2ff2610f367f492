"""QuartzNet (Jasper family) CTC models: our own torch forward pass over a model folder.

- :mod:`.network`: the convolutional network (``QuartzNet``), auxiliary CTC heads
  (``CTCHead``, self-conditioned or plain) and the structure a config describes.
- :mod:`.folder`: the folder format (``config.json`` + ``weights.npz``, int8 or float32
  weights, optional ``tokenizer.model``): read, write, and build a network from a config.
- :mod:`.model`: ``QuartzNetModel``, front-end + network + labels as an ``AcousticModel``,
  and ``load_quartznet``.

Importing this package needs PyTorch (``pip install 'ctc-biasing[torch]'``).
"""

from __future__ import annotations

from biasing.models.quartznet.folder import (
    QuartzNetFolder,
    build_network,
    conv_specs,
    frontend_config,
    head_specs,
    network_arrays,
    quantize_int8,
    read_folder,
    read_weights,
    write_folder,
)
from biasing.models.quartznet.model import QuartzNetModel, load_quartznet
from biasing.models.quartznet.network import (
    Block,
    ConvSpec,
    CTCHead,
    DwPw,
    HeadSpec,
    NetworkOutput,
    QuartzNet,
    frame_mask,
)

__all__ = [
    "Block",
    "CTCHead",
    "ConvSpec",
    "DwPw",
    "HeadSpec",
    "NetworkOutput",
    "QuartzNet",
    "QuartzNetFolder",
    "QuartzNetModel",
    "build_network",
    "conv_specs",
    "frame_mask",
    "frontend_config",
    "head_specs",
    "load_quartznet",
    "network_arrays",
    "quantize_int8",
    "read_folder",
    "read_weights",
    "write_folder",
]
