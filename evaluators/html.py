"""The report as one self-contained HTML page: plotly's JavaScript inlined once, no network at view time.

The first screen is for a data steward: one overall line and three coloured cards (fidelity,
utility, membership risk), each a word and a sentence, with the rule behind it in small print.
The figures and plots follow for whoever wants them: marginals, pair trends, utility, distances
to closest records, and the attacks' ROC curves. Everything is drawn from the report value alone,
so a report read back from JSON renders the same page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from fedtab.evaluators.report import EvaluationReport, PrivacyResult, UtilityResult, Verdict

COLOURS = {"green": "#1b7f3b", "amber": "#b26a00", "red": "#c62828", "grey": "#5f6b7a"}
TINTS = {"green": "#e8f5ec", "amber": "#fff4e0", "red": "#fdecec", "grey": "#eef1f4"}
ICONS = {"green": "✔", "amber": "!", "red": "✖", "grey": "?"}
REAL, SYNTHETIC, HOLDOUT = "#3b6fb6", "#e07b24", "#7a7a7a"
METRIC_NAMES = {"accuracy": "accuracy", "f1_positive": "F1, positive class", "macro_f1": "macro-F1", "roc_auc": "ROC-AUC", "r2": "R²", "mae": "MAE"}
MEASURES = (
    "<b>Membership risk</b>: <i>DCR share</i> — for each synthetic row, is its closest train row nearer than its closest "
    "holdout row (train sampled to the holdout's size)? 0.5 is ideal; a copy of train scores 0.5 + 0.5 × holdout/train. "
    "<i>NNDR</i> — closest over second-closest train distance; near 0 means a synthetic row singles out one real row. "
    "<i>Distance attack</i> — calls a row a member when a synthetic row lies close to it. <i>Density-ratio attack</i> "
    "(DOMIAS) — calls a row a member where the synthetic table is denser than real rows from the same population "
    "(Gaussian KDE in a 10-dimensional projection of the distance space). AUC 0.5 and TPR equal to FPR mean the attacks fail."
)
AREAS = {"fidelity": "Fidelity — does it look like the real data?", "utility": "Utility — can models learn from it?",
         "privacy": "Privacy — does it give away who was in the data?"}
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:28px;margin:0 0 4px} h2{font-size:21px;margin:36px 0 10px;border-bottom:1px solid #d9dde3;padding-bottom:6px}
.sub{color:#5f6b7a;font-size:14px;margin-bottom:18px}
.overall{border-radius:12px;padding:16px 22px;margin-bottom:18px;display:flex;align-items:center;gap:18px}
.overall .word{font-size:30px;font-weight:700} .overall .say{font-size:17px}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:16px}
.card{background:#fff;border-radius:12px;border-top:10px solid;padding:16px 18px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
.card .area{font-size:13px;color:#5f6b7a;text-transform:uppercase;letter-spacing:.04em}
.card .head{display:flex;align-items:center;gap:12px;margin:10px 0}
.icon{width:42px;height:42px;border-radius:50%;color:#fff;font-size:24px;font-weight:700;display:flex;align-items:center;justify-content:center;flex:none}
.card .word{font-size:25px;font-weight:700} .card p{font-size:15px;line-height:1.45;margin:6px 0}
.rule{font-size:12px;color:#5f6b7a;line-height:1.4}
table{border-collapse:collapse;background:#fff;font-size:14px;margin:8px 0}
td,th{border:1px solid #dde1e6;padding:5px 10px;text-align:left} th{background:#f0f2f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{font-size:13px;color:#5f6b7a;line-height:1.5} .plot{background:#fff;border-radius:8px;margin:10px 0;padding:4px}
"""


def render_html(report: EvaluationReport) -> str:
    body = "\n".join([
        _header(report),
        _verdicts(report),
        _key_figures(report),
        _fidelity_section(report),
        _utility_section(report.utility),
        _privacy_section(report.privacy),
        _ledger_section(report.ledger),
        _provenance_section(report),
        _method_section(report),
    ])
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>fedtab evaluation report</title>"
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body><main>{body}</main></body></html>"
    )


