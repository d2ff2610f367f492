"""CTC word spotting: token passing over a trie of unit sequences, on any CTC posteriorgram.

The approach of NeMo's CTC word spotter (Andrusenko et al., 2024), with no beam search
behind it: every listed word is a path of units (phones of its pronunciation, or the
model's own characters or subwords) in a :class:`UnitTrie`; tokens walk the trie with
CTC topology (a unit may repeat over frames, blanks may follow it, a repeated unit needs a
blank between) on the same frames the model scored. A token may start on any frame whose
blank probability is at most ``blank_gate``. Each token's score is relative: the sum over
its frames of ``logp(unit) - max(logp)``, so it is 0 when it follows the frame-wise best
units and it does not depend on where the token started. A token is dropped when its cost
exceeds ``max_cost`` plus ``unit_bonus`` per unit it has matched, and at most
``max_active`` states live per frame (one token per state: the best).

A token that completes a word is a :class:`Spot` (which sequence, its first and last
frame, its relative score); the caller decides what to do with it (see
:mod:`~biasing.decoders.lookup`). Per frame the work grows with the live tokens, not with
the list, so 10,000 entries cost little more than 100.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import native

__all__ = ["Spot", "SpotOptions", "UnitTrie", "spot"]

NEG_INF = -np.inf


@dataclass(frozen=True)
class SpotOptions:
    """Thresholds of the spotter (log-probabilities in nats)."""

    unit_bonus: float = 1.0  # nats of cost forgiven per matched unit
    max_cost: float = 4.0  # a token may be this far below the frame-wise best path,
    # on top of its units' bonus, before it is dropped
    blank_gate: float = 0.8  # no word starts on a frame whose blank probability is higher
    max_active: int = 3000  # most trie states kept per frame
    floor: float | None = None  # if given, no frame costs a token more than this (nats):
    # one misheard or mispredicted unit does not end a match

    def __post_init__(self) -> None:
        for name in ("unit_bonus", "max_cost"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1000):
                raise ValueError(f"{name} must be a number from 0 to 1000, got {value!r}")
        if not 0 < self.blank_gate <= 1:
            raise ValueError(f"blank_gate must be a probability in (0, 1], got "
                             f"{self.blank_gate!r}")
        if not isinstance(self.max_active, int) or self.max_active < 1:
            raise ValueError(f"max_active must be a positive integer, got {self.max_active!r}")


class Spot(NamedTuple):
    """A spotted sequence."""

    key: int  # the sequence's key as given to the trie (e.g. an entity index)
    units: tuple[int, ...]  # the unit sequence matched
    start: int  # first frame of its first unit
    end: int  # frame after its last unit's first frame run
    score: float  # relative log score (<= 0): 0 when it is the frame-wise best path


class UnitTrie:
    """A prefix tree of unit sequences, each with a key; shared prefixes share nodes.

    Node 0 is the root. Arrays: ``parent``, ``unit``, ``depth`` per node; children of node
    ``n`` are ``child_ids[child_ptr[n]:child_ptr[n + 1]]``; sequences ending at ``n`` are
    ``ends[n]`` (a list of (key, units)).
    """

    def __init__(self, sequences: Iterable[tuple[int, Sequence[int]]]) -> None:
        sequences = list(sequences)
        if native.available():  # the same arrays, built in C++
            (self.parent, self.unit, self.depth, self.child_ptr, self.child_ids,
             last) = native.build_trie(sequences)
            last_nodes = last.tolist()
        else:
            last_nodes = self._build(sequences)
        ends: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
        for (key, units), node in zip(sequences, last_nodes):
            if node:
                found = ends.setdefault(node, [])
                entry = (int(key), tuple(map(int, units)))
                if entry not in found:
                    found.append(entry)
        self.ends = ends
        self.terminal = np.zeros(len(self.parent), dtype=bool)
        self.terminal[list(ends)] = True

    def _build(self, sequences: list[tuple[int, Sequence[int]]]) -> list[int]:
        """The arrays in Python (the compiled core builds the same); each sequence's last
        node."""
        children: list[dict[int, int]] = [{}]
        parent, unit, depth = [0], [-1], [0]
        last = []
        for _, units in sequences:
            node = 0
            for u in units:
                nxt = children[node].get(u)
                if nxt is None:
                    nxt = len(parent)
                    children[node][u] = nxt
                    children.append({})
                    parent.append(node)
                    unit.append(int(u))
                    depth.append(depth[node] + 1)
                node = nxt
            last.append(node)
        self.parent = np.array(parent, dtype=np.int64)
        self.unit = np.array(unit, dtype=np.int64)
        self.depth = np.array(depth, dtype=np.int64)
        counts = np.array([len(c) for c in children], dtype=np.int64)
        self.child_ptr = np.concatenate([[0], np.cumsum(counts)])
        self.child_ids = np.array([c for kids in children for c in kids.values()],
                                  dtype=np.int64)
        return last

    def __len__(self) -> int:
        """Number of nodes, the root included."""
        return len(self.parent)

    def children(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All children of ``nodes``: (index into ``nodes`` of the parent, child id)."""
        first = self.child_ptr[nodes]
        counts = self.child_ptr[nodes + 1] - first
        which = np.repeat(np.arange(len(nodes)), counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return which, self.child_ids[first[which] + offsets]


def spot(logprobs: np.ndarray, blank: int, trie: UnitTrie,
         options: SpotOptions = SpotOptions()) -> list[Spot]:
    """Spot the trie's sequences in (frames, classes) log-probabilities.

    Returns one :class:`Spot` per sequence and start frame (its best end), best adjusted
    score (``score + unit_bonus * len(units)``) first.
    """
    logprobs = np.asarray(logprobs, dtype=np.float64)
    if len(trie) == 1 or len(logprobs) == 0:
        return []
    rel = logprobs - logprobs.max(axis=1, keepdims=True)
    if options.floor is not None:
        rel = np.maximum(rel, -options.floor)
    gate_open = logprobs[:, blank] <= np.log(options.blank_gate)
    if native.enabled():
        best = {(node, start): (score, end) for node, start, score, end in native.spot_tokens(
            rel, gate_open, blank, trie, options.unit_bonus, options.max_cost,
            options.max_active)}
    else:
        best = _tokens(rel, gate_open, blank, trie, options)
    bonus = options.unit_bonus
    spots = [Spot(key, units, start, end, score)
             for (node, start), (score, end) in best.items()
             for key, units in trie.ends[node]]
    spots.sort(key=lambda s: -(s.score + bonus * len(s.units)))
    return spots


def _tokens(rel: np.ndarray, gate_open: np.ndarray, blank: int, trie: UnitTrie,
            options: SpotOptions) -> dict[tuple[int, int], tuple[float, int]]:
    """The token passing in numpy (the reference of the compiled core's): the best
    ``(score, end)`` per completed ``(trie node, start frame)``."""
    roots = trie.child_ids[trie.child_ptr[0]:trie.child_ptr[1]]
    bonus = options.unit_bonus
    size = len(trie)
    # live states: ids < size are "emitting node's unit", ids >= size "blank after node"
    states = np.zeros(0, dtype=np.int64)
    scores = np.zeros(0)
    starts = np.zeros(0, dtype=np.int64)
    best: dict[tuple[int, int], tuple[float, int]] = {}  # (node, start) -> (score, end)
    for t in range(len(rel)):
        if not len(states) and not gate_open[t]:
            continue  # nothing alive and no word may start: an idle frame
        r = rel[t]
        node = np.where(states < size, states, states - size)
        emitting = states < size
        # stay: a unit repeats or a blank follows (either state goes to the blank state)
        parts_state = [states, node + size]
        parts_score = [np.where(emitting, scores + r[trie.unit[node]], NEG_INF),
                       scores + r[blank]]
        parts_start = [starts, starts]
        # advance to a child: from the blank state always, from the unit if it differs
        which, kids = trie.children(node)
        if len(kids):
            allowed = ~emitting[which] | (trie.unit[kids] != trie.unit[node[which]])
            which, kids = which[allowed], kids[allowed]
            parts_state.append(kids)
            parts_score.append(scores[which] + r[trie.unit[kids]])
            parts_start.append(starts[which])
        if gate_open[t]:
            parts_state.append(roots)
            parts_score.append(r[trie.unit[roots]])
            parts_start.append(np.full(len(roots), t, dtype=np.int64))
        states = np.concatenate(parts_state)
        scores = np.concatenate(parts_score)
        starts = np.concatenate(parts_start)
        # one token per state (the best), then prune by cost beyond the units' bonus
        order = np.lexsort((-scores, states))
        states, scores, starts = states[order], scores[order], starts[order]
        first = np.ones(len(states), dtype=bool)
        first[1:] = states[1:] != states[:-1]
        node = np.where(states < size, states, states - size)
        adjusted = scores + bonus * trie.depth[node]
        keep = first & (adjusted >= -options.max_cost)
        if keep.sum() > options.max_active:
            cut = np.partition(adjusted[keep], -options.max_active)[-options.max_active]
            keep &= adjusted >= cut
        states, scores, starts, node = states[keep], scores[keep], starts[keep], node[keep]
        # completed sequences: the emitting state of a terminal node
        done = (states < size) & trie.terminal[node]
        for end_node, score, start in zip(node[done].tolist(), scores[done].tolist(),
                                          starts[done].tolist()):
            previous = best.get((end_node, start))
            if previous is None or score > previous[0]:
                best[(end_node, start)] = (score, t + 1)
    return best
