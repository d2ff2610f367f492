"""Run pyctcdecode 0.5.0's own public-API tests against our decoder (the drop-in check).

    git clone https://github.com/kensho-technologies/pyctcdecode PYCTC
    git -C PYCTC checkout v0.5.0
    pip install pygtrie hypothesis huggingface_hub kenlm
    python benchmarks/pyctcdecode_api_tests.py PYCTC

Collects ``TestDecoder`` and ``TestSerialization`` from ``PYCTC/pyctcdecode/tests/
test_decoder.py`` with ``build_ctcdecoder`` redirected to ``build_biased_decoder`` and
``BeamSearchDecoderCTC`` to ``BiasedBeamSearchDecoder`` (the tests build pyctcdecode's own
``Alphabet`` and ``LanguageModel`` objects and hand them to our class), runs them with
pytest and prints its summary. Nothing of pyctcdecode's is copied into this repository.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


class Redirect:
    """A pytest plugin: point the test module's names at our decoder before tests run."""

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        from biasing.decoders import BiasedBeamSearchDecoder, build_biased_decoder

        modules = {getattr(item, "module", None) for item in items} - {None}
        for module in modules:
            if hasattr(module, "build_ctcdecoder"):
                module.build_ctcdecoder = build_biased_decoder
                module.BeamSearchDecoderCTC = BiasedBeamSearchDecoder
                print(f"\n{module.__name__}: build_ctcdecoder -> build_biased_decoder, "
                      "BeamSearchDecoderCTC -> BiasedBeamSearchDecoder")


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    checkout = Path(sys.argv[1]).resolve()
    tests = checkout / "pyctcdecode" / "tests" / "test_decoder.py"
    if not tests.is_file():
        sys.exit(f"{tests} not found: give the root of a pyctcdecode v0.5.0 checkout")
    sys.path.insert(0, str(checkout))  # its pyctcdecode (with its tests), not an installed one
    return int(pytest.main([f"{tests}::TestDecoder", f"{tests}::TestSerialization", "-q",
                            "-rfE", "-p", "no:cacheprovider", "-c", os.devnull,
                            "--rootdir", str(checkout)], plugins=[Redirect()]))


if __name__ == "__main__":
    sys.exit(main())
