"""Headline verdicts per area, from thresholds declared once here and quoted in every report.

The thresholds are judgement, stated so a reader can disagree with them:

- fidelity: *good* when column shapes ≥ 0.90 and column pair trends ≥ 0.95; *fair* when ≥ 0.80
  and ≥ 0.85; *poor* below. Pair trends no better than a table whose columns are independent
  (plus 0.01) cap the verdict at *fair*: the relationships are gone.
- utility: relative utility (TSTR above chance over TRTR above chance, mean over models) ≥ 0.90
  *good*, ≥ 0.70 *fair*, below *poor*.
- membership risk: *high* when any of: strongest attack AUC ≥ 0.60, share of synthetic rows
  closer to train than holdout ≥ 0.60, attack TPR at 1 % FPR ≥ 0.10, exact copies of train rows
  exceeding copies of holdout rows by ≥ 1 % of the synthetic rows; *medium* at AUC ≥ 0.55,
  share ≥ 0.53, TPR ≥ 0.03 or excess copies ≥ 0.1 %; *low* otherwise. Without a holdout the risk
  is *not assessed*: nothing tells a copy from a row that also occurs in the population.
"""

from __future__ import annotations

import math

from fedtab.evaluators.report import FidelityResult, PrivacyResult, UtilityResult, Verdict

FIDELITY_GOOD = {"column_shapes": 0.90, "column_pair_trends": 0.95}
FIDELITY_FAIR = {"column_shapes": 0.80, "column_pair_trends": 0.85}
INDEPENDENCE_MARGIN = 0.01
UTILITY_GOOD = 0.90
UTILITY_FAIR = 0.70
RISK_HIGH = {"attack_auc": 0.60, "dcr_share": 0.60, "tpr_at_1pct_fpr": 0.10, "excess_copies": 0.01}
RISK_MEDIUM = {"attack_auc": 0.55, "dcr_share": 0.53, "tpr_at_1pct_fpr": 0.03, "excess_copies": 0.001}

FIGURE_NAMES = {
    "attack_auc": "membership attack AUC",
    "dcr_share": "share closer to train than holdout",
    "tpr_at_1pct_fpr": "attack TPR at 1% FPR",
    "excess_copies": "excess exact copies",
}
COLOURS = {"good": "green", "low": "green", "fair": "amber", "medium": "amber", "poor": "red", "high": "red", "not assessed": "grey"}

FIDELITY_RULE = (
    f"good: column shapes ≥ {FIDELITY_GOOD['column_shapes']:.2f} and column pair trends ≥ "
    f"{FIDELITY_GOOD['column_pair_trends']:.2f}; fair: ≥ {FIDELITY_FAIR['column_shapes']:.2f} and ≥ "
    f"{FIDELITY_FAIR['column_pair_trends']:.2f}; poor below. Pair trends within {INDEPENDENCE_MARGIN} of "
    "a table with independent columns cap the verdict at fair."
)
UTILITY_RULE = (
    f"relative utility = (TSTR − chance) / (TRTR − chance) on the primary metric, mean over 3 models; "
    f"good ≥ {UTILITY_GOOD:.2f}, fair ≥ {UTILITY_FAIR:.2f}, poor below."
)
PRIVACY_RULE = (
    f"high if attack AUC ≥ {RISK_HIGH['attack_auc']:.2f}, or DCR share ≥ {RISK_HIGH['dcr_share']:.2f}, or TPR at 1% FPR ≥ "
    f"{RISK_HIGH['tpr_at_1pct_fpr']:.2f}, or excess exact copies ≥ {RISK_HIGH['excess_copies']:.0%}; medium at "
    f"{RISK_MEDIUM['attack_auc']:.2f} / {RISK_MEDIUM['dcr_share']:.2f} / {RISK_MEDIUM['tpr_at_1pct_fpr']:.2f} / "
    f"{RISK_MEDIUM['excess_copies']:.1%}; low otherwise (ideal: AUC 0.50, share 0.50, TPR 0.01)."
)


def fidelity_verdict(result: FidelityResult) -> Verdict:
    shapes, pairs = result.column_shapes, result.column_pair_trends
    if math.isnan(shapes):
        return _verdict("fidelity", "not assessed", "Fidelity not assessed", "No column could be compared.", FIDELITY_RULE)
    pairs = 1.0 if math.isnan(pairs) else pairs
    if shapes >= FIDELITY_GOOD["column_shapes"] and pairs >= FIDELITY_GOOD["column_pair_trends"]:
        level = "good"
    elif shapes >= FIDELITY_FAIR["column_shapes"] and pairs >= FIDELITY_FAIR["column_pair_trends"]:
        level = "fair"
    else:
        level = "poor"
    lost = len(result.pairs) > 0 and pairs <= result.pair_trends_independent + INDEPENDENCE_MARGIN
    if lost and level == "good":
        level = "fair"
    return _verdict("fidelity", level, f"{level.capitalize()} fidelity", _fidelity_words(level, shapes, pairs, lost), FIDELITY_RULE)


