"""The evaluation report every training writes into its model directory: `evaluation.html` and `evaluation.png`.

It shows what a reviewer asks before shipping: NDCG@k and recall@k for k = 1..50 of ALS against
most-popular, under which relevance; catalogue coverage; how much of what ALS recommends is just the 1%
most popular videos; and the tuning trials. Everything comes from the manifest, so the report can be
re-rendered from any model directory.

matplotlib draws the PNG and is imported here only, when a report is rendered: the serving image does not
carry it (requirements-offline.txt), and a training run without it writes the HTML with its tables and says so.
"""

from __future__ import annotations

import html
import io
import json
import logging
from datetime import UTC, datetime

from vrmodels.model.artifacts import REPORT_HTML_FILE as HTML_FILE
from vrmodels.model.artifacts import REPORT_PNG_FILE as PNG_FILE
from vrmodels.model.manifest import BASELINES, SESSION_BASELINES, Evaluation, Manifest
from vrmodels.model.ranking import RANKINGS

log = logging.getLogger(__name__)


def label(name: str) -> str:
    """How the report names a model kind or a baseline."""
    ranking = RANKINGS.get(name)
    return ranking.label if ranking else {**SESSION_BASELINES, **OURS, **BASELINES}.get(name, name)


OURS = {  # the judged model asked otherwise than as its kind
    "sequential_history_only": "the sequence-aware model, history only (no user)",
    "personal": "up next for the viewer (user and history)",
}


def render(manifest: Manifest) -> dict[str, bytes]:
    """File name → content for the model directory: the HTML always, the PNG when matplotlib is installed."""
    try:
        png = _plot(manifest)
    except ImportError:
        png = None
        log.warning("no matplotlib here, so no evaluation.png (pip install -r requirements-offline.txt)")
    files = {HTML_FILE: _html(manifest, with_png=png is not None).encode()}
    if png is not None:
        files[PNG_FILE] = png
    return files


