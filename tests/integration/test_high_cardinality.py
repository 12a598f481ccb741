"""A 100,000-distinct-value column is recognised, bounded in memory, and the user is told what was done."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedtab import FederatedSynthesizer, FedtabConfig

TINY_MODEL = {"embedding_dim": 8, "generator_dims": [16], "discriminator_dims": [16]}


def fit(parties: dict[str, pd.DataFrame], **config) -> FederatedSynthesizer:
    settings = FedtabConfig(model="ctgan", rounds=1, local_epochs=0.02, batch_size=500, seed=0, model_options=TINY_MODEL, bgm_max_rounds=3, **config)
    return FederatedSynthesizer(settings, engine="local").fit(parties)


@pytest.fixture(scope="module")
def numbers() -> np.ndarray:
    return np.random.default_rng(0).normal(size=100_000)


def test_unique_text_column_is_an_identifier_and_fresh_ids_are_made(numbers):
    frame = pd.DataFrame({"user": [f"user-{i:06d}" for i in range(100_000)], "x": numbers})
    synth = fit({"a": frame.iloc[:50_000], "b": frame.iloc[50_000:]})
    notes = " ".join(synth.state_.plan.notes)
    assert "user" in notes and "identifier" in notes
    sample = synth.sample(1000)
    assert sample["user"].is_unique
    assert not set(sample["user"]) & set(frame["user"])  # no real identifier is ever emitted


def test_long_tailed_category_is_bucketed_into_rare(numbers):
    rng = np.random.default_rng(1)
    common = rng.choice([f"c{i}" for i in range(20)], size=100_000)
    tail = np.array([f"t{i:06d}" for i in range(100_000)])
    city = np.where(rng.random(100_000) < 0.5, common, tail)  # ~50k rare values seen once, 20 common ones
    frame = pd.DataFrame({"city": np.concatenate([city, common[:100_000]]), "x": np.concatenate([numbers, numbers])})
    synth = fit({"a": frame.iloc[:100_000], "b": frame.iloc[100_000:]}, max_categories=50, min_category_count=5)
    span = next(s for s in synth.state_.plan.discrete_spans if s.column == "city")
    assert span.dim <= 52  # the vocabulary is capped: the encoded width never follows the distinct count
    notes = " ".join(synth.state_.plan.notes)
    assert "city" in notes and "rare" in notes
    values = set(synth.sample(2000)["city"])
    assert not values & set(tail)  # a value seen once is never released
