"""argn as the server's latent model learns a relation that only exists across parties (issue 11's lever).

On Adult (benchmarks/RESULTS_VERTICAL.md) argn over the parties' latents lifted cross-party pair trends
from 0.748 (tvae) to 0.918. Here the relation is one no party sees alone: ``relationship`` sits with one
party, ``sex`` with another, and a Husband is male, a Wife female. The control breaks the cross-party
joint (one party's slice of the synthetic latents shuffled) and must violate the rule far more often.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedtab.config import FedtabConfig
from fedtab.federation.vertical_coordinator import assemble, party_slice, sample_latents
from fedtab.federation.vertical_party import decode_party
from fedtab.vertical_synthesizer import VerticalSynthesizer

KEY = "person_id"
SPLIT = {"household": ["relationship", "age"], "registry": ["sex", "hours-per-week"]}
CONFIG = FedtabConfig(vertical=True, key_columns=(KEY,), model="argn", rounds=40, batch_size=50, seed=3, latent_dim=2,
                      latent_hidden=32, bgm_components=3, bgm_max_rounds=5,
                      model_options={"embedding_dim": 8, "hidden_dims": [128], "bins": 20})


def violations(frame: pd.DataFrame) -> float:
    """Share of husbands and wives whose sex contradicts their relationship."""
    spouses = frame[frame["relationship"].isin(["Husband", "Wife"])]
    wrong = ((spouses["relationship"] == "Husband") & (spouses["sex"] != "Male")) | (
        (spouses["relationship"] == "Wife") & (spouses["sex"] != "Female"))
    return float(wrong.mean())


@pytest.fixture(scope="module")
def fitted(demo_frames: dict[str, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> VerticalSynthesizer:
    people = demo_frames["clinic_north"].head(600).reset_index(drop=True)
    people = people.assign(**{KEY: [f"k{i:04d}" for i in range(len(people))]})
    folder, rng, paths = tmp_path_factory.mktemp("argn-latents"), np.random.default_rng(1), {}
    for name, columns in SPLIT.items():
        paths[name] = Path(folder) / f"{name}.csv"
        people[[KEY, *columns]].sample(frac=1.0, random_state=int(rng.integers(99))).to_csv(paths[name], index=False)
    assert violations(people) == 0.0
    return VerticalSynthesizer(CONFIG, engine="local").fit(paths)


def test_argn_latent_model_keeps_a_cross_party_rule_the_control_breaks(fitted: VerticalSynthesizer) -> None:
    rows = 600
    joint = fitted.sample(rows, seed=1)
    latents = sample_latents(fitted.fit_.latent_model, rows, seed=1)
    order = np.random.default_rng(0).permutation(rows)
    control = assemble({p: decode_party(fitted.decoders_[p], party_slice(latents, p)[order if p == "registry" else
                                                                                        np.arange(rows)], seed=1)
                        for p in fitted.fit_.parties}, fitted.fit_)
    assert violations(control) > 0.2  # positive control: the rule is not kept by the marginals alone
    assert violations(joint) < 0.75 * violations(control)  # 600 rows: the autoencoders themselves blur spouses
    assert joint.equals(fitted.sample(rows, seed=1))
