"""Training an adapter on a frozen tiny model: runs, resumes, refuses bad input early."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="adapter training needs torch")
sf = pytest.importorskip("soundfile")

from biasing.adapters import load_adapter
from biasing.adapters.train import TrainOptions, default_layers, read_training_data, train_adapter
from biasing.models import load_model

TEXTS = ["abc cab", "a bab", "cabbac abc", "bac", "caab bc", "abba cab", "cc ab", "baca"]
OPTIONS = TrainOptions(minutes=5.0, max_steps=4, batch_frames=400, validation=2,
                       validate_every=2, checkpoint_every=2, max_list=6, first_list=2,
                       config={"embed_dim": 8, "encoder_dim": 8, "attention_dim": 16,
                               "mlp_dim": 12})


@pytest.fixture(scope="module")
def tiny(tiny_quartznet_dir: Path):
    return load_model(f"quartznet:{tiny_quartznet_dir}")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("adapter_data")
    rng = np.random.default_rng(0)
    rows = ["id\traw_text\tnormalized_text"]
    for n, text in enumerate(TEXTS):
        sf.write(folder / f"u{n}.wav", 0.1 * rng.standard_normal(8000 + 800 * n), 16000)
        rows.append(f"u{n}\t{text}\t{text}")
    (folder / "asr_train.tsv").write_text("\n".join(rows) + "\n")
    (folder / "entities_per_utt.tsv").write_text(
        "".join(f"u{n}\t{text.split()[0]}\n" for n, text in enumerate(TEXTS)))
    return folder


def test_trains_writes_and_resumes(tiny, data: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    path = train_adapter(tiny, [data], tmp_path, OPTIONS, log=lines.append)
    assert path == tmp_path / "adapter.npz" and path.is_file()
    assert (tmp_path / "checkpoint.pt").is_file()
    log = (tmp_path / "log.tsv").read_text().splitlines()
    assert log[0].startswith("step\t") and [r.split("\t")[0] for r in log[1:]] == ["2", "4"]
    assert not list(tmp_path.glob("*.tmp*"))  # atomic writes leave nothing behind
    adapter = load_adapter(path, tiny)
    assert adapter.layers == default_layers(tiny) == (1,)  # half and 3/4 of 2 blocks
    out = tiny.forward([np.zeros(8000, np.float32)], layers=adapter.layers)[0]
    assert adapter.bias(out, ["abc"]).logprobs.shape == out.logprobs.shape

    lines.clear()  # a second run continues from the checkpoint, with the cached features
    train_adapter(tiny, [data], tmp_path, replace(OPTIONS, max_steps=6), log=lines.append)
    assert any("resuming at step 4" in line for line in lines)
    assert not any(line.startswith("features:") for line in lines)
    assert (tmp_path / "log.tsv").read_text().splitlines()[-1].split("\t")[0] == "6"
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 6


def test_another_configuration_does_not_resume(tiny, data: Path, tmp_path: Path) -> None:
    train_adapter(tiny, [data], tmp_path, replace(OPTIONS, max_steps=2), log=lambda _: None)
    bigger = replace(OPTIONS, config={**OPTIONS.config, "mlp_dim": 20})
    with pytest.raises(ValueError, match="another adapter configuration"):
        train_adapter(tiny, [data], tmp_path, bigger, log=lambda _: None)


def test_rare_words_without_a_list_come_from_counts(tiny, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    sf.write(folder / "x.wav", np.zeros(8000), 16000)
    sf.write(folder / "y.wav", np.zeros(8000), 16000)
    (folder / "asr_train.tsv").write_text(
        "id\traw_text\tnormalized_text\nx\tabba cab\tabba cab\ny\tabba bacca\tabba bacca\n")
    utterances = read_training_data([folder], tiny.labels, log=lambda _: None)
    assert [u.rare for u in utterances] == [("abba",), ("abba", "bacca")]
    few = read_training_data([folder], tiny.labels, rare_count=1, log=lambda _: None)
    assert [u.rare for u in few] == [(), ("bacca",)]


def test_data_without_transcripts_fails_before_training(tiny, tmp_path: Path) -> None:
    folder = tmp_path / "audio_only"
    folder.mkdir()
    sf.write(folder / "a.wav", np.zeros(8000), 16000)
    with pytest.raises(ValueError, match="no transcribed utterances"):
        train_adapter(tiny, [folder], tmp_path / "out", OPTIONS, log=lambda _: None)
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_unspellable_transcripts_fail_before_training(tiny, tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    sf.write(folder / "x.wav", np.zeros(8000), 16000)
    (folder / "asr_train.tsv").write_text("id\traw_text\tnormalized_text\nx\txyz\txyz\n")
    with pytest.raises(ValueError, match="none of its 1 utterances"):
        train_adapter(tiny, [folder], tmp_path / "out", OPTIONS, log=lambda _: None)


def test_model_without_layers_fails_before_training(data: Path, tmp_path: Path) -> None:
    class Plain:
        labels = ("", "a")
        num_layers = 2
        sample_rate = 16000

    with pytest.raises(ValueError, match="does not expose the layers"):
        train_adapter(Plain(), [data], tmp_path, OPTIONS, log=lambda _: None)


def test_the_seed_decides_the_whole_run(tiny, data: Path, tmp_path: Path) -> None:
    def weights(folder: Path, seed: int) -> dict[str, np.ndarray]:
        options = replace(OPTIONS, max_steps=2, validate_every=2, seed=seed)
        path = train_adapter(tiny, [data], folder, options, log=lambda _: None)
        return {k: v.detach().numpy() for k, v in load_adapter(path, tiny).module.state_dict()
                .items()}

    first, again = weights(tmp_path / "a", 3), weights(tmp_path / "b", 3)
    other = weights(tmp_path / "c", 4)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert any(not np.array_equal(first[k], other[k]) for k in first)
