"""Outlier canaries planted in one party: found without DP, not under ε = 1.

Each canary is a rare combination (categories drawn uniformly, numbers anywhere in their range)
that carries two values no other row holds (a native country and an occupation of its own), and
is planted four times in one party. Non-members come from the same generator and are never
planted. The attack scores a candidate by how many synthetic rows carry its unique values.

Positive controls: the evaluator's distance attack separates them in a table that holds the
canaries, and the value attack finds every canary in a model trained without DP (measured 1.0:
each canary's values appear 114-186 times in 4,000 synthetic rows). Under ε = 1, partition
selection keeps a label only if its noisy count clears a threshold a 4-row label passes with
probability below δ, so the attack is at chance (measured 0.5); the distance attack stays inside
the noise band of 25 against 25 (standard error about 0.08; measured 0.52).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedtab import FederatedSynthesizer, FedtabConfig
from fedtab.evaluators.metrics import DistanceAttackAUC

CANARIES = 25
COPIES = 4
UNIQUE = ("native-country", "occupation")
RARE = ("workclass", "education", "marital-status", "relationship", "race")
SMALL = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}
SYNTHETIC_ROWS = 4000


def outliers(base: pd.DataFrame, rng: np.random.Generator, count: int) -> pd.DataFrame:
    rows = base.sample(count, random_state=int(rng.integers(2**31))).reset_index(drop=True)
    for column in RARE:
        rows[column] = rng.choice(base[column].dropna().unique(), count)
    for column, (low, high) in {"age": (17, 91), "hours-per-week": (1, 100), "capital-gain": (0, 100_000)}.items():
        rows[column] = rng.integers(low, high, count)
    for column in UNIQUE:
        rows[column] = [f"canary-{column}-{i}" for i in range(count)]
    return rows


@pytest.fixture(scope="module")
def canaries(demo_frames) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    pool = outliers(demo_frames["clinic_north"], np.random.default_rng(0), 2 * CANARIES)
    planted, fresh = pool.iloc[:CANARIES], pool.iloc[CANARIES:].reset_index(drop=True)
    party_a = pd.concat([demo_frames["clinic_west"]] + [planted] * COPIES, ignore_index=True)
    return planted, fresh, {"clinic_a": party_a, "clinic_b": demo_frames["clinic_south"]}


def value_attack_auc(members: pd.DataFrame, nonmembers: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """AUC of telling members from non-members by how many synthetic rows carry their unique values."""
    def score(rows: pd.DataFrame) -> np.ndarray:
        return np.array([sum(int((synthetic[c] == row[c]).sum()) for c in UNIQUE) for _, row in rows.iterrows()])

    m, n = score(members), score(nonmembers)
    return float(np.mean(m[:, None] > n[None, :]) + 0.5 * np.mean(m[:, None] == n[None, :]))


def synthetic_table(parties: dict[str, pd.DataFrame], epsilon: float | None) -> pd.DataFrame:
    config = FedtabConfig(model="ctgan", rounds=3, local_epochs=1.0, batch_size=200, seed=0, epsilon=epsilon, model_options=SMALL)
    synthesizer = FederatedSynthesizer(config, engine="local").fit(parties)
    if epsilon is not None:
        assert synthesizer.state_.ledger["parties"][0]["epsilon"] <= epsilon
    return synthesizer.sample(SYNTHETIC_ROWS, seed=1)


def test_the_distance_attack_catches_canaries_in_a_table_that_holds_them(canaries):
    planted, fresh, parties = canaries
    assert DistanceAttackAUC.compute(planted, parties["clinic_a"], holdout=fresh, seed=0) > 0.95


def test_without_dp_the_model_gives_the_canaries_away(canaries):
    planted, fresh, parties = canaries
    assert value_attack_auc(planted, fresh, synthetic_table(parties, epsilon=None)) >= 0.9


def test_canaries_under_epsilon_one_look_like_fresh_rows(canaries):
    planted, fresh, parties = canaries
    synthetic = synthetic_table(parties, epsilon=1.0)
    assert value_attack_auc(planted, fresh, synthetic) <= 0.6
    auc = DistanceAttackAUC.compute(planted, synthetic, holdout=fresh, seed=0)
    assert abs(auc - 0.5) < 0.25, auc  # three standard errors of a 25-against-25 AUC
