"""How strongly listed entities are favoured: :class:`BiasingOptions` and its groups.

The options come in the records the algorithms take: :class:`Boosting` (the beam search's
context-graph bonuses, :mod:`.bias`), :class:`Phonetic` (verification, lookup and rescoring
on a phone head, :mod:`.phonetic`) and :class:`Spotting` (the spotters and the unit-spot
rule, :mod:`.spotting`, :mod:`.unit_spots`); ``weight`` multiplies them all. Each field
declares its range and meaning beside its default, and one loop checks every field, so a
bad value is an error naming it and what was expected.

Callers may also speak in flat keywords (``unit_bonus=0.4``, ``--set merge_spots=false``):
every field name is unique across the groups, so :meth:`BiasingOptions.from_flat` and
:meth:`BiasingOptions.replace` know where each belongs. :func:`options_table` writes the
reference table of ``docs/options.md`` from the same declarations.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from .language_model import DEFAULT_BOOST_LOGP

__all__ = ["MAX_BONUS", "BiasingOptions", "Boosting", "Phonetic", "Spotting",
           "Verification", "options_table"]

MAX_BONUS = 1000.0  # nats: any bonus (or weight) above this is a typo, not a setting


# ----------------------------------------------------------------------- declarations

@dataclass(frozen=True)
class _Range:
    """What values a field accepts, as a check and as words for the docs."""

    kind: str  # "real", "integer", "probability", "logp", "bool"
    low: float = 0.0
    high: float = MAX_BONUS
    none_ok: bool = False  # None is accepted too

    def check(self, name: str, value: Any) -> None:
        if value is None and self.none_ok:
            return
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False, got {value!r}")
            return
        if self.kind == "integer":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
                    or value < self.low:
                raise ValueError(f"{name} must be an integer >= {self.low:g}, got {value!r}")
            return
        ok = _is_real(value) and self.low <= value <= self.high
        if self.kind == "probability":
            ok = ok and value > self.low
        if not ok:
            raise ValueError(f"{name} must be {self.describe()}, got {value!r}")

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "integer":
            return f"an integer >= {self.low:g}"
        if self.kind == "probability":
            return f"a probability in ({self.low:g}, {self.high:g}]"
        text = f"a {'log-probability' if self.kind == 'logp' else 'number'} from " \
               f"{self.low:g} to {self.high:g}"
        return text + (", or None" if self.none_ok else "")


def _is_real(value: object) -> bool:
    """A finite real number (numpy scalars included, bool not)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _option(default: Any, doc: str, kind: str = "real", **bounds: Any) -> Any:
    """A field with its default, its meaning (one line for the docs) and its range."""
    return field(default=default, metadata={"doc": doc, "range": _Range(kind, **bounds)})


class _Checked:
    """Checks every declared field of a frozen dataclass after construction."""

    def __post_init__(self) -> None:
        for spec in fields(self):  # type: ignore[arg-type]
            declared = spec.metadata.get("range")
            if declared is not None:
                declared.check(spec.name, getattr(self, spec.name))


# ---------------------------------------------------------------------------- groups

@dataclass(frozen=True)
class Boosting(_Checked):
    """The beam search's bonuses for units on an entity path (:mod:`.bias`), in nats."""

    unit_bonus: float = _option(0.3, "static bonus per unit on an entity path")
    adaptive_scale: float = _option(
        0.5, "a unit on an entity path also earns this share of the gap between the frame's "
             "best unit and itself...")
    max_adaptive: float = _option(2.0, "...capped at this much per unit")
    completion_bonus: float = _option(
        2.0, "added when a whole entity is completed (times its weight)")
    full_bonus_chars: int = _option(
        5, "entities with fewer letters earn a proportionally smaller completion bonus and "
           "lookup credit (short names are cheap to hallucinate); 0 = no scaling", "integer")
    g2g_variants: int = _option(
        0, "sound-alike spellings added per entity (G2G; needs the g2p extra)", "integer")
    force_window: float = _option(
        6.0, "units continuing a started entity are tried even below token_min_logp, down to "
             "this far below the frame's best unit")
    lm_boost_logp: float | None = _option(
        DEFAULT_BOOST_LOGP, "with KenLM: log-probability of the BOOST class that scores "
                            "listed words the LM does not know, instead of the unknown-word "
                            "penalty (None: off)", "logp",
        low=-MAX_BONUS, high=0.0, none_ok=True)


@dataclass(frozen=True)
class Phonetic(_Checked):
    """Verification, lookup and rescoring on a phone head (:mod:`.phonetic`), in nats."""

    phone_weight: float = _option(
        0.5, "rescoring: score = beam score + phone_weight x phone score")
    lookup_margin: float = _option(
        8.0, "a phone-spotted entity must explain its span better than the words there by "
             "this much")
    verify_margin: float = _option(
        1.0, "a boosted entity whose phones fall further below the phone head's best path "
             "than this per phone gives way to the unbiased words")
    rescore_n_best: int = _option(
        4, "beam-search hypotheses verified and rescored (the lookup works on the best)",
        "integer")
    lookup_bonus: float = _option(
        1.0, "credit per phone of a listed entity in the lookup's comparison (and cost "
             "forgiven per matched phone by the phone spotter)")
    phone_floor: float = _option(8.0, "the most one frame may cost a pronunciation")
    phone_deletion: float = _option(
        3.0, "cost of a pronunciation phone the audio lacks")
    oov_penalty: float = _option(
        2.0, "charge per word outside the lexicon and the list (its guessed pronunciation "
             "was written from the same audio)")
    verified_boost: float = _option(
        1.0, "with phone posteriors (the verifier on) the boosting bonuses are multiplied by "
             "this: bolder, since unsupported names are removed afterwards")
    lookup_unit_margin: float = _option(
        3.0, "a looked-up name's spelling on the output units may fall below their "
             "frame-wise best path by at most this much per unit (the output must say "
             "something like it; 1000: no check)")


