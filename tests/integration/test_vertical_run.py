"""Vertical federation end to end on the in-process transport: PSI alignment, latents, sampling, messages, bad input.

The demo sample split by columns over three parties with a key added; each party holds a different
subset of the people, its rows shuffled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, FedtabError, NotFittedError, PartyError
from fedtab.federation import keys
from fedtab.federation.payload import Payload
from fedtab.federation.vertical_party import frame_bytes
from fedtab.model_state import ModelState
from fedtab.privacy.accountant import PartyAccountant
from fedtab.vertical_synthesizer import VerticalSynthesizer

SPLIT = {"bank": ["age", "sex", "race"], "insurer": ["workclass", "occupation", "hours-per-week"],
         "registry": ["fnlwgt", "capital-gain", "income"]}
KEY = "person_id"
TINY = FedtabConfig(vertical=True, key_columns=(KEY,), model="tvae", rounds=3, batch_size=100, seed=5, latent_dim=3,
                    latent_hidden=32, bgm_components=3, bgm_max_rounds=5,
                    model_options={"embedding_dim": 16, "compress_dims": [32, 32], "decompress_dims": [32, 32]})
Message = tuple[str, str, str, Payload]


@pytest.fixture(scope="module")
def people(demo_frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    frame = demo_frames["clinic_north"].head(400).reset_index(drop=True)
    return frame.assign(**{KEY: [f"cust-{i:05d}-zq" for i in range(len(frame))]})


def split_parties(people: pd.DataFrame, folder: Path, *, share: float = 0.9,
                  edit: Callable[[str, pd.DataFrame], pd.DataFrame] | None = None) -> dict[str, Path]:
    """Each party's columns for its own random share of the people, shuffled, as a CSV the party reads."""
    rng = np.random.default_rng(0)
    paths = {}
    for name, columns in SPLIT.items():
        mine = people.loc[rng.random(len(people)) < share, [KEY, *columns]].sample(frac=1.0, random_state=int(rng.integers(99)))
        paths[name] = folder / f"{name}.csv"
        (edit(name, mine) if edit else mine).to_csv(paths[name], index=False)
    return paths


def recorder() -> tuple[list[Message], Callable, Callable]:
    """Every message of a run: (direction, party, message type, payload)."""
    seen: list[Message] = []
    return (seen, lambda p, t, m: seen.append(("reply", p, t, m)), lambda p, t, m: seen.append(("sent", p, t, m)))


def leaks(payload: Payload, needles: list[str], numbers: np.ndarray) -> list[str]:
    """Which of ``needles`` (keys, raw text values) or raw ``numbers`` a payload carries in the clear."""
    found = []
    texts = [str(v) for v in payload.config.values()]
    for name, array in payload.arrays.items():
        array = np.asarray(array)
        if array.dtype.kind in "USO":
            texts.extend(str(v) for v in array.ravel())
        elif array.dtype == np.uint8:
            texts.append(array.tobytes().decode("latin-1"))
        elif array.size and np.isin(array.ravel(), numbers).any():
            found.append(f"{name}: raw numbers")
    return found + [n for n in needles if any(n in t for t in texts)]


