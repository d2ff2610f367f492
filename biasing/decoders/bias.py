"""Biasing as a scorer beside the search: what a listed entity earns, unit by unit.

A beam carries a small immutable :class:`BiasState` (where it is in the context graph and
how much it collected on the path it is on). The search asks
``advance(state, unit, gap) -> (bonus, new_state)`` for every unit it emits and
``finalize(state) -> bonus`` when an utterance ends, and adds the numbers it gets:

- a unit on an entity path earns ``unit_bonus + min(adaptive_scale * gap, max_adaptive)``
  (``gap``: how far below the frame's best unit it is), times the entity weight and the
  decoder ``weight``;
- when the path breaks off, everything it collected is given back (a negative bonus), so
  a partial match never wins by accident; matching resumes through the failure links
  (Aho-Corasick, as icefall's context graphs);
- a completed entity (closing word boundary) earns ``completion_bonus`` times its weight,
  scaled down for names with fewer than ``full_bonus_chars`` letters, and keeps what it
  collected;
- at the end of the utterance a boundary is taken as above and an open partial match is
  given back.

The graph's alphabet is the decoder's label indices plus the word boundary (the space label
of character vocabularies, :data:`~biasing.decoders.context_graph.BOUNDARY` for subwords).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

from .compile import CompiledEntities
from .options import Boosting

__all__ = ["BiasScorer", "BiasState"]

_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__ (hot path)


class BiasState(NamedTuple):
    """Where a beam is in the context graph."""

    node: int  # context-graph node (0 = root)
    partial: float  # bonus collected on the current, unfinished path (given back on a break)


class BiasScorer:
    """Bonuses of one compiled entity list under one set of options (module docs).

    Args:
        compiled: the list compiled against the decoder's vocabulary.
        weight: the decoder's weight (multiplies every bonus).
        boosting: the bonuses (``unit_bonus``, ``adaptive_scale``, ``max_adaptive``,
            ``completion_bonus``, ``full_bonus_chars``).
    """

    def __init__(self, compiled: CompiledEntities, weight: float, boosting: Boosting) -> None:
        graph = compiled.graph
        self.graph = graph
        self.boundary = graph.boundary
        self.start = BiasState(graph.start, 0.0)
        self._static = boosting.unit_bonus * weight
        self._scale = boosting.adaptive_scale * weight
        self._cap = boosting.max_adaptive * weight
        self._completion = boosting.completion_bonus * weight
        self._letters = compiled.letters
        self._full = boosting.full_bonus_chars

    @functools.cached_property
    def _children(self) -> list[dict[int, int]]:  # the graph's dicts, made on first use:
        return self.graph.children  # the compiled core reads the graph's arrays instead

    @functools.cached_property
    def _node_weight(self) -> list[float]:
        return self.graph.weight

    @functools.cached_property
    def _node_entity(self) -> list[int]:
        return self.graph.entity

    @property
    def letters(self) -> tuple[int, ...]:
        """Per entity, the letters of its normalised spelling (short names earn less)."""
        return self._letters

    def numbers(self) -> list[float]:
        """The bonuses as the compiled core takes them: unit bonus, adaptive scale, cap,
        completion bonus (all times the weight) and ``full_bonus_chars``."""
        return [self._static, self._scale, self._cap, self._completion, float(self._full)]

    def gain(self, gap: float) -> float:
        """What a unit ``gap`` nats below the frame's best unit earns on an entity path
        (before the entity weight)."""
        return min(self._scale * gap, self._cap) + self._static

    def advance(self, state: BiasState, unit: int, gap: float) -> tuple[float, BiasState]:
        """The bonus of emitting ``unit`` (a label index, or the boundary) from ``state``."""
        node, partial = state
        child = self._children[node].get(unit)
        bonus = 0.0
        if child is None:
            if node == 0:
                return 0.0, _ROOT
            bonus = -partial  # the path broke off: give back what it collected
            partial = 0.0
            child, _ = self.graph.step(node, unit)
            if child == 0:
                return bonus, _ROOT
        if unit != self.boundary:
            gain = (min(self._scale * gap, self._cap) + self._static) * self._node_weight[child]
            return bonus + gain, _new(BiasState, (child, partial + gain))
        ended, ended_weight = self.graph.output(child)
        if ended >= 0:
            short = min(1.0, self._letters[ended] / self._full) if self._full else 1.0
            bonus += self._completion * ended_weight * short
            if self._node_entity[child] >= 0:
                partial = 0.0  # committed: a completed entity keeps its bonus
        return bonus, _new(BiasState, (child, partial))

    def finalize(self, state: BiasState) -> float:
        """The bonus at the end of the utterance: a closing boundary, then the give-back of
        a match still open."""
        bonus, state = self.advance(state, self.boundary, 0.0)
        return bonus - state.partial

    def inside(self, state: BiasState) -> bool:
        """Whether the beam has started an entity (past its opening boundary)."""
        return self.graph.depth[state.node] >= 2

    def continuations(self, state: BiasState) -> tuple[int, ...]:
        """Label indices that continue the entity path at ``state``."""
        return self.graph.force_units(state.node)


_ROOT = BiasState(0, 0.0)
