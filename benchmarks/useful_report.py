"""The useful-tables benchmark's Markdown: one row per contender, a summary per table with issue 9's
targets marked met / not met, and the section swap that leaves a results file's other sections alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLUMNS = (("quality", "quality", 3), ("shapes", "shapes", 3), ("pairs", "pairs", 3), ("worst TV", "worst_tv", 3),
           ("worst TV column", "worst_tv_column", None), ("TSTR AUC GB", "tstr_auc_gb", 3), ("TSTR F1 GB", "tstr_f1_gb", 3),
           ("TSTR AUC LR", "tstr_auc_lr", 3), ("TSTR F1 LR", "tstr_f1_lr", 3), ("TRTR AUC GB / LR", None, 3),
           ("zeros cap. gain", "capital_gain_zeros", 3), ("fit s", "fit_s", 0), ("encoders s", "encoders_s", 1),
           ("training s", "training_s", 0), ("sample rows/s", "sample_rows_per_s", 0), ("peak RSS MB", "peak_rss_mb", 0),
           ("wall s (with scoring)", "wall_s", 0), ("CPU s", "cpu_s", 0))
SDV_FAMILY = {"ctgan": "SDV CTGAN", "tvae": "SDV TVAE"}
QUALITY_TARGET, TSTR_TARGET, TV_TARGET, ZEROS_POINTS, SPEED_TARGET = 0.90, 0.87, 0.90, 3.0, 5.0


def describe(table: str, run: str) -> dict:
    """Model, split and seed of a run spec (``fedtab:tvae:dirichlet:1``, ``sdv:ctgan``), for rows that failed too."""
    family, model, *rest = run.split(":")
    if family == "sdv":
        return {"table": table, "run": run, "model": SDV_FAMILY[model], "split": "central", "seed": "—"}
    return {"table": table, "run": run, "model": f"fedtab {model}", "split": rest[0], "seed": rest[1]}


def _cell(value: object, digits: int | None) -> str:
    if isinstance(value, str):
        return value or "—"
    if value is None or not np.isfinite(value):
        return "—"
    return f"{value:,.{digits}f}"


def table_text(results: list[dict]) -> str:
    """One row per contender; a failed one says so, with its error's last line, in the note column."""
    head = ["table", "model", "split", "seed", *(c[0] for c in COLUMNS), "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["table"], r["model"], r["split"], str(r["seed"])]
        for _, key, digits in COLUMNS:
            if key is None:
                cells.append(f"{r['trtr_auc_gb']:.3f} / {r['trtr_auc_lr']:.3f}" if "trtr_auc_gb" in r else "—")
            else:
                cells.append(_cell(r.get(key), digits))
        lines.append("| " + " | ".join(cells) + " | " + r.get("note", "") + " |")
    return "\n".join(lines)


def _mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and np.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def _verdict(ok: bool | None) -> str:
    return "n/a (rows missing)" if ok is None else ("**met**" if ok else "**not met**")


def _compare(a: float, b: float, at_least: bool = True) -> bool | None:
    if not (np.isfinite(a) and np.isfinite(b)):
        return None
    return bool(a >= b) if at_least else bool(a <= b)


def summary(results: list[dict], table: str, real_zeros: float | None = None) -> str:
    """Per model: the mean over its Dirichlet rows (SDV: its central row), then issue 9's targets."""
    rows = [r for r in results if r["table"] == table and "quality" in r]
    models = sorted({r["model"] for r in results if r["table"] == table}, key=lambda m: (m.startswith("SDV"), m))
    means: dict[str, dict] = {}
    for model in models:
        own = [r for r in rows if r["model"] == model and r["split"] in ("dirichlet", "central")]
        means[model] = {k: _mean(own, k) for k in ("quality", "tstr_auc_gb", "tstr_auc_lr", "fit_s", "worst_tv",
                                                   "sample_rows_per_s")}
        means[model]["n"] = len(own)
    lines = [f"**{table}: mean over the Dirichlet split seeds per model (SDV: central)**", "",
             "| model | rows | quality | TSTR AUC GB | TSTR AUC LR | worst TV | fit s |", "|---|---|---|---|---|---|---|"]
    for model, m in means.items():
        lines.append(f"| {model} | {m['n']} | " + " | ".join(_cell(m[k], 0 if k == 'fit_s' else 3)
                     for k in ("quality", "tstr_auc_gb", "tstr_auc_lr", "worst_tv", "fit_s")) + " |")
    return "\n".join([*lines, "", *_targets(rows, means, table, real_zeros)])


def _targets(rows: list[dict], means: dict[str, dict], table: str, real_zeros: float | None) -> list[str]:
    fedtab = [m for m in means if m.startswith("fedtab")]
    if not any(means[m]["n"] for m in fedtab):
        return ["Targets: no fedtab row yet."]
    best = max(fedtab, key=lambda m: (np.nan_to_num(means[m]["quality"], nan=-1), np.nan_to_num(means[m]["tstr_auc_gb"], nan=-1)))
    b = means[best]
    worst = min((r for r in rows if r["model"] == best), key=lambda r: r.get("worst_tv", 1.0))
    out = [f"Targets (better fedtab model by Dirichlet-mean quality: {best}):", ""]
    if table == "adult":
        out.append(f"- quality ≥ {QUALITY_TARGET} and TSTR ROC-AUC (GB) ≥ {TSTR_TARGET}: {b['quality']:.3f} / "
                   f"{b['tstr_auc_gb']:.3f} — {_verdict(_compare(b['quality'], QUALITY_TARGET) and _compare(b['tstr_auc_gb'], TSTR_TARGET))}")
        for model in fedtab:
            family = SDV_FAMILY.get(model.split()[-1])
            if family is None:
                continue
            m, s = means[model], means.get(family, {"quality": np.nan, "tstr_auc_gb": np.nan, "fit_s": np.nan})
            ok = _compare(m["quality"], s["quality"]) and _compare(m["tstr_auc_gb"], s["tstr_auc_gb"])
            out.append(f"- {model} ≥ {family} central on quality and TSTR: {m['quality']:.3f} / {m['tstr_auc_gb']:.3f} "
                       f"against {s['quality']:.3f} / {s['tstr_auc_gb']:.3f} — {_verdict(ok)}")
            if family == "SDV TVAE":
                out.append(f"- fedtab TVAE's whole fit ≤ SDV TVAE's: {m['fit_s']:,.0f} s against {s['fit_s']:,.0f} s — "
                           f"{_verdict(_compare(m['fit_s'], s['fit_s'], at_least=False))}")
    sdv_rate = means.get("SDV CTGAN", {}).get("sample_rows_per_s", np.nan)
    out.append(f"- sampling ≥ {SPEED_TARGET:.0f}× SDV CTGAN's rows/s for {best}: {b['sample_rows_per_s']:,.0f} against "
               f"{sdv_rate:,.0f} — {_verdict(_compare(b['sample_rows_per_s'], SPEED_TARGET * sdv_rate))}")
    out.append(f"- every categorical column's TVComplement ≥ {TV_TARGET} for {best} (worst over its rows on every split): "
               f"{worst.get('worst_tv', float('nan')):.3f} ({worst.get('worst_tv_column', '')}, {worst['split']} "
               f"seed {worst['seed']}) — {_verdict(_compare(worst.get('worst_tv', np.nan), TV_TARGET))}")
    zeros = [r["capital_gain_zeros"] for r in rows if r["model"] == best and "capital_gain_zeros" in r]
    if zeros and real_zeros is not None:
        far = max(zeros, key=lambda z: abs(z - real_zeros))
        out.append(f"- capital gain's zeros within {ZEROS_POINTS:.0f} points of real {100 * real_zeros:.1f} % for {best} "
                   f"(farthest row): {100 * far:.1f} % — {_verdict(abs(far - real_zeros) * 100 <= ZEROS_POINTS)}")
    return out


def replace_section(path: Path, marker: str, text: str) -> None:
    """Write ``text`` (which starts with ``marker``) in place of the file's section under ``marker``.

    The section runs from its ``## `` heading to the next ``## `` heading; every other section stays
    byte for byte. A file without the section gets it appended.
    """
    previous = path.read_text() if path.exists() else ""
    before, found, after = previous.partition(marker)
    if not found:
        path.write_text(previous.rstrip() + ("\n\n" if previous.strip() else "") + text.strip() + "\n")
        return
    rest = after.split("\n## ", 1)[1] if "\n## " in after else None
    path.write_text(before + text.strip() + "\n" + (f"\n## {rest}" if rest is not None else ""))