def _header(report: EvaluationReport) -> str:
    rows = report.rows
    parts = [f"{rows['real']:,} real rows", f"{rows['synthetic']:,} synthetic rows"]
    if rows.get("holdout"):
        parts.append(f"{rows['holdout']:,} holdout rows")
    if report.target:
        parts.append(f"target '{report.target}'")
    where = "central evaluation" if report.mode == "central" else f"federated evaluation over {report.parties} parties"
    parts += [where, report.created.replace("T", " ")]
    return f"<h1>Synthetic data evaluation</h1><div class='sub'>{_e(' · '.join(parts))}</div>"


def _verdicts(report: EvaluationReport) -> str:
    overall = report.verdict("overall")
    colour = overall.colour
    banner = (
        f"<div class='overall' style='background:{TINTS[colour]};border:2px solid {COLOURS[colour]}'>"
        f"<div class='icon' style='background:{COLOURS[colour]}'>{ICONS[colour]}</div>"
        f"<div><div class='word' style='color:{COLOURS[colour]}'>{_e(overall.headline)}</div>"
        f"<div class='say'>{_e(overall.explanation)}</div></div></div>"
    )
    cards = "".join(_card(report.verdict(area)) for area in AREAS)
    return banner + f"<div class='cards'>{cards}</div>"


def _card(verdict: Verdict) -> str:
    colour = COLOURS[verdict.colour]
    return (
        f"<div class='card' style='border-top-color:{colour}'><div class='area'>{_e(AREAS[verdict.area])}</div>"
        f"<div class='head'><div class='icon' style='background:{colour}'>{ICONS[verdict.colour]}</div>"
        f"<div class='word' style='color:{colour}'>{_e(verdict.headline)}</div></div>"
        f"<p>{_e(verdict.explanation)}</p><div class='rule'>How we decide: {_e(verdict.rule)}</div></div>"
    )


def _key_figures(report: EvaluationReport) -> str:
    f, u, p = report.fidelity, report.utility, report.privacy
    rows = [
        ("Quality score (column shapes and pair trends)", f.quality_score, "1 is a perfect match"),
        ("Column shapes", f.column_shapes, "1 is a perfect match"),
        ("Column pair trends", f.column_pair_trends, f"independent columns would score {_n(f.pair_trends_independent)}"),
    ]
    if f.sdmetrics:
        rows.append(("SDMetrics QualityReport score", f.sdmetrics.get("quality_score"), "the same, with SDMetrics' own binning"))
    if u is not None:
        rows.append(("Relative utility (TSTR vs TRTR)", u.relative_utility, "1 means as useful as the real data"))
    if p is not None and p.has_holdout:
        rows += [
            ("Strongest membership attack, AUC", p.attack_auc, "0.5 is ideal (a coin flip)"),
            ("Share of synthetic rows closer to train than holdout", p.dcr_share, "0.5 is ideal"),
        ]
    if p is not None:
        rows.append(("Synthetic rows identical to a training row", p.exact_copies, "share of synthetic rows; 0 is ideal unless rows repeat naturally"))
    body = "".join(f"<tr><td>{_e(name)}</td><td class='num'>{_n(value)}</td><td>{_e(hint)}</td></tr>" for name, value, hint in rows)
    return f"<h2>Key figures</h2><table><tr><th>figure</th><th>value</th><th>reading</th></tr>{body}</table>"


def _fidelity_section(report: EvaluationReport) -> str:
    f = report.fidelity
    text = (
        f"<p class='note'>Source: {_e(f.source)}. Fed-TGAN's measures: average Jensen–Shannon distance over "
        f"categorical columns {_n(f.js_distance)}, average Wasserstein distance over min-max scaled numerical "
        f"columns {_n(f.wasserstein_distance)} (0 is a perfect match)."
        + "</p>" + _sdmetrics_note(f.sdmetrics)
    )
    return "<h2>Fidelity: columns one by one</h2>" + text + _marginals_plot(report) + _pairs_section(report)


