"""The compiled search core (biasing/decoders/_native.cpp); everything else is in
pyproject.toml. The extension is optional: without a C++ compiler the install still
succeeds and the pure-Python core runs (with one warning)."""

from pybind11.setup_helpers import Pybind11Extension
from setuptools import setup

setup(ext_modules=[Pybind11Extension(
    "biasing.decoders._native", ["biasing/decoders/_native.cpp"], cxx_std=17,
    # the same floating-point operations as the Python reference: no contraction into FMAs
    extra_compile_args=["-O2", "-ffp-contract=off"], optional=True)])