def _plot(manifest: Manifest) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curves = manifest.evaluation.curves
    tuning = manifest.tuning or []
    figure = Figure(figsize=(15 if tuning else 10, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 3 if tuning else 2)
    for axis, metric in zip(axes, ("ndcg", "recall")):
        for model, values in curves.items():
            axis.plot(range(1, len(values[metric]) + 1), values[metric], label=label(model))
        axis.set_title(f"{metric.upper() if metric == 'ndcg' else metric.capitalize()}@k")
        axis.set_xlabel("k")
        axis.grid(alpha=0.3)
        axis.legend()
    if tuning:
        key = _tuning_key(tuning)
        scores = [entry[key] for entry in tuning]
        axes[2].plot(range(len(scores)), scores, "o", label="trial")
        axes[2].axhline(scores[0], color="grey", linestyle="--", label="trial 0 (defaults)")
        axes[2].set_title(f"tuning: {key.replace('_', ' ')}")
        axes[2].set_xlabel("trial")
        axes[2].grid(alpha=0.3)
        axes[2].legend()
    figure.suptitle(f"{manifest.model_version}: {_relevance(manifest)}", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _relevance(manifest: Manifest) -> str:
    return (manifest.evaluation.relevance or {}).get("description", "relevance not recorded")


def _html(manifest: Manifest, with_png: bool) -> str:
    evaluation, metrics = manifest.evaluation, manifest.metrics
    k, curves = evaluation.k, evaluation.curves
    columns = ("precision", "recall", "ndcg", "map", "coverage", "popular_share")
    if any("ndcg_fresh" in values for values in metrics.values()):
        columns += ("ndcg_fresh", "recall_fresh")
    rows = "".join(
        f"<tr><th>{label(model)}</th>"
        + "".join(f"<td>{values.get(name, float('nan')):.4f}</td>" for name in columns)
        + f"<td>{values.get('users', '')}</td></tr>"
        for model, values in metrics.items()
    )
    curve_rows = "".join(
        f"<tr><th>{i}</th>"
        + "".join(f"<td>{curves[model][metric][i - 1]:.4f}</td>" for metric in ("ndcg", "recall") for model in curves)
        + "</tr>"
        for i in (1, 3, 5, 10, 20, 50)
        if curves and i <= len(next(iter(curves.values()))["ndcg"])
    )
    curve_header = "".join(f"<th>{metric}@k {label(model)}</th>" for metric in ("ndcg", "recall") for model in curves)
    picture = (
        f'<img src="{PNG_FILE}" alt="NDCG@k and recall@k curves" style="max-width:100%">'
        if with_png
        else "<p><em>matplotlib was not installed where this model was trained: no chart.</em></p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation of {html.escape(manifest.model_version)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#f4f4f4}}
.best{{font-weight:bold}}</style></head><body>
<h1>Evaluation of {html.escape(manifest.model_version)}</h1>
<p>Hold-out: {_holdout(evaluation)}
Relevant: <strong>{html.escape(_relevance(manifest))}</strong>.
Every model is fitted on the training part only; recommendations exclude what the user watched in it.
The model that ships: <strong>{label(manifest.kind)}</strong>.</p>
<h2>At k = {k}</h2>
<table><tr><th>model</th>{"".join(f"<th>{name}@{k}</th>" for name in columns)}<th>users</th></tr>{rows}</table>
<p>coverage: share of the catalogue that appears in some top-{k} list; popular_share: share of the top-{k}
recommendations drawn from the 1% most popular videos.</p>
<h2>NDCG@k and recall@k, k = 1..50</h2>
{picture}
<table><tr><th>k</th>{curve_header}</tr>{curve_rows}</table>
{_sittings_html(manifest)}
{_tuning_html(manifest.tuning)}
{_ranker_html(manifest.ranker)}
<h2>Parameters</h2>
<pre>{html.escape(_pretty({"parameters": manifest.parameters, "confidence": manifest.confidence}))}</pre>
</body></html>
"""


def _holdout(evaluation: Evaluation) -> str:
    details = evaluation.holdout
    if evaluation.split != "time":
        return f"{html.escape(evaluation.split)}, {details.get('test_fraction', 0.2):.0%} of each user's videos."
    cut = datetime.fromtimestamp(details["cut"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"in time: every event before {cut} trains; the first watches of the {details['test_days']} days after "
        "it judge, of videos that existed at the cut (as a nightly retrain lives). fresh: the same, counting only "
        "videos published in the 3 days before the cut."
    )


def _sittings_html(manifest: Manifest) -> str:
    """In session and up next: the judged model and its baselines on each judged user's first sitting after the
    cut (its first watches given, the satisfying watches of the rest to find)."""
    judgements = manifest.judgements
    if not judgements.get("in_session"):
        return ""
    sections = []
    for name, title in (("in_session", "In session"), ("up_next", "Up next")):
        rows = "".join(
            f"<tr><th>{html.escape(label(model))}</th><td>{values['ndcg']:.4f}</td><td>{values['recall']:.4f}</td>"
            f"<td>{values.get('users', '')}</td></tr>"
            for model, values in sorted(judgements[name].items(), key=lambda item: -item[1]["ndcg"])
        )
        sections.append(
            f"<h2>{title}</h2><table><tr><th>model</th><th>ndcg@{manifest.evaluation.k}</th>"
            f"<th>recall@{manifest.evaluation.k}</th><th>sittings</th></tr>{rows}</table>"
        )
    given = (manifest.evaluation.holdout.get("in_session") or {}).get("given", 2)
    blend = manifest.sessions.up_next_blend if manifest.sessions else None
    return (
        f"<p>In session: each judged user's first sitting after the cut, its first {given} watches given in order, "
        "the satisfying watches of the rest of it to find. Up next: the same sittings, after the last watch given"
        + (f" (the watched-next share of the blend: {blend:g}, tuned on the sittings before the cut)" if blend else "")
        + ".</p>"
        + "".join(sections)
    )


def _ranker_html(ranker: dict | None) -> str:
    if not ranker:
        return ""
    importances = sorted(ranker["importances"].items(), key=lambda item: -item[1])
    rows = "".join(f"<tr><th>{html.escape(name)}</th><td>{share:.1%}</td></tr>" for name, share in importances)
    held_out = ranker.get("validation_users")
    stopped = (
        f"boosting stopped when the NDCG@10 of {held_out} held-out users stopped rising"
        if held_out
        else "too few users to hold some out and stop early"
    )
    return (
        f"<h2>The ranker</h2><p>LightGBM lambdarank, {ranker['rounds']} rounds ({stopped}), learned from "
        f"{ranker['users']} users' "
        f"{ranker['examples']} candidates ({ranker['positives']} satisfying watches; the candidates held "
        f"{ranker['candidate_recall']:.0%} of those users' satisfying watches).</p>"
        f"<table><tr><th>feature</th><th>share of the gain</th></tr>{rows}</table>"
    )


def _tuning_html(tuning: list[dict] | None) -> str:
    if not tuning:
        return "<h2>Tuning</h2><p>Not tuned: the parameters are the defaults or the ones given.</p>"
    key = _tuning_key(tuning)
    best = max(tuning, key=lambda entry: entry[key])
    rows = "".join(
        f"<tr{' class=best' if entry is best else ''}><td>{entry['trial']}</td>"
        f"<td>{entry[key]:.4f}</td><td style='text-align:left'>{html.escape(_compact(entry))}</td></tr>"
        for entry in tuning
    )
    return (
        f"<h2>Tuning ({len(tuning)} trials, best: trial {best['trial']})</h2>"
        f"<table><tr><th>trial</th><th>{key}</th><th>parameters</th></tr>{rows}</table>"
    )


def _tuning_key(tuning: list[dict]) -> str:
    return next(name for name in tuning[0] if name.startswith("validation_"))


def _compact(entry: dict) -> str:
    parts = {**entry["params"], **{k: v for k, v in entry["confidence"].items() if k != "event_weights"}}
    parts |= {f"w[{name}]": weight for name, weight in entry["confidence"]["event_weights"].items()}
    return ", ".join(f"{name}={value}" for name, value in parts.items())


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2)
