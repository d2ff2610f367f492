"""Write the development KenLM model (a bigram ARPA) used by the eval reports.

Text: speechocean762 train transcripts and the Earnings-21 transcripts, minus every
sentence that mentions an entity of the Earnings-21 dev benchmark (so the benchmark's names
stay unknown to the LM, as new names are) and minus the benchmark's own sentences.
Words are normalised as the metrics do (lower case, apostrophes kept); words with digits
are dropped. Estimated with ``biasing.decoders.arpa.write_arpa`` (absolute discounting);
KenLM's ``lmplz`` would give a better model from the same text.

    python -m recipes.dev_lm [OUT.arpa]   # default $CTC_BIASING_CACHE/lm/dev.arpa
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from biasing.decoders.arpa import write_arpa
from biasing.metrics import normalize_text
from biasing.paths import cache_root, shared_root
from recipes.earnings21_dev.select import DEFAULT_OUT as DEV  # select writes the dev text


def earnings_sentences() -> list[str]:
    """Sentences of every Earnings-21 call, rebuilt from the .nlp token files."""
    out = []
    for nlp in sorted((shared_root() / "data" / "earnings21" / "transcripts" / "nlp_references")
                      .glob("*.nlp")):
        words: list[str] = []
        for line in nlp.read_text(encoding="utf-8").splitlines()[1:]:
            token, _, _, _, punctuation = line.split("|")[:5]
            words.append(token + punctuation)
            if punctuation in {".", "?", "!"}:
                out.append(" ".join(words))
                words = []
        if words:
            out.append(" ".join(words))
    return out


def dev_entity_pattern() -> re.Pattern[str]:
    """A regex over normalised text matching any dev benchmark entity as whole words."""
    if not (DEV / "entities.txt").is_file():
        sys.exit(f"run python -m recipes.earnings21_dev.select first ({DEV} is missing)")
    entities = [" ".join(normalize_text(e)) for e in
                (DEV / "entities.txt").read_text(encoding="utf-8").splitlines() if e.strip()]
    return re.compile(r"\b(?:" + "|".join(re.escape(e) for e in sorted(
        entities, key=len, reverse=True) if e) + r")\b")


def speechocean_train_texts() -> list[str]:
    """The transcripts of speechocean762 train (upper case)."""
    path = shared_root() / "data" / "speechocean762" / "train" / "text"
    return [line.split(maxsplit=1)[1] for line in path.read_text().splitlines()
            if len(line.split()) > 1]


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else cache_root() / "lm" / "dev.arpa"
    pattern = dev_entity_pattern()
    texts = speechocean_train_texts()
    texts += earnings_sentences()
    kept = []
    for text in texts:
        words = [w for w in normalize_text(text) if not any(c.isdigit() for c in w)]
        sentence = " ".join(words)
        if words and not pattern.search(sentence):
            kept.append(sentence)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_arpa(kept, out)
    vocab = {w for s in kept for w in s.split()}
    print(f"{out}: {len(kept):,} sentences of {len(texts):,} kept, {len(vocab):,} words")


if __name__ == "__main__":
    main()