def utility_verdict(result: UtilityResult | None, reason: str) -> Verdict:
    if result is None or math.isnan(result.relative_utility):
        why = reason if result is None else (
            f"Even models trained on the real rows barely predict '{result.target}' (less than 0.05 above chance), so there is no yardstick."
        )
        return _verdict("utility", "not assessed", "Utility not assessed", why, UTILITY_RULE)
    value = result.relative_utility
    level = "good" if value >= UTILITY_GOOD else "fair" if value >= UTILITY_FAIR else "poor"
    words = {
        "good": f"Models trained on the synthetic table predict '{result.target}' about as well as models trained on the real rows.",
        "fair": f"Models trained on the synthetic table predict '{result.target}' noticeably worse than models trained on the real rows.",
        "poor": f"Models trained on the synthetic table predict '{result.target}' much worse than models trained on the real rows; do not train models on it.",
    }[level]
    return _verdict("utility", level, f"{level.capitalize()} utility", f"{words} Relative utility {value:.2f}.", UTILITY_RULE)


def privacy_verdict(result: PrivacyResult | None) -> Verdict:
    if result is None or not result.has_holdout:
        copies = "" if result is None else f" {result.exact_copies:.1%} of synthetic rows are identical to a training row."
        why = "Membership risk needs real rows that the generator never saw (a holdout); pass one to assess it." + copies
        return _verdict("privacy", "not assessed", "Risk not assessed", why, PRIVACY_RULE)
    figures = _risk_figures(result)
    high = [f"{FIGURE_NAMES[name]} {value:.3f} ≥ {RISK_HIGH[name]}" for name, value in figures.items() if value >= RISK_HIGH[name]]
    medium = [f"{FIGURE_NAMES[name]} {value:.3f} ≥ {RISK_MEDIUM[name]}" for name, value in figures.items() if value >= RISK_MEDIUM[name]]
    if high:
        level, words, triggers = "high", "The synthetic table gives away who was in the training data: it copies or closely imitates real rows.", high
    elif medium:
        level, words, triggers = "medium", "The synthetic rows sit somewhat closer to the training rows than to unseen rows; an attacker gains a small edge.", medium
    else:
        level, words, triggers = "low", "An attacker holding the synthetic table could not tell who was in the training data better than chance.", []
    because = f" ({'; '.join(triggers)})" if triggers else ""
    return _verdict("privacy", level, f"{level.capitalize()} risk", words + because, PRIVACY_RULE)


def _risk_figures(result: PrivacyResult) -> dict[str, float]:
    return {
        "attack_auc": result.attack_auc or 0.5,
        "dcr_share": result.dcr_share if result.dcr_share is not None else 0.5,
        "tpr_at_1pct_fpr": result.attack_tpr_at_1pct_fpr or 0.0,
        "excess_copies": (result.exact_train_share or 0.0) - (result.exact_holdout_share or 0.0),
    }


def _fidelity_words(level: str, shapes: float, pairs: float, lost: bool) -> str:
    if level == "good":
        return f"Each column and the relationships between columns look like the real data (shapes {shapes:.2f}, pair trends {pairs:.2f})."
    if lost or (shapes >= FIDELITY_FAIR["column_shapes"] and pairs < shapes - 0.03):
        return f"Each column looks like the real data (shapes {shapes:.2f}), but the relationships between columns are largely lost (pair trends {pairs:.2f})."
    if level == "fair":
        return f"The synthetic table resembles the real data with visible differences (shapes {shapes:.2f}, pair trends {pairs:.2f})."
    return f"The synthetic table does not look like the real data (shapes {shapes:.2f}, pair trends {pairs:.2f})."


def _verdict(area: str, level: str, headline: str, explanation: str, rule: str) -> Verdict:
    return Verdict(area=area, level=level, headline=headline, colour=COLOURS[level], explanation=explanation, rule=rule)


def overall_verdict(fidelity: Verdict, utility: Verdict, privacy: Verdict) -> Verdict:
    """One line for the top of the report: can this table be shared, and is it worth sharing?"""
    rule = "Membership risk decides whether to share; fidelity and utility decide whether it is worth it."
    if privacy.level == "high":
        return _verdict("overall", "poor", "Not safe to share", "The synthetic table gives away who was in the training data. Do not release it; retrain with differential privacy or fewer epochs.", rule)
    if privacy.level == "not assessed":
        return _verdict("overall", "not assessed", "Risk unknown", "Evaluate again with holdout rows (real rows the generator never saw) before sharing this table.", rule)
    if privacy.level == "medium":
        return _verdict("overall", "fair", "Share with care", "Some membership signal remains; review the privacy section before releasing the table.", rule)
    if "poor" in (fidelity.level, utility.level):
        return _verdict("overall", "fair", "Safe, of limited use", "The table does not give away its training rows, but it reproduces the real data poorly; see below where.", rule)
    return _verdict("overall", "good", "Fit to share", "The table does not give away its training rows and resembles the real data.", rule)
