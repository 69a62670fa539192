"""The attribution summary as a page: a table per variant, the verdicts, and two PNG charts beside it."""

from __future__ import annotations

import html
from pathlib import Path

CHARTS = ("take-rate.png", "take-rate-by-position.png")


def write_html(summary: dict, out: Path) -> list[Path]:
    """attribution.html, and its charts when matplotlib is installed (offline extra); the paths written."""
    charted = _charts(summary, out)
    page = out / "attribution.html"
    page.write_text(_page(summary, charted))
    return [page, *charted]


def _page(summary: dict, charts: list[Path]) -> str:
    options = summary["options"]
    rows = "".join(
        "<tr><td>{}</td><td>{:,}</td><td>{:,}</td>{}<td>{:.1%}</td><td>{}</td></tr>".format(
            html.escape(name),
            figures["lists"],
            figures["users"],
            "".join(
                f"<td>{_number(figures[rate]['value'])} ({_number(figures[rate]['low'])}–"
                f"{_number(figures[rate]['high'])})</td>"
                for rate in ("take_rate", "satisfying_take_rate", "minutes_per_1000_lists")
            ),
            figures["catalogue_coverage"],
            "–" if figures["fresh_share"] is None else f"{figures['fresh_share']:.1%}",
        )
        for name, figures in summary["variants"].items()
    )
    verdicts = "".join(
        f"<li><b>{html.escape(name)}</b>: {verdict['verdict']}, take rate "
        f"{verdict['relative_difference']['value']:+.1%} ({verdict['relative_difference']['low']:+.1%} to "
        f"{verdict['relative_difference']['high']:+.1%}), p = {verdict['p_value']:.3f}; this sample detects "
        f"±{verdict['detectable_relative_difference']:.1%}</li>"
        for name, verdict in summary["verdicts"].items()
    )
    images = "".join(f'<p><img src="{path.name}" alt="{path.stem}"></p>' for path in charts)
    capture = summary["capture"]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Attribution against {html.escape(summary["control"])}</title>
<style>body{{font-family:sans-serif;max-width:60em}}td,th{{padding:.2em .6em;text-align:right}}</style></head>
<body><h1>Which variant viewers prefer</h1>
<p>Control <b>{html.escape(summary["control"])}</b>; a take is a watch of a listed video within
{options["window_hours"]:g} hours; 95% bootstrap intervals over users ({options["replicates"]} resamplings),
significance {options["significance"]:g}.</p>
<h2>Verdicts on the take rate</h2><ul>{verdicts or "<li>no other variant</li>"}</ul>
<h2>Per variant</h2>
<table><tr><th>variant</th><th>lists</th><th>users</th><th>take rate</th><th>satisfying take rate</th>
<th>minutes / 1,000 lists</th><th>coverage</th><th>fresh uploads</th></tr>{rows}</table>
{images}
<p>Capture records {capture["records"]:,}: {capture["bad_records"]:,} not capture records,
{capture["unreadable_bodies"]:,} with bodies the server would not read. Events read {summary["events"]["read"]:,};
matched by recommendation id {summary["events"]["matched_by_recommendation_id"]:,}, by user and video
{summary["events"]["matched_by_user_and_video"]:,}.</p>
</body></html>
"""


def _number(value: float) -> str:
    return f"{value:.4g}"


def _charts(summary: dict, out: Path) -> list[Path]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return []
    names = list(summary["variants"])
    rates = [summary["variants"][name]["take_rate"] for name in names]
    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    values = [rate["value"] for rate in rates]
    errors = [[rate["value"] - rate["low"] for rate in rates], [rate["high"] - rate["value"] for rate in rates]]
    axes.bar(names, values, yerr=errors, capsize=6, color="#4c72b0")
    axes.set_ylabel("take rate (95% interval)")
    figure.tight_layout()
    figure.savefig(out / CHARTS[0], format="png", metadata={"Software": None})
    figure = Figure(figsize=(6, 3.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name in names:
        by_position = summary["variants"][name]["take_rate_by_position"]
        axes.plot(range(1, len(by_position) + 1), by_position, marker="o", label=name)
    axes.set_xlabel("position in the list")
    axes.set_ylabel("share of items taken")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / CHARTS[1], format="png", metadata={"Software": None})
    return [out / name for name in CHARTS]
