"""The progress display: a round's metrics shown generically, losses first; progress=True/callable/None."""

from __future__ import annotations

from fedtab.progress import metrics_text, progress_display


def test_every_metric_a_round_carries_is_shown_and_counts_are_not() -> None:
    record = {"round": 3.0, "parties": 2.0, "loss_g": 1.25, "loss_d": -0.5, "mmd": 0.031}
    assert metrics_text(record) == "loss_d -0.500  loss_g +1.250  mmd 0.031"


def test_a_count_a_model_reports_reads_as_a_count_without_a_sign() -> None:
    assert metrics_text({"loss_d": -0.078, "loss_g": 0.721, "steps": 16.0}) == "loss_d -0.078  loss_g +0.721  steps 16"


def test_progress_true_draws_a_bar_a_callable_is_itself_and_none_is_nothing(capsys) -> None:  # noqa: ANN001
    seen = []
    with progress_display(lambda *report: seen.append(report), 2) as callback:
        callback("training", 1, 2, {"loss_g": 1.0})
    assert seen == [("training", 1, 2, {"loss_g": 1.0})]
    with progress_display(None, 2) as callback:
        assert callback is None
    with progress_display(True, 2) as callback:
        callback("encoders", 1, 0, {})
        callback("training", 2, 2, {"loss_g": 0.5})
    drawn = capsys.readouterr().err
    assert "training rounds" in drawn and "loss_g +0.500" in drawn
