import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import load_party
from fedtab.models.conditional import ConditionalSampler
from fedtab.transformers import fit_plan


@pytest.fixture(scope="module")
def plan_and_data():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "colour": rng.choice(["red", "green", "blue"], size=600, p=[0.7, 0.25, 0.05]),
        "size": rng.choice(["s", "l"], size=600),
        "weight": rng.normal(50, 10, size=600),
    })
    table = load_party("p", frame)
    plan = fit_plan([table], seed=0)
    return plan, plan.encode(table.frame, np.random.default_rng(1)), frame


def decoded_category(plan, rows: np.ndarray, span_index: int) -> np.ndarray:
    span = plan.discrete_spans[span_index]
    return rows[:, span.start : span.start + span.dim].argmax(axis=1)


def test_real_rows_match_their_condition(plan_and_data):
    plan, data, _ = plan_and_data
    sampler = ConditionalSampler(plan, data)
    cond, mask, rows = sampler.sample_train(2000, np.random.default_rng(2))
    assert cond.shape == (2000, sampler.cond_dim) and mask.shape == (2000, sampler.num_columns)
    np.testing.assert_array_equal(cond.sum(axis=1), 1.0)
    for j in range(sampler.num_columns):
        chosen = mask[:, j] == 1
        asked = cond[chosen][:, sampler.cond_offsets[j] : sampler.cond_offsets[j] + sampler.dims[j]].argmax(axis=1)
        np.testing.assert_array_equal(decoded_category(plan, data[rows[chosen]], j), asked)


def test_training_conditions_follow_log_frequency_and_skip_absent_categories(plan_and_data):
    plan, data, _ = plan_and_data
    only_red = data[decoded_category(plan, data, 0) == int(np.argmax(plan.discrete_spans[0].counts))]
    sampler = ConditionalSampler(plan, only_red)
    cond, mask, _ = sampler.sample_train(3000, np.random.default_rng(3))
    colour_rows = mask[:, 0] == 1
    picked = cond[colour_rows][:, : sampler.dims[0]].sum(axis=0)
    assert np.count_nonzero(picked) == 1  # this party holds only one colour; it never conditions on the others


def test_generation_conditions_follow_global_frequencies(plan_and_data):
    plan, _, frame = plan_and_data
    sampler = ConditionalSampler(plan)
    cond, mask = sampler.sample_generation(20_000, np.random.default_rng(4))
    colour = cond[mask[:, 0] == 1][:, : sampler.dims[0]].sum(axis=0)
    expected = np.asarray(plan.discrete_spans[0].counts, dtype=float)
    np.testing.assert_allclose(colour / colour.sum(), expected / expected.sum(), atol=0.02)


def test_a_declared_target_takes_half_the_training_conditions_and_every_generation_condition(plan_and_data):
    plan, data, frame = plan_and_data
    sampler = ConditionalSampler(plan, data, target="size")
    target = sampler.target_index
    _, mask, _ = sampler.sample_train(4000, np.random.default_rng(5))
    assert abs(mask[:, target].mean() - 0.5) < 0.03
    assert mask[:, 1 - target].mean() > 0.45  # the other column keeps the rest
    cond, mask = sampler.sample_generation(20_000, np.random.default_rng(6))
    assert (mask[:, target] == 1).all()
    offset, dim = sampler.cond_offsets[target], sampler.dims[target]
    picked = cond[:, offset : offset + dim].sum(axis=0)
    expected = np.asarray(plan.discrete_spans[target].counts, dtype=float)
    np.testing.assert_allclose(picked / picked.sum(), expected / expected.sum(), atol=0.015)


def test_a_target_that_is_not_a_categorical_column_is_refused(plan_and_data):
    from fedtab.errors import ConfigError

    plan, data, _ = plan_and_data
    with pytest.raises(ConfigError, match="'income' is not a column of the table; its columns are"):
        ConditionalSampler(plan, data, target="income")
    with pytest.raises(ConfigError, match="'weight' is a numerical column; a declared target must be categorical"):
        ConditionalSampler(plan, target="weight")


def test_a_party_draws_its_rows_at_the_central_rate_not_by_its_categories(plan_and_data):
    """A party holding a few rows of a category shows them about as often as a central fit would.

    Control: the whole table (one party) draws a category by the log-frequency of its count, as
    CTGAN does, so the rare 'blue' shows up in far more than its 5 % of rows.
    """
    plan, data, _ = plan_and_data
    blue = int(np.argmin(plan.discrete_spans[0].counts))
    colours = decoded_category(plan, data, 0)
    central = ConditionalSampler(plan, data)
    log_counts = np.log1p(np.asarray(plan.discrete_spans[0].counts, dtype=float))
    np.testing.assert_allclose(central.train_probs[0], log_counts / log_counts.sum())
    assert central.train_probs[0][blue] > 0.2
    few_blue = np.concatenate([data[colours != blue], data[colours == blue][:2]])
    party = ConditionalSampler(plan, few_blue)
    share_of_blue_rows = 2 / plan.discrete_spans[0].counts[blue]
    assert party.train_probs[0][blue] < 2 * share_of_blue_rows * central.train_probs[0][blue]
    cond, mask, rows = party.sample_train(4000, np.random.default_rng(7))
    drawn_blue = decoded_category(plan, few_blue[rows], 0) == blue
    assert drawn_blue.mean() < 0.02  # before: each of the 2 rows in ~10 % of the batch


def test_target_share_sets_the_share_of_training_conditions_on_the_target_and_is_checked(plan_and_data):
    from fedtab.errors import ConfigError

    plan, data, _ = plan_and_data
    for share in (0.0, 0.8, 1.0):
        sampler = ConditionalSampler(plan, data, target="size", target_share=share)
        _, mask, _ = sampler.sample_train(4000, np.random.default_rng(8))
        assert abs(mask[:, sampler.target_index].mean() - share) < 0.03
    with pytest.raises(ConfigError, match="option 'target_share' must be a share in \\[0, 1\\]; got 1.5"):
        ConditionalSampler(plan, data, target="size", target_share=1.5)
