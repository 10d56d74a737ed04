"""The backtest report as one self-contained HTML file: summary tables and matplotlib charts
embedded as inline SVG (no network, no files beside it). With two models, every chart draws
both and the tables put them side by side.

Input is the JSON document of :func:`leadscore.services.backtest.report_json`, so a report can
also be rebuilt from a saved ``--format json`` answer.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

COLOURS = ("#1f6feb", "#d9480f")
CHARTS = ("gains", "lift", "calibration", "groups")


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "leadscore"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figure(width: float = 6.0, height: float = 3.6) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def gains_chart(models: list[dict[str, Any]]) -> str:
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="#888", linestyle="--", label="random")
    for colour, model in zip(COLOURS, models, strict=False):
        total = sum(d["rows"] for d in model["deciles"])
        shares, done = [0.0], 0
        for decile in model["deciles"]:
            done += decile["rows"]
            shares.append(done / total)
        axes.plot(shares, [0.0, *(d["cumulative_gain"] for d in model["deciles"])], marker="o", color=colour,
                  label=f"{model['model']} (AUC {model['auc']:.3f})")
    axes.set(xlabel="share of contacts, best scores first", ylabel="share of conversions found", title="Cumulative gains")
    axes.legend(loc="lower right", fontsize=8)
    return _svg(figure)


def lift_chart(models: list[dict[str, Any]]) -> str:
    figure = _figure()
    axes = figure.add_subplot()
    width = 0.8 / len(models)
    for index, (colour, model) in enumerate(zip(COLOURS, models, strict=False)):
        xs = [d["decile"] + (index - (len(models) - 1) / 2) * width for d in model["deciles"]]
        axes.bar(xs, [d["lift"] for d in model["deciles"]], width=width, color=colour, label=model["model"])
    axes.axhline(1.0, color="#888", linestyle="--", linewidth=1)
    axes.set(xlabel="decile (1 = highest scores)", ylabel="lift over the average rate", title="Lift by decile",
             xticks=range(1, 11))
    axes.legend(fontsize=8)
    return _svg(figure)


def calibration_chart(models: list[dict[str, Any]]) -> str:
    figure = _figure()
    axes = figure.add_subplot()
    for colour, model in zip(COLOURS, models, strict=False):
        bins = model["calibration"]
        axes.plot([b["mean_predicted"] * 100 for b in bins], [b["observed_rate"] for b in bins], marker="o", color=colour,
                  label=model["model"])
    axes.set(xlabel="score at the cutoff (bands of 10 points, mean)", ylabel="conversion rate in the window",
             title="Conversion rate by score band", xlim=(0, 100))
    axes.legend(fontsize=8)
    return _svg(figure)


def groups_chart(models: list[dict[str, Any]]) -> str:
    figure = _figure(9.0, 3.4)
    for position, (key, title) in enumerate((("by_grade", "Conversion rate by fit grade"),
                                             ("by_temperature", "Conversion rate by temperature"))):
        axes = figure.add_subplot(1, 2, position + 1)
        width = 0.8 / len(models)
        for index, (colour, model) in enumerate(zip(COLOURS, models, strict=False)):
            groups = model[key]
            xs = [g + (index - (len(models) - 1) / 2) * width for g in range(len(groups))]
            axes.bar(xs, [group["rate"] or 0.0 for group in groups], width=width, color=colour, label=model["model"])
        axes.set_xticks(range(len(models[0][key])), [group["label"] for group in models[0][key]])
        axes.set(title=title, ylabel="conversion rate")
        axes.legend(fontsize=8)
    return _svg(figure)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _summary(models: list[dict[str, Any]]) -> str:
    rows = [
        ("contacts scored", lambda m: f"{m['contacts']:,}"),
        ("converted in the window", lambda m: f"{m['converted']:,} ({_percent(m['conversion_rate'])})"),
        ("already converted at the cutoff (left out)", lambda m: f"{m['already_converted']:,}"),
        ("AUC", lambda m: f"{m['auc']:.3f}"),
        ("lift of the top decile", lambda m: f"{m['lift_top_decile']:.2f}"),
        ("MQL threshold", lambda m: f"{m['mql_threshold']['threshold']:g} — {m['mql_threshold']['source']}"),
        ("selected at the threshold", lambda m: f"{m['mql_threshold']['selected']:,} ({_percent(m['mql_threshold']['share_selected'])})"),
        ("precision at the threshold", lambda m: _percent(m["mql_threshold"]["precision"])),
        ("recall at the threshold", lambda m: _percent(m["mql_threshold"]["recall"])),
    ]
    head = "".join(f"<th>{html.escape(m['model'])}</th>" for m in models)
    body = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{html.escape(cell(m))}</td>" for m in models) + "</tr>"
                   for name, cell in rows)
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def _deciles(model: dict[str, Any]) -> str:
    head = "<tr><th>decile</th><th>contacts</th><th>converted</th><th>rate</th><th>lift</th><th>cumulative gain</th><th>scores</th></tr>"
    body = "".join(
        f"<tr><td>{d['decile']}</td><td>{d['rows']:,}</td><td>{d['positives']:,}</td><td>{_percent(d['rate'])}</td>"
        f"<td>{d['lift']:.2f}</td><td>{_percent(d['cumulative_gain'])}</td><td>{d['min_score']:.1f}–{d['max_score']:.1f}</td></tr>"
        for d in model["deciles"])
    return f"<h3>Deciles — {html.escape(model['model'])}</h3><table>{head}{body}</table>"


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f5f5f5}.chart{display:inline-block;vertical-align:top;margin:0.5em}.warn{color:#b35900}
.chart svg{max-width:100%;height:auto}"""


def render(document: dict[str, Any]) -> str:
    """The whole HTML page of a backtest document."""
    models = document["models"]
    outcome = document["outcome"]
    what = " or ".join(filter(None, [f"reached {outcome['stage']} or later" if outcome["stage"] else None,
                                      f"event “{outcome['event']}”" if outcome["event"] else None]))
    names = " vs ".join(m["model"] for m in models)
    warnings = "".join(f"<p class='warn'>{html.escape(text)}</p>" for text in document["warnings"])
    charts = "".join(f"<div class='chart' id='chart-{name}'>{draw(models)}</div>" for name, draw in
                     zip(CHARTS, (gains_chart, lift_chart, calibration_chart, groups_chart), strict=True))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Backtest — {html.escape(names)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Backtest — {html.escape(names)}</h1>"
        f"<p>Scores as they were at <b>{html.escape(document['cutoff'])}</b> (events after it ignored); a conversion is "
        f"{html.escape(what)} within {document['window_days']:g} days after it (until {html.escape(document['window_end'])}).</p>"
        f"{warnings}<h2>Summary</h2>{_summary(models)}<h2>Charts</h2>{charts}"
        f"<h2>Deciles</h2>{''.join(_deciles(m) for m in models)}</body></html>"
    )


def write(document: dict[str, Any], path: Path) -> Path:
    """Write the report to ``path`` (UTF-8) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(document), encoding="utf-8")
    return path