@dataclass(frozen=True)
class Spotting(_Checked):
    """The spotters (token passing, :mod:`.spotting`) and the unit-spot rule
    (:mod:`.unit_spots`), in nats."""

    spot_bonus: float = _option(
        2.0, "unit spotting: credit per output unit of a listed entity (times its weight)")
    spot_max_cost: float = _option(
        4.0, "both spotters: a token's cost allowance beyond its bonus")
    spot_blank_gate: float = _option(
        0.8, "both spotters: no word starts where P(blank) is higher", "probability",
        low=0.0, high=1.0)
    spot_margin: float = _option(
        6.0, "unit spotting: a spotted entity's score plus spot_bonus per unit must beat the "
             "words it replaces by this much")
    spot_unheard: float = _option(
        8.0, "unit spotting: an entity with a unit whose best frame is this far below that "
             "frame's best unit is not placed")
    merge_spots: bool = _option(
        True, "place unit-spotted entities into the beam search's best hypothesis (after "
              "the phonetic stage, if it ran)", "bool")


@dataclass(frozen=True)
class Verification(_Checked):
    """The check of boosted and spotted names against the model's own output, for callers
    without phone evidence (:mod:`.support`)."""

    verify_units: bool = _option(
        True, "without phone posteriors, check every boosted or spotted name against the "
              "model's own output over its frames", "bool")
    unit_margin: float = _option(
        1.0, "a boosted name's best alignment may fall below the frame-wise best path by "
             "at most this much per unit")
    unit_confidence: float = _option(
        1.0, "a checked name's frames must have a mean best log-probability of at least "
             "minus this (the model is sure of something there)")
    spot_unit_margin: float = _option(
        1000.0, "unit_margin for unit-spotted names, which passed the spot rule already "
                "(1000: only the confidence test)")


# ----------------------------------------------------------------------------- whole

@dataclass(frozen=True)
class BiasingOptions(_Checked):
    """Every biasing setting: ``weight`` and the three groups.

    >>> BiasingOptions.from_flat(weight=2.0, unit_bonus=0.4).boosting.unit_bonus
    0.4
    """

    weight: float = _option(1.0, "multiplies every bonus and credit below; 0 gives exactly "
                                 "the unbiased output")
    boosting: Boosting = field(default_factory=Boosting)
    phonetic: Phonetic = field(default_factory=Phonetic)
    spotting: Spotting = field(default_factory=Spotting)
    verification: Verification = field(default_factory=Verification)

    GROUPS: ClassVar[tuple[str, ...]] = ("boosting", "phonetic", "spotting", "verification")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, kind in zip(self.GROUPS, (Boosting, Phonetic, Spotting, Verification)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got "
                                f"{type(getattr(self, name)).__name__}")

    @classmethod
    def names(cls) -> list[str]:
        """Every flat option name, in declaration order."""
        return [name for name, _ in _flat_fields()]

    @classmethod
    def from_flat(cls, options: Mapping[str, Any] | None = None, /,
                  **keywords: Any) -> BiasingOptions:
        """Options from flat names (``weight``, ``unit_bonus``, ``merge_spots``, ...); the
        rest keep their defaults.

        Raises:
            TypeError: an unknown name (the message lists the known ones).
            ValueError: a value out of its range.
        """
        return cls().replace(**{**(options or {}), **keywords})

    def replace(self, **changes: Any) -> BiasingOptions:
        """These options with some changed, by flat name."""
        owner = dict(_flat_fields())
        unknown = sorted(set(changes) - set(owner))
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(sorted(owner))}")
        top = {k: v for k, v in changes.items() if owner[k] == ""}
        groups = {group: replace(getattr(self, group),
                                 **{k: v for k, v in changes.items() if owner[k] == group})
                  for group in self.GROUPS if any(owner[k] == group for k in changes)}
        return replace(self, **top, **groups)

    def flat(self) -> dict[str, Any]:
        """Every option by flat name."""
        return {name: getattr(getattr(self, group), name) if group else getattr(self, name)
                for name, group in _flat_fields()}


def _flat_fields() -> Iterator[tuple[str, str]]:
    """(flat name, group or "" for the top level) of every option."""
    for spec in fields(BiasingOptions):
        if spec.name in _GROUP_TYPES:
            yield from ((inner.name, spec.name) for inner in fields(_GROUP_TYPES[spec.name]))
        else:
            yield spec.name, ""


_GROUP_TYPES: dict[str, type] = {"boosting": Boosting, "phonetic": Phonetic,
                                 "spotting": Spotting, "verification": Verification}


def options_table() -> str:
    """The reference table of every option (markdown): flat name, group, default, range,
    meaning. ``docs/options.md`` holds it; a test keeps the two in step."""
    rows = ["| option | group | default | accepts | meaning |", "|---|---|---|---|---|"]
    for owner, kind in (("", BiasingOptions), *_GROUP_TYPES.items()):
        for spec in fields(kind):
            if "range" not in spec.metadata:
                continue
            default = spec.default
            shown = "None" if default is None else str(default).lower() \
                if isinstance(default, bool) else f"{default:g}"
            rows.append(f"| `{spec.name}` | {owner or '—'} | {shown} | "
                        f"{spec.metadata['range'].describe()} | {spec.metadata['doc']} |")
    return "\n".join(rows) + "\n"
