"""A vertical run on Flower's simulation engine agrees with the in-process reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fedtab.config import FedtabConfig
from fedtab.vertical_synthesizer import VerticalSynthesizer

SPLIT = {"bank": ["age", "sex"], "insurer": ["occupation", "hours-per-week"], "registry": ["capital-gain", "income"]}


def test_simulation_engine_runs_the_vertical_protocol(demo_frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    people = demo_frames["clinic_south"].head(300).assign(person_id=[f"id{i}" for i in range(300)])
    rng = np.random.default_rng(1)
    paths = {}
    for name, columns in SPLIT.items():
        paths[name] = tmp_path / f"{name}.csv"
        people.loc[rng.random(300) < 0.9, ["person_id", *columns]].sample(frac=1.0, random_state=1).to_csv(paths[name], index=False)
    config = FedtabConfig(vertical=True, key_columns=("person_id",), model="tvae", rounds=2, batch_size=100, seed=2,
                          latent_dim=2, latent_hidden=16, bgm_components=3, bgm_max_rounds=3,
                          model_options={"embedding_dim": 8, "compress_dims": [16], "decompress_dims": [16]})
    simulated = VerticalSynthesizer(config).fit(paths, evaluate=True)  # the evaluation runs while the virtual nodes are up
    assert [p.party for p in simulated.report_.parties] == sorted(SPLIT) and len(simulated.report_.cross_party_pairs) == 12
    local = VerticalSynthesizer(config, engine="local").fit(paths)
    assert simulated.fit_.rows == local.fit_.rows
    rows = simulated.sample(40, seed=1)
    assert sorted(rows.columns) == sorted(c for v in SPLIT.values() for c in v)
    assert rows.equals(local.sample(40, seed=1))
