"""A DP run with a declared target releases its 2-way marginals when the model reads them, and only then."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from test_target import toy

from fedtab import FederatedSynthesizer, FedtabConfig
from fedtab.models.registry import create_model
from fedtab.transformers import PlanFitter

SMALL_ARGN = {"embedding_dim": 8, "hidden_dims": [32], "bins": 10}


def _fit(target: str | None, **options: object) -> FederatedSynthesizer:
    config = FedtabConfig(model="argn", rounds=2, local_epochs=1.0, seed=0, epsilon=3.0, target=target,
                          model_options={**SMALL_ARGN, **options})
    return FederatedSynthesizer(config, engine="local").fit({"a": toy(1200, 0), "b": toy(1200, 1)})


def _encoder_steps(synthesizer: FederatedSynthesizer) -> set[int]:
    return {m["steps"] for p in synthesizer.state_.ledger["parties"] for m in p["mechanisms"] if m["mechanism"] == "encoder"}


@pytest.mark.parametrize(("target", "options", "crossed"), [
    ("y", {"pair_sampling": True}, True),
    ("y", {}, False),  # argn's defaults read nothing of them: nothing more is released or charged
    (None, {"pair_sampling": True}, False),  # nothing declared: the run as before
])
def test_the_pairs_are_released_and_charged_only_when_read(target: str | None, options: dict, crossed: bool) -> None:
    synthesizer = _fit(target, **options)
    plan = synthesizer.state_.plan
    planned = PlanFitter.release_plan(plan.schema, "y" if crossed else None).encoder_releases
    assert _encoder_steps(synthesizer) == {planned}
    assert planned == PlanFitter.release_plan(plan.schema).encoder_releases + (3 if crossed else 0)
    assert (plan.target == "y") is crossed
    assert bool(plan.column("x").pair_counts) is crossed
    assert all(p["epsilon"] <= 3.0 for p in synthesizer.state_.ledger["parties"])
    if crossed:
        _raked_sample_keeps_the_relation(synthesizer)


def _raked_sample_keeps_the_relation(synthesizer: FederatedSynthesizer) -> None:
    """The same model sampled with the target's draw raked to the released marginals, and without (control)."""
    raked = synthesizer.sample(2000)
    state = synthesizer.state_
    synthesizer.state_ = dataclasses.replace(state, config=state.config.replace(
        model_options={**state.config.model_options, "pair_sampling": False}))
    plain = synthesizer.sample(2000)
    synthesizer.state_ = state

    def gap(frame: pd.DataFrame) -> float:  # mean x of "high" rows minus "low" rows; ~1.5 in the real rows
        means = frame.groupby("y")["x"].mean()
        return float(means.get("high", 0.0) - means.get("low", 0.0))

    assert gap(raked) > gap(plain) + 0.1, (gap(raked), gap(plain))
    model = create_model(state.config.model, state.plan, state.config.model_options, seed=0, private=state.config.private)
    encoded = model.sample(state.weights, 500, seed=0)
    target = model.tokens[model.pair_target]
    assert (encoded[:, target.start:target.start + target.cardinality].sum(axis=1) == 1).all()  # one class per row


def test_under_secure_aggregation_the_pairs_are_summed_with_shares_of_the_noise() -> None:
    """The demo's three clinics (Adult's columns, its code book declared): the server holds only the sums."""
    from fedtab.connectors.public_domain import read_public_domain

    from fedtab.demo import demo_parties, demo_public_domain_path
    from fedtab.federation.coordinator import fit_plan
    from fedtab.federation.local import LocalTransport
    from fedtab.federation.party import StagedParty
    from fedtab.federation.privacy_run import confirm_plans, plan_privacy
    from fedtab.federation.schema_round import schema_round
    from fedtab.privacy.planning import ENCODER_DISTRIBUTED

    config = FedtabConfig(model="argn", rounds=1, seed=2, epsilon=30.0, accountant="rdp", target="income",
                          secure_aggregation=True, model_options={"pair_sampling": True},
                          public_domain=read_public_domain(demo_public_domain_path()))
    transport = LocalTransport([StagedParty(name, str(path)) for name, path in demo_parties().items()])
    schema = schema_round(transport, config=config)
    releases, selections = PlanFitter.release_plan(schema, "income")
    privacy = plan_privacy(config, transport.parties, encoder_releases=releases, partition_selections=selections)
    confirm_plans(transport, privacy)
    plan, _, _ = fit_plan(transport, config=config, schema=schema, privacy=privacy)
    assert plan.target == "income" and plan.pair_noise > 0
    assert all(a.steps(ENCODER_DISTRIBUTED) == releases for a in privacy.accountants.values())
    relationship = np.asarray(plan.column("relationship").pair_counts)  # rows: income classes
    husband = list(plan.column("relationship").vocabulary).index("Husband")
    rich, poor = (list(plan.column("income").vocabulary).index(c) for c in (">50K", "<=50K"))
    shares = relationship[:, husband] / relationship.sum(axis=1)
    assert shares[rich] > shares[poor] + 0.2, shares  # husbands are far likelier among >50K (Adult: ~0.75 vs ~0.3)
