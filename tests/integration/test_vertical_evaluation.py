"""fedtab's own evaluation of a vertical run: each party scores its own columns, cross-party pairs are unavailable.

Positive control: the parties' real aligned columns, offered as the "synthetic" table, score 1 on
every shape and within-party pair; the same columns shuffled one by one keep their shapes and lose
their pair trends, so the per-party scores do measure the relations within a party.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError
from fedtab.evaluation_run import evaluate_vertical_on_federation, score_vertical
from fedtab.federation import keys
from fedtab.federation.payload import Payload
from fedtab.federation.vertical_coordinator import VerticalLocalTransport, run_vertical
from fedtab.federation.vertical_evaluation import PAIRS, SHAPES, evaluation_request
from fedtab.federation.vertical_party import VerticalParty, VerticalPartyWorker
from fedtab.vertical_synthesizer import VerticalSynthesizer

KEY = "person_id"
SPLIT = {"demographics": ["age", "sex", "relationship"], "work": ["education", "education-num", "hours-per-week"],
         "money": ["capital-gain", "income"]}
CONFIG = FedtabConfig(vertical=True, key_columns=(KEY,), model="tvae", rounds=1, batch_size=100, seed=3, latent_dim=2,
                      latent_hidden=16, bgm_components=3, bgm_max_rounds=3, vertical_min_rows=20,
                      model_options={"embedding_dim": 8, "compress_dims": [16], "decompress_dims": [16]})


@pytest.fixture(scope="module")
def people(demo_frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frame = demo_frames["clinic_west"].head(240).reset_index(drop=True)
    return frame.assign(**{KEY: [f"p{i:04d}x" for i in range(len(frame))]})


def split(people: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Each party's columns for its own random 90 % of the people, rows shuffled."""
    rng = np.random.default_rng(4)
    paths = {}
    for name, columns in SPLIT.items():
        paths[name] = folder / f"{name}.csv"
        people.loc[rng.random(len(people)) < 0.9, [KEY, *columns]].sample(frac=1.0, random_state=7).to_csv(paths[name], index=False)
    return paths


def test_parties_score_their_own_columns_and_shuffling_moves_the_scores(people: pd.DataFrame, tmp_path: Path) -> None:
    paths = split(people, tmp_path)
    replies: list[tuple[str, str, Payload]] = []
    transport = VerticalLocalTransport([VerticalParty(n, str(p), (KEY,)) for n, p in paths.items()],
                                       tap=lambda party, kind, payload: replies.append((party, kind, payload)))
    fit = run_vertical(transport, config=CONFIG)
    report = evaluate_vertical_on_federation(transport, fit, config=CONFIG)
    assert [p.party for p in report.parties] == sorted(SPLIT) and report.aligned_rows == fit.rows
    for party in report.parties:
        assert [c.column for c in party.columns] == SPLIT[party.party]
        assert len(party.pairs) == len(SPLIT[party.party]) * (len(SPLIT[party.party]) - 1) // 2
        assert all(0 <= c.score <= 1 for c in party.columns)
    assert len(report.cross_party_pairs) == 3 * 3 + 3 * 2 + 3 * 2  # every pair across two parties: listed, not scored
    assert ("age", "education") in report.cross_party_pairs or ("education", "age") in report.cross_party_pairs
    evaluated = [payload for _, kind, payload in replies if kind == keys.EVALUATE]
    assert len(evaluated) == 3 and all(not p.arrays and set(p.config) == {keys.PARTY, SHAPES, PAIRS} for p in evaluated)

    joined = people.set_index(KEY).loc[sorted(set.intersection(*[set(pd.read_csv(p)[KEY]) for p in paths.values()]))]
    real = joined[[c for v in SPLIT.values() for c in v]].reset_index(drop=True)
    exact = score_vertical(transport, fit, real, seed=0)
    rng = np.random.default_rng(0)
    shuffled = score_vertical(transport, fit, real.apply(lambda column: rng.permutation(column.to_numpy())), seed=0)
    for name in SPLIT:
        assert exact.party(name).column_shapes == pytest.approx(1.0) and exact.party(name).pair_trends == pytest.approx(1.0)
        assert shuffled.party(name).column_shapes == pytest.approx(1.0)  # a shuffle keeps every column's values
        print(f"{name}: pair trends real {exact.party(name).pair_trends:.3f}, shuffled {shuffled.party(name).pair_trends:.3f}, "
              f"model {report.party(name).pair_trends:.3f}")
    assert shuffled.party("work").pair_trends < 0.75  # education × education-num lose their one-to-one relation
    assert shuffled.party("demographics").pair_trends < 0.95 and shuffled.party("money").pair_trends < 0.99


def test_a_party_that_made_dp_releases_refuses_and_the_sdk_refuses_first(tmp_path: Path, people: pd.DataFrame) -> None:
    paths = split(people, tmp_path)
    worker = VerticalPartyWorker(VerticalParty("work", str(paths["work"]), (KEY,)))
    synthetic = people[SPLIT["work"]].head(20)
    dp_state = {keys.NOISE_SEED: np.array([12345], dtype=np.uint64)}
    reply, _ = worker.handle(keys.EVALUATE, evaluation_request(synthetic, seed=0), dp_state)
    with pytest.raises(ConfigError, match="Party 'work' refuses federated evaluation"):
        reply.raise_if_error("work", keys.EVALUATE)
    with pytest.raises(ConfigError, match="refused under differential privacy"):
        VerticalSynthesizer(CONFIG.replace(epsilon=3.0), engine="local").fit(paths, evaluate=True)


def test_cli_evaluate_writes_the_per_party_report(people: pd.DataFrame, tmp_path: Path, cli) -> None:
    paths = split(people, tmp_path)
    settings = tmp_path / "fedtab.toml"
    settings.write_text('[run]\nrounds = 1\nbatch-size = 100\nlatent-dim = 2\nlatent-hidden = 16\nbgm-components = 3\n'
                        'bgm-max-rounds = 3\nvertical-min-rows = 20\nmodel = "tvae"\n[model.options]\nembedding_dim = 8\n'
                        'compress_dims = [16]\ndecompress_dims = [16]\n')
    out = tmp_path / "synthetic.csv"
    code, text = cli("synthesize", "--vertical", "--key", KEY, *[f"--party={n}={p}" for n, p in paths.items()], "--evaluate",
                     "--engine", "local", "--config", str(settings), "--out", str(out))
    assert code == 0, text
    scores = json.loads(out.with_suffix(".scores.json").read_text())
    assert [p["party"] for p in scores["parties"]] == sorted(SPLIT)
    assert scores["cross_party_pairs"]["available"] is False and len(scores["cross_party_pairs"]["pairs"]) == 21
    assert set(scores["unavailable"]) == {"cross-party pair trends", "utility (TSTR)", "membership risk"}
    html = out.with_suffix(".report.html").read_text()
    assert "Party work" in html and "Cross-party pairs: unavailable" in html and KEY not in html
    assert KEY not in pd.read_csv(out).columns and "unavailable" in text
