"""pyproject.toml lists packages by hand (the default model is mapped in from data/): keep it
in step with the source tree."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_and_the_default_model_is_mapped() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(init.parent.relative_to(ROOT).parts)
               for init in (ROOT / "biasing").rglob("__init__.py")}
    listed = set(config["packages"])
    assert on_disk <= listed, f"add to pyproject.toml packages: {sorted(on_disk - listed)}"
    mapped = ROOT / config["package-dir"]["biasing.default_model"]
    assert mapped == ROOT / "data" / "models" / "default"
    patterns = config["package-data"]["biasing.default_model"]
    for name in ("config.json", "weights.npz", "README.md"):
        assert (mapped / name).is_file(), f"{name} is missing from {mapped}"
    for path in mapped.iterdir():  # the tokenizer too: a wheel must carry every file
        assert any(path.match(pattern) for pattern in patterns), f"{path.name} not packaged"
