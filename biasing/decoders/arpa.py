"""Write a small bigram ARPA language model from sentences (tests, examples, benchmarks).

Not a replacement for KenLM's ``lmplz``: absolute discounting with a fixed discount and
unigram backoff, enough to give pyctcdecode and KenLM a real, valid model to load.
"""

from __future__ import annotations

import io
import itertools
import math
import os
from collections import Counter
from collections.abc import Iterable

from ..paths import atomic_write


def write_arpa(sentences: Iterable[str], path: str | os.PathLike[str],
               discount: float = 0.5) -> None:
    """Estimate a bigram model from whitespace-tokenised ``sentences`` and write it as ARPA."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[tuple[str, str]] = Counter()
    for sentence in sentences:
        words = ["<s>", *sentence.split(), "</s>"]
        unigrams.update(words[1:])
        bigrams.update(itertools.pairwise(words))
    if not bigrams:
        raise ValueError("write_arpa needs at least one sentence")
    total = sum(unigrams.values())
    vocab = sorted(set(unigrams) | {"<s>"})
    # reserve a little unigram mass for <unk>
    uni_logp = {w: math.log10(unigrams[w] / (total + 1)) for w in vocab if w != "<s>"}
    uni_logp["<unk>"] = math.log10(1 / (total + 1))
    history: Counter[str] = Counter()
    followers: Counter[str] = Counter()
    for (left, _), count in bigrams.items():
        history[left] += count
        followers[left] += 1
    bi_logp = {}
    for (left, right), count in bigrams.items():
        backoff_mass = discount * followers[left] / history[left]
        p = (count - discount) / history[left] + backoff_mass * 10 ** uni_logp[right]
        bi_logp[(left, right)] = math.log10(p)
    backoff = {left: math.log10(discount * followers[left] / history[left]) for left in history}
    with atomic_write(path) as raw, io.TextIOWrapper(raw, encoding="utf-8") as out:
        out.write(f"\\data\\\nngram 1={len(uni_logp) + 1}\nngram 2={len(bi_logp)}\n\n")
        out.write("\\1-grams:\n")
        out.write(f"-99\t<s>\t{backoff.get('<s>', 0.0):.6f}\n")
        out.writelines(f"{uni_logp[word]:.6f}\t{word}\t{backoff.get(word, 0.0):.6f}\n" for word in sorted(uni_logp))
        out.write("\n\\2-grams:\n")
        for (left, right), logp in sorted(bi_logp.items()):
            out.write(f"{logp:.6f}\t{left} {right}\n")
        out.write("\n\\end\\\n")
