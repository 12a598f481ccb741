"""A party's half of the vertical model on rows a test fixture has already aligned (no PSI here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fedtab.connectors import infer_schema
from fedtab.models.vertical import (LATENT_CLIP, LATENT_MECHANISM, PartyDecoder, autoencoder_options, decode_latents,
                                    fit_party_plan, private_latents, row_latents, train_autoencoder)
from fedtab.privacy.accountant import PartyAccountant
from fedtab.rng import numpy_rng
from fedtab.schema import PartyTable

COLUMNS = ["age", "sex", "relationship", "hours-per-week"]


@pytest.fixture(scope="module")
def trained(demo_frames: dict[str, pd.DataFrame]) -> tuple[PartyTable, PartyDecoder, np.ndarray]:
    frame = demo_frames["clinic_north"][COLUMNS].head(600).reset_index(drop=True)
    table = PartyTable("bank", frame, infer_schema(frame))
    plan = fit_party_plan(table, seed=0, options={"max_em_rounds": 5})
    encoded = plan.encode(frame, numpy_rng(0, "encode"))
    decoder, spent = train_autoencoder(plan, encoded, party="bank", seed=0, options=autoencoder_options(4, 64),
                                       epochs=30, batch_size=50, privacy=None)
    assert spent is None
    return table, decoder, encoded


def test_latents_are_one_narrow_vector_per_row_and_decode_back_to_the_party_columns(trained) -> None:
    table, decoder, encoded = trained
    latents = row_latents(decoder, encoded)
    assert latents.shape == (len(table.frame), 4)
    decoded = decode_latents(decoder, latents, seed=1)
    assert list(decoded.columns) == COLUMNS
    # The autoencoder learnt the party's rows: decoding real latents gives back most real categories.
    assert (decoded["sex"].to_numpy() == table.frame["sex"].to_numpy()).mean() > 0.8
    assert decoded.equals(decode_latents(decoder, latents, seed=1))
    assert not decoded.equals(decode_latents(decoder, latents, seed=2))


def test_decoder_survives_its_own_file(trained) -> None:
    _, decoder, encoded = trained
    again = PartyDecoder.from_bytes(decoder.to_bytes())
    latents = row_latents(decoder, encoded[:50])
    assert np.allclose(row_latents(again, encoded[:50]), latents)
    assert decode_latents(again, latents, seed=4).equals(decode_latents(decoder, latents, seed=4))


def test_private_latents_are_clipped_noised_and_charged_once() -> None:
    rng = np.random.default_rng(0)
    latents = rng.normal(0, 5, size=(2000, 4))
    accountant = PartyAccountant("bank")
    tiny = private_latents(latents, noise_multiplier=1e-9, accountant=accountant, rng=np.random.default_rng(1))
    # With (almost) no noise the release is the clipped latents: every row within the bound, small rows untouched.
    assert np.linalg.norm(tiny, axis=1).max() <= LATENT_CLIP + 1e-6
    small = np.linalg.norm(latents, axis=1) < LATENT_CLIP
    assert np.allclose(tiny[small], latents[small])
    released = private_latents(latents, noise_multiplier=2.0, accountant=accountant, rng=np.random.default_rng(1))
    assert abs((released - tiny).std() - 2.0 * LATENT_CLIP) < 0.2
    charged = accountant.releases(LATENT_MECHANISM)
    assert [r.noise_multiplier for r in charged] == [1e-9, 2.0] and all(r.sample_rate == 1.0 for r in charged)