@pytest.fixture(scope="module")
def fitted(people: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[VerticalSynthesizer, list[Message], int]:
    paths = split_parties(people, tmp_path_factory.mktemp("vertical"))
    expected = len(set.intersection(*[set(pd.read_csv(p)[KEY]) for p in paths.values()]))
    seen, tap, tap_sent = recorder()
    return VerticalSynthesizer(TINY, engine="local").fit(paths, tap=tap, tap_sent=tap_sent), seen, expected


def test_fit_sample_has_every_party_column_no_key_and_same_seed_same_rows(fitted, tmp_path: Path) -> None:
    synthesizer, _, expected = fitted
    assert synthesizer.fit_.rows == expected
    rows = synthesizer.sample(150, seed=2)
    assert sorted(rows.columns) == sorted(c for cols in SPLIT.values() for c in cols) and len(rows) == 150
    assert set(rows["income"]) <= {"<=50K", ">50K"} and rows["age"].notna().all()
    assert rows.equals(synthesizer.sample(150, seed=2))
    assert not rows.equals(synthesizer.sample(150, seed=3))
    folder = synthesizer.save(tmp_path / "model")
    # The server's file models latents only; each party's decoder is a file of its own.
    server = ModelState.load(folder / "server.fedtab")
    assert all(name.split(".")[0] in SPLIT for name in server.plan.schema.names)
    assert sorted(p.name for p in folder.glob("decoder-*")) == sorted(f"decoder-{n}.npz" for n in SPLIT)
    assert VerticalSynthesizer.load(folder).sample(150, seed=2).equals(rows)


def test_no_message_carries_a_key_or_a_raw_value(fitted, people: pd.DataFrame) -> None:
    _, seen, _ = fitted
    needles = [*people[KEY].head(200), "Machine-op-inspct", "Never-married"]
    numbers = people["fnlwgt"].to_numpy(dtype=float)
    # Positive control: the same search finds keys and raw values sent plainly.
    plain = Payload(arrays={"rows": frame_bytes(people.head(20))}, config={"keys": list(people[KEY].head(20))})
    assert leaks(plain, needles, numbers) and leaks(Payload(arrays={"x": numbers[:5]}), [], numbers)
    assert {t for _, _, t, _ in seen} >= {keys.V_DESCRIBE, keys.V_ENCODE}
    assert [(d, p, t, found) for d, p, t, m in seen if (found := leaks(m, needles, numbers))] == []


def test_under_dp_latents_are_noised_and_charged_to_each_party(people: pd.DataFrame, tmp_path: Path) -> None:
    seen, tap, tap_sent = recorder()
    config = TINY.replace(epsilon=8.0, encoder_share=0.5)
    synthesizer = VerticalSynthesizer(config, engine="local").fit(split_parties(people, tmp_path), tap=tap, tap_sent=tap_sent)
    ledger = synthesizer.ledger_
    assert sorted(p["party"] for p in ledger["parties"]) == sorted(SPLIT)
    assert all(0 < p["epsilon"] <= 8.0 for p in ledger["parties"])
    plans = {p: m.config[keys.DP_PLAN] for d, p, t, m in seen if d == "sent" and t == keys.CONSENT}
    assert sorted(plans) == sorted(SPLIT)
    for direction, party, kind, message in seen:
        if direction != "reply" or kind != keys.V_ENCODE:
            continue
        plan = json.loads(str(plans[party]))
        spent = PartyAccountant.from_state_dict(json.loads(str(message.config[keys.DP_REPORT])))
        assert spent.steps("training") == plan["steps"]
        assert spent.steps("encoder") == plan["encoder_releases"]  # the encoder statistics plus the one latent release
        latents = message.arrays[keys.LATENTS]
        sigma = plan["encoder_noise_multiplier"] * 3.0
        # Clipped rows (norm <= 3) plus noise of std sigma per coordinate: the spread is the noise's.
        assert np.mean(np.sum(latents.astype(float) ** 2, axis=1)) > 0.8 * config.latent_dim * sigma**2


def test_without_dp_latents_carry_no_noise(fitted) -> None:
    """The control for the test above: clean latents sit well inside the DP test's noise floor."""
    _, seen, _ = fitted
    latents = [m.arrays[keys.LATENTS] for d, _, t, m in seen if d == "reply" and t == keys.V_ENCODE]
    assert len(latents) == 3 and all(np.mean(np.sum(z.astype(float) ** 2, axis=1)) < 3 * TINY.latent_dim for z in latents)


def assert_nothing_row_level(seen: list[Message]) -> None:
    assert keys.V_ENCODE not in {t for _, _, t, _ in seen}


@pytest.mark.parametrize(("edit", "error", "words"), [
    (lambda n, f: f.drop(columns=[KEY]) if n == "insurer" else f, PartyError, "Party 'insurer' has no key column 'person_id'"),
    (lambda n, f: pd.concat([f, f.head(3)]) if n == "bank" else f, PartyError, "'person_id' of party 'bank' holds 3 duplicated"),
    (lambda n, f: f.assign(race=f["fnlwgt"]) if n == "registry" else f, ConfigError,
     "Column 'race' is held by party 'bank' and by party 'registry'"),
])
def test_bad_input_is_refused_before_anything_row_level(people, tmp_path, edit, error, words) -> None:
    seen, tap, tap_sent = recorder()
    with pytest.raises(error, match=words):
        VerticalSynthesizer(TINY, engine="local").fit(split_parties(people, tmp_path, edit=edit), tap=tap, tap_sent=tap_sent)
    assert {t for _, _, t, _ in seen} <= {keys.HELLO, keys.V_DESCRIBE}


def test_empty_intersection_is_refused(people: pd.DataFrame, tmp_path: Path) -> None:
    def disjoint(name: str, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{KEY: frame[KEY] + ("-bank" if name == "bank" else "")})

    seen, tap, tap_sent = recorder()
    with pytest.raises(PartyError, match=r"No key in column\(s\) \[.person_id.\] is held by all of parties .*the intersection is empty"):
        VerticalSynthesizer(TINY, engine="local").fit(split_parties(people, tmp_path, edit=disjoint), tap=tap, tap_sent=tap_sent)
    assert_nothing_row_level(seen)


def test_small_intersection_is_refused(people: pd.DataFrame, tmp_path: Path) -> None:
    seen, tap, tap_sent = recorder()
    with pytest.raises(FedtabError, match=r"keys in column\(s\) \['person_id'\] are held by all of parties .*at least 1000"):
        VerticalSynthesizer(TINY.replace(vertical_min_rows=1000), engine="local").fit(split_parties(people, tmp_path), tap=tap, tap_sent=tap_sent)
    assert_nothing_row_level(seen)


def test_config_needs_a_key_for_a_vertical_run() -> None:
    with pytest.raises(ConfigError, match="no key column is set"):
        FedtabConfig(vertical=True)
    with pytest.raises(ConfigError, match="'vertical' is off"):
        FedtabConfig(key_columns=("person_id",))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        VerticalSynthesizer(TINY).sample(5)


def test_cli_writes_one_table_without_keys(people: pd.DataFrame, tmp_path: Path, cli) -> None:
    paths = split_parties(people, tmp_path)
    out = tmp_path / "synthetic.csv"
    code, text = cli("synthesize", "--vertical", "--key", KEY, *[f"--party={n}={p}" for n, p in paths.items()],
                     "--engine", "local", "--model", "tvae", "--rounds", "2", "--rows", "50", "--out", str(out))
    assert code == 0, text
    written = pd.read_csv(out)
    assert len(written) == 50 and KEY not in written.columns and set(written.columns) == {c for v in SPLIT.values() for c in v}