def _sdmetrics_note(figures: Mapping[str, float]) -> str:
    if not figures:
        return "<p class='note'>SDMetrics' reports need the real rows in one place; this federated evaluation has the shared-bin figures only.</p>"
    return (
        f"<p class='note'>SDMetrics QualityReport (pair-trend thresholds 0): quality {_n(figures.get('quality_score'))}, column shapes "
        f"{_n(figures.get('column_shapes'))}, column pair trends {_n(figures.get('column_pair_trends'))} — it bins each table on its own "
        f"edges, so it reads a little lower than the shared-bin figures above. DiagnosticReport: {_n(figures.get('diagnostic_score'))} "
        f"(data validity {_n(figures.get('data_validity'))}, data structure {_n(figures.get('data_structure'))}).</p>"
    )


def _marginals_plot(report: EvaluationReport) -> str:
    marginals = list(report.fidelity.marginals)
    if not marginals:
        return ""
    scores = {c.column: c for c in report.fidelity.columns}
    cols = 3
    rows = math.ceil(len(marginals) / cols)
    titles = [f"{m['column']} · {scores[m['column']].metric.replace('Complement', '')} {_n(scores[m['column']].score)}" if m["column"] in scores else m["column"] for m in marginals]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=90 / (260 * rows), horizontal_spacing=0.06)
    for k, m in enumerate(marginals):
        r, c = k // cols + 1, k % cols + 1
        labels = [str(v) for v in m["labels"]] if m["kind"] == "categorical" else m["labels"]
        fig.add_trace(go.Bar(x=labels, y=m["real"], name="real", marker_color=REAL, opacity=0.75, showlegend=False), r, c)
        fig.add_trace(go.Bar(x=labels, y=m["synthetic"], name="synthetic", marker_color=SYNTHETIC, opacity=0.75, showlegend=False), r, c)
    fig.update_layout(barmode="group", bargap=0.1, height=260 * rows, margin=dict(l=40, r=20, t=60, b=40),
                      title=f"Share of rows per value or bin: <span style='color:{REAL}'>■ real</span> vs <span style='color:{SYNTHETIC}'>■ synthetic</span>")
    fig.update_xaxes(tickfont=dict(size=9))
    fig.update_annotations(font_size=12)
    return _plot(fig)


def _pairs_section(report: EvaluationReport) -> str:
    f = report.fidelity
    names = list(report.columns)
    if not f.pairs:
        return ""
    index = {n: i for i, n in enumerate(names)}
    size = len(names)
    z = [[None] * size for _ in range(size)]
    hover = [[""] * size for _ in range(size)]
    for p in f.pairs:
        if p.column_1 not in index or p.column_2 not in index:
            continue
        i, j = index[p.column_1], index[p.column_2]
        gap = None if p.score is None or not math.isfinite(p.score) else 1 - p.score
        z[j][i] = gap
        corr = f"<br>real r {_n(p.real_correlation)}, synthetic r {_n(p.synthetic_correlation)}" if p.real_correlation is not None else ""
        hover[j][i] = f"{p.column_1} × {p.column_2}<br>{p.metric} {_n(p.score)}{corr}"
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, text=hover, hoverinfo="text", colorscale=[[0, "#f4f8f4"], [0.3, "#f2c14e"], [1, "#c62828"]],
                               zmin=0, zmax=0.3, colorbar=dict(title="1 − score")))
    fig.update_layout(height=560, margin=dict(l=120, r=20, t=50, b=120), yaxis=dict(autorange="reversed"),
                      title="Where relationships between columns differ (darker = bigger difference)")
    text = (
        f"<p class='note'>Column pair trends {_n(f.column_pair_trends)}; a table with the real columns but no relationships "
        f"between them would score {_n(f.pair_trends_independent)}. Pairs of numbers compare Pearson correlations; other pairs "
        "compare their joint frequencies (numbers in 10 bins).</p>"
    )
    return "<h2>Fidelity: columns in pairs</h2>" + text + _plot(fig)


