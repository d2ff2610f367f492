"""The contextual adapter: exactness contracts, the model protocol, the file, the checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the adapter needs torch")

from biasing.adapters import (
    Adapter,
    AdapterConfig,
    ContextualAdapter,
    load_adapter,
    read_adapter,
    save_adapter,
)
from biasing.adapters.adapter import labels_sha1
from biasing.adapters.units import UnitSpeller
from biasing.models import load_model


def _noise(samples: int, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(samples)).astype(np.float32)


def _module(model, layers=(0, 1), trained: bool = True, seed: int = 0) -> ContextualAdapter:
    torch.manual_seed(seed)
    config = AdapterConfig(units="chars", vocab_size=UnitSpeller("chars").vocab_size,
                           layers=tuple(layers),
                           layer_sizes=tuple(model.layer_size(k) for k in layers),
                           representation_size=model.representation_size,
                           num_labels=len(model.labels), labels_sha1=labels_sha1(model.labels),
                           embed_dim=8, encoder_dim=8, attention_dim=16, mlp_dim=12)
    module = ContextualAdapter(config)
    if trained:  # the output projections start at zero; give them something to do
        torch.nn.init.normal_(module.out.weight, std=0.5)
        torch.nn.init.normal_(module.bag_out.weight, std=0.5)
        with torch.no_grad():
            module.bag_scale.fill_(2.0)
    return module


@pytest.fixture(scope="module")
def tiny(tiny_quartznet_dir: Path):
    return load_model(f"quartznet:{tiny_quartznet_dir}")


def test_representation_and_output_layer_give_the_logprobs(tiny) -> None:
    out = tiny.forward([_noise(16000, 0)], layers=(0, 1), representation=True)[0]
    assert out.representation.shape == (len(out.logprobs), tiny.representation_size)
    with torch.no_grad():
        logits = tiny.output_layer(torch.from_numpy(out.representation))
    np.testing.assert_allclose(torch.log_softmax(logits, -1).numpy(), out.logprobs, atol=1e-5)
    assert [tiny.layer_size(k) for k in (0, 1)] == [16, 24]
    with pytest.raises(ValueError, match="out of range"):
        tiny.layer_size(2)


def test_untrained_adapter_is_the_base_model(tiny) -> None:
    out = tiny.forward([_noise(16000, 1)], layers=(0, 1))[0]
    adapter = Adapter(_module(tiny, trained=False), tiny)
    biased = adapter.bias(out, ["abc", "cab"])
    np.testing.assert_allclose(biased.logprobs, out.logprobs, atol=1e-5)


def test_empty_list_returns_the_base_output_exactly(tiny) -> None:
    out = tiny.forward([_noise(16000, 2)], layers=(0, 1))[0]
    adapter = Adapter(_module(tiny), tiny)
    biased = adapter.bias(out, [])
    assert np.array_equal(biased.logprobs, out.logprobs) and biased.attention is None


def test_shift_equals_the_output_layer_on_the_changed_representation(tiny) -> None:
    """The adapter adds output_layer(shift) - output_layer(0) to the log-probabilities: the
    same as running the output layer on representation + shift."""
    out = tiny.forward([_noise(24000, 3)], layers=(0, 1), representation=True)[0]
    module = _module(tiny)
    adapter = Adapter(module, tiny)
    biased = adapter.bias(out, ["abc", "b a", "cc"])
    assert not np.allclose(biased.logprobs, out.logprobs, atol=1e-3)
    with torch.no_grad():
        hidden = [torch.from_numpy(out.hidden[k])[None] for k in (0, 1)]
        shift, attention = module(hidden, adapter.vectors(("abc", "b a", "cc")))
        full = torch.log_softmax(
            tiny.output_layer(torch.from_numpy(out.representation) + shift[0]), -1).numpy()
    np.testing.assert_allclose(biased.logprobs, full, atol=1e-4)
    assert biased.attention.shape == (len(out.logprobs), 4)
    np.testing.assert_allclose(biased.attention.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(biased.attention, attention[0].numpy(), atol=1e-6)


def test_attending_to_no_bias_adds_nothing(tiny) -> None:
    """<no-bias> has a zero value, and the shift is zero when the attended value is."""
    out = tiny.forward([_noise(16000, 4)], layers=(0, 1))[0]
    module = _module(tiny)
    with torch.no_grad():
        module.no_bias_key.mul_(0).add_(1e4)  # every frame attends to <no-bias> only
        module.key.weight.zero_()
        module.key.bias.zero_()
        module.query_norm[0].bias.fill_(1.0)
        module.query_norm[1].bias.fill_(1.0)
        module.query_norm[0].weight.zero_()
        module.query_norm[1].weight.zero_()
    biased = Adapter(module, tiny).bias(out, ["abc"])
    assert biased.attention[:, 0].min() > 0.999
    np.testing.assert_allclose(biased.logprobs, out.logprobs, atol=1e-5)


def test_entity_vectors_are_cached_by_content(tiny) -> None:
    adapter = Adapter(_module(tiny), tiny)
    first = adapter.vectors(("abc", "cab"))
    assert adapter.vectors(("abc", "cab")) is first
    assert adapter.vectors(("cab", "abc")) is not first
    torch.testing.assert_close(adapter.vectors(("cab", "abc"))[0], first[1])


def test_hidden_layers_are_required(tiny) -> None:
    out = tiny.forward([_noise(16000, 5)])[0]
    with pytest.raises(ValueError, match=r"layers \[0, 1\].*layers=\(0, 1\)"):
        Adapter(_module(tiny), tiny).bias(out, ["abc"])


def test_file_round_trip(tiny, tmp_path: Path) -> None:
    module = _module(tiny)
    out = tiny.forward([_noise(16000, 6)], layers=(0, 1))[0]
    exact = Adapter(module, tiny).bias(out, ["abc", "ba"]).logprobs
    save_adapter(tmp_path / "f32.npz", module, int8=False)
    again = load_adapter(tmp_path / "f32.npz", tiny).bias(out, ["abc", "ba"]).logprobs
    np.testing.assert_allclose(again, exact, atol=1e-6)
    save_adapter(tmp_path / "i8.npz", module)
    assert (tmp_path / "i8.npz").stat().st_size < (tmp_path / "f32.npz").stat().st_size
    quantised = load_adapter(tmp_path / "i8.npz", tiny).bias(out, ["abc", "ba"]).logprobs
    np.testing.assert_allclose(quantised, exact, atol=0.05)
    assert read_adapter(tmp_path / "i8.npz")[0].config == module.config


def test_mismatched_adapter_names_both(tiny, tmp_path: Path, tiny_quartznet_dir: Path) -> None:
    module = _module(tiny)
    config = json.loads(json.dumps(module.config.to_json()))
    config.update(layer_sizes=[16, 99], num_labels=9)
    other = ContextualAdapter(AdapterConfig.from_json(config))
    with pytest.raises(ValueError) as info:
        Adapter(other, tiny, source="other.npz")
    message = str(info.value)
    assert "other.npz" in message and "labels: adapter 9" in message and "model 6" in message
    assert "layer 1 size: adapter 99, model 24" in message


def test_unreadable_or_foreign_files(tiny, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_adapter(tmp_path / "absent.npz", tiny)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_adapter(tmp_path / "junk.npz", tiny)
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not an adapter file"):
        load_adapter(tmp_path / "other.npz", tiny)


def test_model_without_the_protocol_is_refused(tiny) -> None:
    class Plain:
        labels = tiny.labels

    with pytest.raises(ValueError, match="lacks layer_size, output_layer"):
        Adapter(_module(tiny), Plain())


def test_non_affine_output_layer_is_refused(tiny) -> None:
    class Squashed:
        labels = tiny.labels
        representation_size = tiny.representation_size
        layer_size = tiny.layer_size

        @staticmethod
        def output_layer(x):
            return torch.tanh(tiny.output_layer(x))

    with pytest.raises(ValueError, match="affine output layer"):
        Adapter(_module(tiny), Squashed())


def test_pieces_units(spm_model: Path) -> None:
    speller = UnitSpeller("pieces", spm_model.read_bytes())
    ids = speller.spell("Zelenskyy")
    assert ids and min(ids) >= 2 and speller.vocab_size > 10
    with pytest.raises(ValueError, match="need a sentencepiece model"):
        UnitSpeller("pieces")
    with pytest.raises(ValueError, match="'chars' or 'pieces'"):
        UnitSpeller("words")
    chars = UnitSpeller("chars")
    assert chars.spell("Müller") == chars.spell("muller")
    assert chars.spell("") == [1]


def test_label_bags_and_their_projection(tiny) -> None:
    from biasing.adapters.adapter import label_bags

    bags = label_bags(["abc", "a b", "xyz", "aab"], tiny.labels)
    index = {label: i for i, label in enumerate(tiny.labels)}
    assert bags[0][[index["a"], index["b"], index["c"]]].tolist() == pytest.approx([1 / 3] * 3)
    assert bags[1][index[" "]] == 0 and bags[1][index["a"]] == pytest.approx(0.5)
    assert not bags[2].any()  # unspellable: nothing to raise
    assert bags[3][index["a"]] == pytest.approx(2 / 3)
    module = _module(tiny, trained=False)
    with torch.no_grad():
        eye = torch.eye(tiny.representation_size)
        matrix = tiny.output_layer(eye) - tiny.output_layer(torch.zeros(1, len(eye)))
        module.init_label_bag(matrix)
        back = module.bag_out(torch.from_numpy(bags)) @ matrix
    np.testing.assert_allclose(back.numpy(), bags, atol=1e-4)
