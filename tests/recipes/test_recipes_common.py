"""What the training recipes share (recipes.common): batching, the validation split, error
rates, padding, the CTC loss."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training recipes need the torch extra")

from recipes.common import (
    TrainUtterance,
    batches,
    ctc,
    error_rate,
    pad_waves,
    unit_words,
    validation_split,
)


def test_batches_cover_every_item_once_within_the_budget() -> None:
    lengths = [5, 1, 9, 3, 3, 7, 2, 8]
    plan = batches(lengths, budget=12, max_items=3, seed=0)
    assert sorted(i for batch in plan for i in batch) == list(range(len(lengths)))
    for batch in plan:
        assert len(batch) <= 3
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= 12
    assert plan == batches(lengths, budget=12, max_items=3, seed=0)
    assert sorted(map(sorted, plan)) == sorted(map(sorted, batches(lengths, 12, 3, seed=1)))


def test_validation_split_takes_real_speech_only() -> None:
    corpus = [TrainUtterance(f"so{i:03d}", np.zeros(1, np.int16), "a", "speechocean762")
              for i in range(250)] + [TrainUtterance("tts1", np.zeros(1, np.int16), "a", "tts")]
    train, valid = validation_split(corpus, size=100)
    assert len(valid) == 100 and all(u.source == "speechocean762" for u in valid)
    assert {u.utt_id for u in train} | {u.utt_id for u in valid} == {u.utt_id for u in corpus}
    assert not {u.utt_id for u in train} & {u.utt_id for u in valid}


def test_error_rates() -> None:
    assert unit_words(["▁we", "▁me", "t"]) == "we met"
    assert error_rate([list("we met")], [list("we met")], phones=False) == 0.0
    assert error_rate([["▁we", "▁met"]], [["▁we", "▁mat"]], phones=False) == 0.5
    per = error_rate([["AA", "B"], ["K"]], [["AA"], ["K", "K"]], phones=True)
    assert per == pytest.approx(2 / 3)


def test_pad_waves_and_ctc() -> None:
    padded, lengths = pad_waves([np.ones(3, np.float32), np.ones(5, np.float32)])
    assert padded.shape == (2, 5) and lengths.tolist() == [3, 5] and padded[0, 3:].sum() == 0
    logits = torch.zeros(2, 4, 6, requires_grad=True)  # (batch, classes, frames), blank 3
    loss = ctc(logits, torch.tensor([6, 4]), [[0, 1], [2]], blank=3)
    loss.backward()
    assert loss.item() > 0 and logits.grad is not None
