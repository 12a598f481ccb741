"""Quantile maps read off the histogram the encoder fit already released: normal values, inverse, bins, DP, old plans."""

import numpy as np
import pandas as pd
import pytest
from private_fakes import gaussian_releases
from scipy.stats import kstest

from fedtab.connectors import load_party
from fedtab.errors import SchemaError
from fedtab.transformers import PlanFitter, TransformPlan, fit_plan, local_statistics, quantile
from fedtab.transformers.private_server import denoise_histograms


def _parties(rows: int = 3000) -> list:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "gain": np.where(rng.random(rows) < 0.9, 0.0, rng.lognormal(8.0, 1.0, rows)),  # a spike in a float column
        "age": rng.integers(18, 90, rows),  # an integer grid: one bin per value
        "kind": rng.choice(["a", "b"], rows),
    })
    half = rows // 2
    return [load_party("a", frame.iloc[:half].reset_index(drop=True)), load_party("b", frame.iloc[half:].reset_index(drop=True))]


@pytest.fixture(scope="module")
def fitted() -> tuple[TransformPlan, pd.DataFrame]:
    parties = _parties()
    return fit_plan(parties, seed=0), pd.concat([p.frame for p in parties], ignore_index=True)


def test_real_values_become_standard_normal_and_fresh_normals_come_back_with_the_spike(fitted):
    plan, frame = fitted
    z = plan.quantile_normal("gain", frame["gain"].to_numpy(), np.random.default_rng(1))
    assert kstest(z, "norm").statistic < 0.03
    back = plan.from_quantile_normal("gain", np.random.default_rng(2).standard_normal(len(frame)))
    assert (back == 0).mean() == pytest.approx((frame["gain"] == 0).mean(), abs=0.02)
    positive = frame["gain"][frame["gain"] > 0]
    assert np.median(back[back > 0]) == pytest.approx(np.median(positive), rel=0.15)


def test_without_atoms_the_histogram_smears_the_spike(fitted, monkeypatch):
    plan, frame = fitted
    monkeypatch.setattr(quantile, "ATOM_SHARE", 0.0)
    back = plan.from_quantile_normal("gain", np.random.default_rng(2).standard_normal(len(frame)))
    assert (back == 0).mean() < 0.01 < (frame["gain"] == 0).mean() - 0.5


def test_an_integer_column_round_trips_exactly(fitted):
    plan, frame = fitted
    age = frame["age"].to_numpy(dtype=float)
    z = plan.quantile_normal("age", age, np.random.default_rng(3))
    assert np.array_equal(plan.from_quantile_normal("age", z), age)
    assert np.isnan(plan.quantile_normal("age", np.array([np.nan, 30.0]))[0])


def test_quantile_bins_hold_equal_mass_and_merge_under_a_spike(fitted):
    plan, frame = fitted
    edges = plan.quantile_bins("age", 8)
    counts = np.histogram(frame["age"], bins=edges)[0]
    assert len(edges) == 9 and counts.min() > 0.08 * len(frame)
    assert len(plan.quantile_bins("gain", 8)) < 9  # the zeros hold 90 %: their bins merge


def test_encoded_rows_give_back_their_values(fitted):
    plan, frame = fitted
    encoded = plan.encode(frame, np.random.default_rng(4))
    values = plan.block_values("age", encoded)
    start = plan.column_start("age")
    block = plan.encode_values("age", values, np.random.default_rng(5))
    assert np.allclose(np.round(values), frame["age"])
    assert np.array_equal(block.argmax(axis=1) > 0, encoded[:, start:start + block.shape[1]].argmax(axis=1) > 0)
    with pytest.raises(SchemaError, match="quantile maps exist for numerical"):
        plan.quantile_map("kind")


def test_under_dp_the_map_reads_only_the_released_histogram():
    """The plan's histogram is the post-processed sum of what the parties released: no new statistic."""
    parties = _parties(1200)
    releases = gaussian_releases(parties, sigma=2.0, seed=0)
    fitter = PlanFitter(parties[0].schema, mode="private", noise_multiplier=2.0, seed=0)
    released = None
    while (request := fitter.next_request()) is not None:
        replies = [local_statistics(t, request, seed=0, release=r, threshold_delta=1e-7) for t, r in zip(parties, releases)]
        if request.stage == "histogram":
            released = sum(r["hist.counts"] for r in replies)
            layout, bounds = fitter._layout, fitter._bounds()
        fitter.merge(replies)
    plan = fitter.finalize()
    expected = denoise_histograms(released, layout, *bounds, noise_std=2.0 * np.sqrt(2))
    assert np.allclose(plan.column("gain").histogram, expected[0])
    assert all(r.accountant.steps("encoder") == PlanFitter.release_plan(parties[0].schema)[0] for r in releases)


def test_a_plan_saved_before_histograms_loads_and_maps_through_its_mixture(fitted):
    plan, _ = fitted
    old = plan.to_dict()
    for column in old["columns"]:
        for key in ("histogram", "histogram_low", "histogram_width"):
            column.pop(key)
    loaded = TransformPlan.from_dict(old)
    assert loaded.column("age").histogram == ()
    back = loaded.from_quantile_normal("age", np.linspace(-3, 3, 50))
    assert np.all(np.diff(back) >= 0) and 18 <= back.min() and back.max() <= 89
    assert TransformPlan.from_dict(plan.to_dict()) == plan
