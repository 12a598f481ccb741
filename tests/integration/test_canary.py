"""Canaries planted in one party are no more identifiable under ε = 1 than fresh rows, within noise.

The attack is the evaluator's distance attack (members = the planted rows, non-members = rows of
the same population never seen). A control shows the attack has teeth: against a table that holds
the planted rows it wins outright.
"""

from __future__ import annotations

import pandas as pd
import pytest

from fedtab import FederatedSynthesizer, FedtabConfig
from fedtab.evaluators.metrics import DistanceAttackAUC

CANARIES = 25
COPIES = 4  # each canary planted four times, which makes memorisation easier, not harder
SMALL = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}


@pytest.fixture(scope="module")
def canaries(demo_frames) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, pd.DataFrame]]:
    pool = demo_frames["clinic_west"].sample(2 * CANARIES, random_state=0).reset_index(drop=True)
    planted, fresh = pool.iloc[:CANARIES], pool.iloc[CANARIES:].reset_index(drop=True)
    party_a = pd.concat([demo_frames["clinic_north"]] + [planted] * COPIES, ignore_index=True)
    return planted, fresh, {"clinic_a": party_a, "clinic_b": demo_frames["clinic_south"]}


def test_the_attack_catches_canaries_in_a_table_that_holds_them(canaries):
    planted, fresh, parties = canaries
    assert DistanceAttackAUC.compute(planted, parties["clinic_a"], holdout=fresh, seed=0) > 0.95


def test_canaries_under_epsilon_one_look_like_fresh_rows(canaries):
    planted, fresh, parties = canaries
    config = FedtabConfig(rounds=3, local_epochs=1.0, batch_size=200, seed=0, epsilon=1.0, model_options=SMALL)
    synthesizer = FederatedSynthesizer(config, engine="local").fit(parties)
    assert synthesizer.state_.ledger["parties"][0]["epsilon"] <= 1.0
    synthetic = synthesizer.sample(4000, seed=1)
    auc = DistanceAttackAUC.compute(planted, synthetic, holdout=fresh, seed=0)
    # 25 members vs 25 non-members: the AUC's standard error is about 0.08; 3 of them is the noise band.
    assert abs(auc - 0.5) < 0.25, auc
