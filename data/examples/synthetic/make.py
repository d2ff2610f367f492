"""Write the synthetic example: CTC log-probs of "we met in fremont today" whose "t" is
acoustically weaker than a "d", the character labels, and an entity list.

    python data/examples/synthetic/make.py
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
LABELS = [" ", *"abcdefghijklmnopqrstuvwxyz", "'", ""]


def main() -> None:
    index = {c: i for i, c in enumerate(LABELS)}
    blank = index[""]
    frames: list[dict[int, float]] = [{blank: 0.9995}]
    for pos, char in enumerate("we met in fremont today"):
        if pos == 16:  # the "t" of fremont: a "d" is more likely
            frames += [{index["d"]: 0.55, index["t"]: 0.35}, {blank: 0.9995}]
        else:
            frames += [{index[char]: 0.9995}] * 2 + [{blank: 0.9995}]
    frames.append({blank: 0.9995})
    logprobs = np.empty((len(frames), len(LABELS)), dtype=np.float32)
    for t, probs in enumerate(frames):
        rest = max(1.0 - sum(probs.values()), 1e-4 * len(LABELS))
        row = np.full(len(LABELS), rest / (len(LABELS) - len(probs)))
        for unit, p in probs.items():
            row[unit] = p
        logprobs[t] = np.log(row / row.sum())
    np.save(HERE / "fremont.npy", logprobs)
    (HERE / "labels.txt").write_text("\n".join(LABELS) + "\n", encoding="utf-8")
    (HERE / "entities.txt").write_text(
        "# one entity per line, optional <TAB>weight\nFremont\nZelenskyy\t2\nNew York City\n",
        encoding="utf-8")


if __name__ == "__main__":
    main()
