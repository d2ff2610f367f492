"""Write an evaluation's results: ``results.json``, ``results.md``, ``results.png`` and the
per-utterance hypotheses (``hypotheses/<technique>.tsv``).

The chart needs matplotlib (the ``eval`` extra): check :func:`plot_problem` before the run,
so a missing dependency is said at the start and the chart is skipped rather than the run
failing at its end.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .. import __version__
from ..metrics import UtteranceScore
from ..paths import atomic_write, ensure_folder, write_text_atomic
from .run import EvalRun

__all__ = ["plot_problem", "report_json", "results_markdown", "write_report"]

_HYPOTHESIS_COLUMNS = ("id", "reference", "hypothesis", "found", "missed", "false_alarms")


def plot_problem() -> str | None:
    """Why the chart cannot be drawn here (None when it can)."""
    if importlib.util.find_spec("matplotlib") is None:
        return "the results chart needs matplotlib (pip install 'ctc-biasing[eval]'); skipping it"
    return None


def report_json(run: EvalRun, info: Mapping[str, Any]) -> dict[str, Any]:
    """The content of ``results.json``: the dataset and setup (``info``, the version of
    this package and what the run measured) and each technique's scores."""
    dataset = {
        **info, "version": __version__, "n_utterances": run.n_utterances,
        "audio_hours": round(run.audio_s / 3600, 4),
        "forward_rtf": round(run.forward_s / run.audio_s, 5) if run.forward_s else None,
        "mean_list_size": round(run.mean_list_size, 1),
        "unspellable_entities": len(run.unspellable),
        "unpronounceable_entities": len(run.unpronounceable),
        "techniques": {t.technique.name: t.technique.description for t in run.techniques},
        "technique_options": {t.technique.name: dict(t.options) for t in run.techniques},
    }
    return {"dataset": dataset,
            "results": {t.technique.name: asdict(t.result) for t in run.techniques}}


def write_report(run: EvalRun, output: Path, info: Mapping[str, Any], plot: bool = True,
                 ) -> dict[str, Any]:
    """Write every result file into ``output`` (created) and return the JSON content.

    The set is replaced as a whole: the old ``results.json`` goes first, then each file is
    written atomically, ``results.json`` last. A run stopped half-way leaves the previous
    complete set (stopped before writing) or a folder without ``results.json`` (stopped
    while writing), never a ``results.json`` beside hypotheses it does not describe.
    """
    report = report_json(run, info)
    hypotheses = ensure_folder(output / "hypotheses", "folder of hypotheses")
    (output / "results.json").unlink(missing_ok=True)
    for stale in hypotheses.glob("*.tsv"):  # another run's techniques
        stale.unlink()
    for technique in run.techniques:
        rows = ["\t".join(_HYPOTHESIS_COLUMNS)]
        rows += ["\t".join([u.id, u.reference, u.hypothesis, *_entity_columns(u.score)])
                 for u in technique.utterances]
        write_text_atomic(hypotheses / f"{technique.technique.name}.tsv", "\n".join(rows) + "\n")
    if plot:
        with atomic_write(output / "results.png") as stream:
            _plot(report, stream)
    write_text_atomic(output / "results.md", results_markdown(report))
    write_text_atomic(output / "results.json", json.dumps(report, indent=1) + "\n")
    return report


def _entity_columns(score: UtteranceScore) -> list[str]:
    by_outcome: dict[str, list[str]] = {"found": [], "missed": [], "false_alarm": []}
    for occurrence in score.entities:
        by_outcome[occurrence.outcome].append(occurrence.entity)
    return ["|".join(by_outcome[k]) for k in ("found", "missed", "false_alarm")]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def results_markdown(report: Mapping[str, Any]) -> str:
    """One row per technique (percentages, RTF of decoding)."""
    lines = ["| technique | WER | B-WER | U-WER | entity P | entity R | entity F1 | decode RTF |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in report["results"].items():
        lines.append(f"| {name} | {_pct(r['wer'])} | {_pct(r['b_wer'])} | {_pct(r['u_wer'])} "
                     f"| {_pct(r['entity_precision'])} | {_pct(r['entity_recall'])} "
                     f"| {_pct(r['entity_f1'])} | {r['rtf']:.4f} |")
    return "\n".join(lines) + "\n"


# the chart's two panels: (title, [(result key, label, colour)])
_PANELS = (
    ("word error rates: lower is better", [("wer", "WER", "tab:red"),
                                           ("b_wer", "B-WER", "tab:orange"),
                                           ("u_wer", "U-WER", "tab:brown")]),
    ("entity precision, recall and F1: higher is better", [
        ("entity_precision", "precision", "tab:blue"), ("entity_recall", "recall", "tab:cyan"),
        ("entity_f1", "F1", "tab:green")]),
)


def _plot(report: Mapping[str, Any], stream: BinaryIO) -> None:
    """The chart of :func:`_chart`, as PNG."""
    fig = _chart(report)
    import matplotlib.pyplot as plt  # after _chart has chosen the Agg backend

    fig.savefig(stream, dpi=120, format="png")
    plt.close(fig)


def _chart(report: Mapping[str, Any]) -> Any:
    """A matplotlib figure of two panels, one above the other, with a group of bars per
    technique: the error rates (WER, B-WER, U-WER; lower is better) and the listed
    entities' precision, recall and F1 (higher is better), in percent. An undefined value
    (precision when no listed entity was output, B-WER and recall when none was said) is a
    bar of height 0 marked "n/a"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["results"])
    fig, axes = plt.subplots(2, 1, figsize=(2.0 + 1.3 * len(names), 7.0))
    for ax, (title, metrics) in zip(axes, _PANELS):
        width = 0.8 / len(metrics)
        highest = 1.0
        for k, (key, label, colour) in enumerate(metrics):
            raw = [report["results"][n][key] for n in names]
            values = [0.0 if v is None else 100 * v for v in raw]
            bars = ax.bar(np.arange(len(names)) + (k - (len(metrics) - 1) / 2) * width,
                          values, width, label=label, color=colour)
            ax.bar_label(bars, labels=["n/a" if v is None else f"{100 * v:.1f}" for v in raw],
                         fontsize=7)
            highest = max(highest, *values)
        top = highest * 1.3  # room for the labels and the legend
        ax.set_ylim(0, top)
        ax.set_yticks([t for t in ax.get_yticks() if t <= min(top, max(100.0, highest))])
        ax.set_xticks(np.arange(len(names)), names)
        ax.set_ylabel("%")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, ncols=len(metrics), loc="upper center", frameon=False)
    dataset = report["dataset"]
    fig.suptitle(f"{dataset.get('name', 'dataset')}: {dataset['n_utterances']} utterances, "
                 f"mean list {dataset['mean_list_size']}", fontsize=10)
    fig.tight_layout()
    return fig