def _utility_section(utility: UtilityResult | None) -> str:
    if utility is None:
        return "<h2>Utility</h2><p class='note'>Not assessed: pass a target column and holdout rows.</p>"
    metrics = list(utility.models[0].tstr) if utility.models else []
    head = "".join(f"<th>{_e(METRIC_NAMES.get(m, m))}<br>TSTR</th><th>{_e(METRIC_NAMES.get(m, m))}<br>TRTR</th>" for m in metrics)
    body = "".join(
        "<tr><td>" + _e(m.model) + "</td>" + "".join(f"<td class='num'>{_n(m.tstr.get(k))}</td><td class='num'>{_n(m.trtr.get(k))}</td>" for k in metrics) + "</tr>"
        for m in utility.models
    )
    fig = go.Figure([
        go.Bar(x=[m.model for m in utility.models], y=[m.trtr.get(utility.primary_metric) for m in utility.models], name="trained on real (TRTR)", marker_color=REAL),
        go.Bar(x=[m.model for m in utility.models], y=[m.tstr.get(utility.primary_metric) for m in utility.models], name="trained on synthetic (TSTR)", marker_color=SYNTHETIC),
    ])
    fig.update_layout(barmode="group", height=340, title=f"{METRIC_NAMES[utility.primary_metric]} on {utility.test_rows:,} real holdout rows",
                      margin=dict(l=50, r=20, t=50, b=40))
    positive = f" Positive class: '{_e(utility.positive_class)}'." if utility.positive_class else ""
    note = (
        f"<p class='note'>Task: {_e(utility.task)} of '{_e(utility.target)}'.{positive} Relative utility "
        f"{_n(utility.relative_utility)}. {_e(utility.trtr_note)}</p>"
    )
    return f"<h2>Utility: train on synthetic, test on real</h2>{note}<table><tr><th>model</th>{head}</tr>{body}</table>" + _plot(fig)


def _ledger_section(ledger: Mapping[str, Any] | None) -> str:
    """The privacy budget the run spent, per party and mechanism, as its ledger recorded it."""
    if ledger is None:
        return "<h2>Differential privacy</h2><p class='note'>The generator was trained without differential privacy.</p>"
    from fedtab.privacy.ledger import PrivacyLedger

    lines = "".join(f"<li>{_e(line.strip())}</li>" for line in PrivacyLedger.from_dict(ledger).summary_lines())
    return f"<h2>Differential privacy</h2><ul>{lines}</ul>"


def _provenance_section(report: EvaluationReport) -> str:
    """Where each figure comes from: a DP release, the synthetic table alone, or exact real rows."""
    lines = "".join(f"<li>{_e(line)}</li>" for line in report.provenance())
    return f"<h2>Where these figures come from</h2><ul>{lines}</ul>"


def _privacy_section(privacy: PrivacyResult | None) -> str:
    if privacy is None or not privacy.has_holdout:
        copies = "" if privacy is None else f" {privacy.exact_copies:.2%} of synthetic rows are identical to a training row."
        return f"<h2>Membership risk</h2><p class='note'>Not assessed: pass holdout rows.{_e(copies)}</p>"
    rows = [
        ("share of synthetic rows closer to train than to holdout (0.5 ideal)", privacy.dcr_share),
        ("median distance to closest train row", privacy.dcr_train_median),
        ("median distance to closest holdout row", privacy.dcr_holdout_median),
        ("nearest-neighbour distance ratio vs train (mean)", privacy.nndr_train),
        ("nearest-neighbour distance ratio vs holdout (mean)", privacy.nndr_holdout),
        ("exact copies of a train row (equal-size sample)", privacy.exact_train_share),
        ("exact copies of a holdout row (natural duplicates)", privacy.exact_holdout_share),
        ("synthetic rows identical to any train row", privacy.exact_copies),
    ]
    rows += [(f"{a.name}: AUC / TPR at 1% FPR / TPR at 0.1% FPR", f"{_n(a.auc)} / {_n(a.tpr_at_1pct_fpr)} / {_n(a.tpr_at_01pct_fpr)}") for a in privacy.attacks]
    table = "".join(f"<tr><td>{_e(name)}</td><td class='num'>{value if isinstance(value, str) else _n(value)}</td></tr>" for name, value in rows)
    note = (
        f"<p class='note'>{privacy.synthetic_rows:,} synthetic rows; {privacy.attack_rows:,} train rows and as many holdout rows "
        "form the equal-size sets. The attacks try to tell train rows (members) from holdout rows (non-members) "
        "using only the synthetic table; a curve on the diagonal means they cannot.</p>"
    )
    return "<h2>Membership risk</h2>" + note + f"<table>{table}</table>" + _dcr_plot(privacy) + _roc_plot(privacy)


