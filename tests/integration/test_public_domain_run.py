"""A declared public domain under DP: every declared category is named, nothing is spent selecting them."""

from __future__ import annotations

import pytest

from fedtab import FederatedSynthesizer, FedtabConfig
from fedtab.connectors.public_domain import read_public_domain
from fedtab.demo import demo_public_domain_path
from fedtab.errors import SchemaError
from fedtab.transformers import PlanFitter

SMALL = {"embedding_dim": 16, "generator_dims": [32], "discriminator_dims": [32]}


def _config(**changes) -> FedtabConfig:
    return FedtabConfig(model="ctgan", rounds=1, local_epochs=1.0, batch_size=200, seed=2, epsilon=1.0, model_options=SMALL, **changes)


@pytest.fixture(scope="module")
def runs(demo_frames):
    domain = read_public_domain(demo_public_domain_path())
    declared = FederatedSynthesizer(_config(public_domain=domain), engine="local").fit(demo_frames)
    inferred = FederatedSynthesizer(_config(), engine="local").fit(demo_frames)
    return domain, declared, inferred


def test_declared_categories_are_the_vocabulary_and_no_rare_bucket_is_needed(runs):
    domain, declared, inferred = runs
    vocabularies = {c.name: c.vocabulary for c in declared.state_.plan.columns}
    for name, entry in domain.items():
        if "categories" in entry:
            assert set(entry["categories"]) <= set(vocabularies[name]), name
            assert "__rare__" not in vocabularies[name], name
    assert not declared.state_.plan.notes
    guessed = {c.name: c.vocabulary for c in inferred.state_.plan.columns}
    assert "__rare__" in guessed["native-country"]  # without the code book, ε = 1 cannot name the small countries


def test_declared_bounds_are_the_plan_bounds_and_releases_shrink(runs):
    domain, declared, inferred = runs
    bounds = {c.name: c.bounds for c in declared.state_.plan.columns}
    for name, entry in domain.items():
        if "bounds" in entry:
            assert bounds[name] == tuple(float(b) for b in entry["bounds"]), name
    releases, selections = PlanFitter.release_plan(declared.state_.plan.schema)
    releases_inferred, selections_inferred = PlanFitter.release_plan(inferred.state_.plan.schema)
    assert selections == 0 < selections_inferred
    assert releases < releases_inferred
    for spend in declared.state_.ledger["parties"]:
        assert spend["epsilon"] <= 1.0


def test_declared_domain_samples_only_declared_values(runs):
    domain, declared, _ = runs
    synthetic = declared.sample(2000, seed=0)
    for name, entry in domain.items():
        if "categories" in entry:
            assert set(synthetic[name].dropna()) <= set(entry["categories"]), name
        else:
            low, high = entry["bounds"]
            assert synthetic[name].between(low, high).all(), name


@pytest.mark.parametrize("epsilon", [1.0, None], ids=["dp", "exact"])
def test_a_party_value_outside_the_declared_categories_is_named(demo_frames, epsilon):
    frames = {name: frame.copy() for name, frame in demo_frames.items()}
    frames["clinic_west"].loc[frames["clinic_west"].index[:3], "race"] = "Martian"
    races = ["White", "Black", "Other", "Asian-Pac-Islander", "Amer-Indian-Eskimo"]
    config = FedtabConfig(model="ctgan", rounds=1, batch_size=200, model_options=SMALL, epsilon=epsilon, public_domain={"race": {"categories": races}})
    with pytest.raises(SchemaError, match="'race' of party 'clinic_west'.*'Martian'"):
        FederatedSynthesizer(config, engine="local").fit(frames)
