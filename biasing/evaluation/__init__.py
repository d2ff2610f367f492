"""Evaluation: how much each biasing technique helps, and what it costs (``ctc-biasing eval``).

- :mod:`.techniques`: the techniques as data, and the registry ``--techniques`` reads;
- :mod:`.lists`: each utterance's entity list (own entities, global list, distractors);
- :mod:`.cache`: model outputs cached on disk by model fingerprint and audio content;
- :mod:`.run`: :func:`run_eval` computes the scores (writes nothing);
- :mod:`.report`: results.json / .md / .png and per-utterance hypotheses.

>>> lists = build_lists(dataset, ListSpec(entities_per_utt=Path("own.tsv")))  # doctest: +SKIP
>>> run = run_eval(dataset, lists, model, parse_techniques("none,subword"),  # doctest: +SKIP
...                context)
>>> write_report(run, Path("out"), {"name": "my set"})                     # doctest: +SKIP
"""

from __future__ import annotations

from .cache import OutputCache, default_cache_dir
from .lists import ListSpec, auto_entities, build_lists, split_rarity, with_distractors
from .report import plot_problem, report_json, results_markdown, write_report
from .run import EvalRun, TechniqueResult, TechniqueRun, UtteranceResult, run_eval
from .techniques import (
    TECHNIQUES,
    DecodeFn,
    EvalContext,
    Technique,
    parse_techniques,
    register_technique,
)

__all__ = ["TECHNIQUES", "DecodeFn", "EvalContext", "EvalRun", "ListSpec", "OutputCache",
           "Technique", "TechniqueResult", "TechniqueRun", "UtteranceResult", "auto_entities",
           "build_lists", "default_cache_dir", "parse_techniques", "plot_problem",
           "register_technique", "report_json", "results_markdown", "run_eval",
           "split_rarity", "with_distractors", "write_report"]