def _dcr_plot(privacy: PrivacyResult) -> str:
    edges = privacy.dcr_edges
    centres = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])]
    train_total, holdout_total = max(sum(privacy.dcr_train_counts), 1), max(sum(privacy.dcr_holdout_counts), 1)
    fig = go.Figure([
        go.Bar(x=centres, y=[c / train_total for c in privacy.dcr_train_counts], name="to closest train row", marker_color=SYNTHETIC, opacity=0.7),
        go.Bar(x=centres, y=[c / holdout_total for c in privacy.dcr_holdout_counts], name="to closest holdout row", marker_color=HOLDOUT, opacity=0.7),
    ])
    fig.update_layout(barmode="overlay", height=340, title="Distance of each synthetic row to its closest real row (a spike at 0 means copies)",
                      xaxis_title="distance", yaxis_title="share of synthetic rows", margin=dict(l=60, r=20, t=50, b=50))
    return _plot(fig)


def _roc_plot(privacy: PrivacyResult) -> str:
    fig = go.Figure()
    grid = [10 ** (k / 10) for k in range(-40, 1)]
    fig.add_trace(go.Scatter(x=grid, y=grid, name="chance", line=dict(color="#999", dash="dash")))
    for attack, colour in zip(privacy.attacks, ("#c62828", "#6a3fb5")):
        fig.add_trace(go.Scatter(x=attack.roc_fpr, y=attack.roc_tpr, name=f"{attack.name} (AUC {_n(attack.auc)})", line=dict(color=colour)))
    fig.update_layout(height=420, title="Membership attacks: ROC (log scale shows the low false-positive region)",
                      xaxis=dict(type="log", title="false-positive rate (non-members wrongly called members)", range=[-4, 0],
                                 tickvals=[1e-4, 1e-3, 1e-2, 1e-1, 1], ticktext=["0.01%", "0.1%", "1%", "10%", "100%"]),
                      yaxis=dict(title="true-positive rate (members caught)", range=[0, 1.02]),
                      margin=dict(l=60, r=20, t=50, b=50))
    return _plot(fig)


def _method_section(report: EvaluationReport) -> str:
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
    notes = "".join(f"<li>{_e(n)}</li>" for n in report.notes)
    rules = "".join(f"<li><b>{_e(v.area)}</b>: {_e(v.rule)}</li>" for v in report.verdicts)
    return (
        "<h2>How this was computed</h2><div class='note'><p><b>Distance between rows</b>: " + _e(report.distance) + "</p>"
        f"<p>{MEASURES}</p>"
        f"<p><b>Thresholds</b></p><ul>{rules}</ul>" + (f"<p><b>Notes</b></p><ul>{notes}</ul>" if notes else "")
        + f"<p>Seed {report.seed}. Time: {_e(timings)}.</p></div>"
    )


def _plot(fig: go.Figure) -> str:
    fig.update_layout(template="plotly_white", font=dict(size=12))
    return "<div class='plot'>" + fig.to_html(full_html=False, include_plotlyjs=False, config={"displayModeBar": False, "responsive": True}) + "</div>"


def _n(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _e(text: object) -> str:
    return html.escape(str(text))
