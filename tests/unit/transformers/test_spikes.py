"""A value most rows share (capital gain's zeros) stays that value after encode → imprecise alpha → decode."""

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import load_party
from fedtab.transformers import fit_plan, mixture


def spiky_parties() -> list:
    rng = np.random.default_rng(0)
    gain = np.where(rng.random(4000) < 0.9, 0, np.round(rng.lognormal(8.0, 1.0, 4000)).astype(np.int64))
    frame = pd.DataFrame({"gain": gain, "age": rng.integers(18, 90, 4000)})
    return [load_party("a", frame.iloc[:2500].reset_index(drop=True)), load_party("b", frame.iloc[2500:].reset_index(drop=True))]


def zeros_after_a_noisy_generator(parties: list) -> tuple[float, float]:
    """Share of zeros in the real column, and after decoding rows whose every alpha is off by up to ±0.3."""
    plan = fit_plan(parties, seed=0)
    frame = pd.concat([p.frame for p in parties], ignore_index=True)
    encoded = plan.encode(frame, np.random.default_rng(1))
    offset, scalars = 0, []
    for spans in plan.output_info:
        for span in spans:
            if span.activation == "tanh":
                scalars.append(offset)
            offset += span.dim
    encoded[:, scalars] = np.clip(encoded[:, scalars] + np.random.default_rng(2).uniform(-0.3, 0.3, (len(encoded), len(scalars))), -1, 1)
    decoded = plan.decode(encoded, np.random.default_rng(3))
    return float((frame["gain"] == 0).mean()), float((decoded["gain"] == 0).mean())


def test_a_spike_keeps_its_share_of_zeros():
    real, synthetic = zeros_after_a_noisy_generator(spiky_parties())
    assert real == pytest.approx(0.9, abs=0.02)
    assert abs(synthetic - real) < 0.01


def test_without_point_masses_the_prior_variance_smears_the_zeros(monkeypatch):
    """Positive control: the plain variational M-step keeps the spike ~1/sqrt(n) of the column's spread wide."""
    plain = mixture.m_step
    monkeypatch.setattr(mixture, "m_step", lambda stats, prior, extra_variance=0.0, point_masses=False: plain(stats, prior, extra_variance))
    real, synthetic = zeros_after_a_noisy_generator(spiky_parties())
    assert synthetic < real - 0.3
