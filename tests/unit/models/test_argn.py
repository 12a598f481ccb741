"""The autoregressive plugin: lossless tokens, causal masks, a learnt relation, conditional sampling and its
refusals, and the device option."""

from __future__ import annotations

import warnings
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import torch

from fedtab import FederatedSynthesizer, FedtabConfig
from fedtab.connectors import load_party
from fedtab.errors import ConfigError
from fedtab.models.base import resolve_device
from fedtab.models.registry import create_model
from fedtab.threads import single_torch_thread
from fedtab.transformers import fit_plan

SMALL = {"embedding_dim": 8, "hidden_dims": [32], "bins": 16}


def _frame(rows: int, seed: int) -> pd.DataFrame:
    """``flag`` is true exactly for kind 'a'; ``amount`` sits near 0 for 'a' and near 8 otherwise."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["a", "b", "c"], size=rows, p=[0.3, 0.3, 0.4])
    return pd.DataFrame({"kind": kind, "flag": kind == "a",
                         "amount": np.where(kind == "a", rng.normal(0, 0.5, rows), rng.normal(8, 0.5, rows))})


@pytest.fixture(scope="module")
def plan_and_data():
    table = load_party("p", _frame(600, 0))
    plan = fit_plan([table], seed=0)
    return plan, plan.encode(table.frame, np.random.default_rng(0))


def test_tokens_keep_categories_and_modes_and_alpha_within_its_bin(plan_and_data):
    plan, data = plan_and_data
    model = create_model("argn", plan, SMALL)
    block = np.zeros_like(data)
    noise = torch.Generator().manual_seed(0)
    for token, index in zip(model.tokens, model.token_indices(torch.from_numpy(data))):
        model._write(block, token, index.numpy(), noise)
    discrete = [i for i in range(data.shape[1]) if i != model.tokens[[t.kind for t in model.tokens].index("bin")].start]
    np.testing.assert_array_equal(block[:, discrete], data[:, discrete])
    alpha = [t.start for t in model.tokens if t.kind == "bin"]
    assert np.abs(block[:, alpha] - data[:, alpha]).max() <= 2 / SMALL["bins"]
    assert np.abs(block[:, alpha] - data[:, alpha]).max() > 0  # a uniform draw inside the bin, not the bin's edge


def test_each_token_sees_only_the_tokens_before_it(plan_and_data):
    plan, _ = plan_and_data
    model = create_model("argn", plan, {**SMALL, "first_columns": "amount", "target": "kind"})
    assert model.column_order == ["amount", "flag", "kind"]
    mask = model.token_mask(model.column_order).numpy()
    ranks = model.token_ranks(model.column_order)
    assert [model.tokens[i].column for i in np.argsort(ranks)] == ["amount", "amount", "flag", "kind"]
    assert (mask.sum(axis=1) == ranks).all() and (np.diag(mask) == 0).all()
    assert (mask * mask.T == 0).all()  # never both ways: no token sees one that sees it


@pytest.mark.parametrize("options", [{}, {"first_columns": "amount", "target": "kind"}], ids=["plan order", "reordered"])
def test_a_fixed_order_reads_without_the_mask_what_the_mask_lets_through(plan_and_data, options):
    """A fixed order takes its reads as a view (plan order) or a gather (reordered), never the mask: its logits and
    gradients equal those of the same weights read through the mask."""
    plan, data = plan_and_data
    model = create_model("argn", plan, {**SMALL, **options})
    fast = model.build_modules()["argn"]
    masked = model.build_modules()["argn"]
    masked.load_state_dict(fast.state_dict())
    masked.masked = True
    assert not fast.masked
    real = torch.from_numpy(data[:64])
    one_hots = [torch.nn.functional.one_hot(y, t.cardinality).float() for y, t in zip(model.token_indices(real), model.tokens)]
    mask = model.token_mask(model.column_order)
    outputs = [torch.cat(network(one_hots, mask), dim=1) for network in (fast, masked)]
    torch.testing.assert_close(outputs[0], outputs[1])
    for out in outputs:
        out.square().sum().backward()
    for a, b in zip(fast.parameters(), masked.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("options, words", [
    ({"first_columns": "amount,nope"}, r"'nope' is not a modelled column"),
    ({"first_columns": "amount,amount"}, r"'amount' is named twice"),
    ({"first_columns": "kind", "target": "kind"}, r"the target 'kind' is listed first but goes last"),
    ({"order": "shuffled"}, r"order = one of \['fixed', 'random'\]; got 'shuffled'"),
])
def test_an_impossible_column_order_is_refused(plan_and_data, options, words):
    with pytest.raises(ConfigError, match=words):
        create_model("argn", plan_and_data[0], {**SMALL, **options})


def _flag_agreement(frame: pd.DataFrame) -> float:
    return float(((frame["kind"] == "a") == frame["flag"].astype(bool)).mean())


def test_training_learns_a_relation_an_untrained_network_lacks(plan_and_data):
    plan, data = plan_and_data
    model = create_model("argn", plan, SMALL, seed=0)
    weights = model.init_weights()
    untrained = plan.decode(model.sample(weights, 400, seed=1), np.random.default_rng(0))
    with single_torch_thread():  # as parties train
        trained = model.local_update(weights, data, epochs=25.0, batch_size=100, round_index=0, party="p").weights
    synthetic = plan.decode(model.sample(trained, 400, seed=1), np.random.default_rng(0))
    assert _flag_agreement(untrained) < 0.7  # control: the relation is not in the architecture
    assert _flag_agreement(synthetic) > 0.95
    amount_a = synthetic.loc[synthetic["kind"] == "a", "amount"]
    assert abs(amount_a.mean()) < 1.0 and abs(synthetic.loc[synthetic["kind"] != "a", "amount"].mean() - 8) < 1.0


def _fit(frame_rows: int = 400, **options) -> FederatedSynthesizer:  # type: ignore[no-untyped-def]
    config = FedtabConfig(model="argn", rounds=4, local_epochs=12.0, batch_size=100, seed=0, bgm_max_rounds=3,
                          model_options={**SMALL, **options})
    return FederatedSynthesizer(config, engine="local").fit({"a": _frame(frame_rows, 1), "b": _frame(frame_rows, 2)})


@pytest.fixture(scope="module")
def random_order():
    return _fit(order="random")


def test_conditional_sampling_fixes_a_column_and_generates_the_rest_given_it(random_order):
    rows = random_order.sample(300, seed=3, conditions={"kind": "a"})
    assert (rows["kind"] == "a").all()
    assert rows["flag"].astype(str).eq("True").mean() > 0.9 and abs(rows["amount"].mean()) < 1.5
    given_b = random_order.sample(300, seed=3, conditions={"flag": False})  # a later column fixed, an earlier generated
    assert (given_b["kind"] != "a").mean() > 0.9 and (given_b["flag"].astype(str) == "False").all()
    again = random_order.sample(300, seed=3, conditions={"kind": "a"})
    assert again.equals(rows)


def test_a_number_can_be_fixed_within_its_bounds(random_order):
    rows = random_order.sample(200, seed=4, conditions={"amount": 8.0})
    assert np.allclose(rows["amount"], 8.0, atol=0.5) and (rows["kind"] != "a").mean() > 0.9


@pytest.mark.parametrize("conditions, words", [
    ({"kind": "z"}, r"Cannot fix column 'kind' to 'z': not one of its categories \('c', 'a', 'b'\)"),
    ({"colour": "red"}, r"Cannot fix columns \['colour'\]: the model generates \['kind', 'flag', 'amount'\]"),
    ({"amount": 1e6}, r"Cannot fix column 'amount' to 1000000.0: its values lie in \["),
    ({"amount": "lots"}, r"it is a number or date column"),
    ({"kind": "__rare__"}, r"not one of its categories"),
])
def test_bad_conditions_are_refused_with_the_domain(random_order, conditions, words):
    with pytest.raises(ConfigError, match=words):
        random_order.sample(10, conditions=conditions)


def test_a_fixed_order_model_fixes_only_its_first_columns():
    fixed = _fit(frame_rows=150, first_columns="flag")
    assert (fixed.sample(20, conditions={"flag": True})["flag"].astype(str) == "True").all()
    with pytest.raises(ConfigError, match=r"trained in the fixed column order \['flag', 'kind', 'amount'\].*"
                                          r"order = \"random\", or first_columns = \"kind\""):
        fixed.sample(20, conditions={"kind": "a"})


def test_a_model_that_cannot_condition_says_so(demo_frames):
    config = FedtabConfig(model="tvae", rounds=1, seed=0, bgm_max_rounds=3,
                          model_options={"embedding_dim": 8, "compress_dims": [16], "decompress_dims": [16]})
    synth = FederatedSynthesizer(config, engine="local").fit({"a": _frame(120, 1)})
    with pytest.raises(ConfigError, match=r"Model 'tvae' cannot sample with fixed columns \(conditions on \['kind'\]\)"):
        synth.sample(5, conditions={"kind": "a"})
    assert len(synth.sample(5)) == 5


def test_the_device_is_validated_and_cuda_without_a_gpu_is_an_error():
    with pytest.raises(ConfigError, match=r"'device' must be one of \('cpu', 'cuda', 'auto'\)"):
        FedtabConfig(device="gpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == resolve_device("auto").type == "cuda"
        return
    with pytest.raises(ConfigError, match=r"device 'cuda' asks for a GPU, but torch .* finds none.*--device auto"):
        resolve_device("cuda")
    with pytest.warns(RuntimeWarning, match="no CUDA GPU here, so training and sampling run on the CPU"):
        assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cuda_without_a_gpu_fails_before_any_party_answers():
    sent = defaultdict(list)
    synth = FederatedSynthesizer(FedtabConfig(model="argn", rounds=1, device="cuda"), engine="local")
    with pytest.raises(ConfigError, match="device 'cuda' asks for a GPU"):
        synth.fit({"a": _frame(60, 1)}, tap=lambda party, kind, payload: sent[(party, kind)].append(payload))
    assert not sent


def test_auto_trains_and_samples_on_the_cpu_with_the_same_rows_as_cpu():
    frames = {"a": _frame(100, 1)}
    common = dict(model="argn", rounds=1, seed=0, bgm_max_rounds=3, model_options=SMALL)
    cpu = FederatedSynthesizer(FedtabConfig(**common), engine="local").fit(frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        auto = FederatedSynthesizer(FedtabConfig(**common, device="auto"), engine="local").fit(frames)
        if not torch.cuda.is_available():
            assert auto.sample(50, seed=2).equals(cpu.sample(50, seed=2))


def test_the_cli_samples_with_a_condition_and_refuses_a_bad_one_or_a_missing_gpu(cli, tmp_path):
    source = tmp_path / "a.csv"
    _frame(150, 1).to_csv(source, index=False)
    out_path = tmp_path / "s.csv"
    base = ("synthesize", "--party", f"a={source}", "--engine", "local", "--model", "argn", "--rounds", "1",
            "--rows", "40", "--out", str(out_path))
    code, out = cli(*base, "--condition", "kind=b")
    assert code == 0, out
    assert (pd.read_csv(out_path)["kind"] == "b").all()
    code, out = cli(*base, "--condition", "kind")
    assert code == 2 and "--condition must look like NAME=VALUE" in out
    code, out = cli(*base, "--condition", "kind=zebra")
    assert code == 2 and "Cannot fix column 'kind' to 'zebra'" in out and "Traceback" not in out
    if not torch.cuda.is_available():
        code, out = cli(*base, "--device", "cuda")
        assert code == 2 and "device 'cuda' asks for a GPU" in out


@pytest.mark.parametrize("declared", [{"target": "kind", "category_marginals": False}, {"target": None}],
                         ids=["the declared target", "any categorical column"])
def test_an_unconditional_sample_matches_the_released_shares(plan_and_data, declared):
    plan, _ = plan_and_data
    column = next(c for c in plan.columns if c.name == "kind")
    released = dict(zip(column.vocabulary, np.asarray(column.counts) / np.sum(column.counts)))
    switch = "target_marginal" if declared["target"] else "category_marginals"
    shares = {}
    for matched in (False, True):
        model = create_model("argn", plan, {**SMALL, **declared, switch: matched}, seed=0)
        weights = model.init_weights()
        head = next(i for i, t in enumerate(model.tokens) if t.column == "kind")
        weights[f"argn.heads.{head}.bias"] = np.array([6.0, 0.0, 0.0], dtype=np.float32)  # a drifted head
        frame = plan.decode(model.sample(weights, 2000, seed=1), np.random.default_rng(0))
        shares[matched] = frame["kind"].value_counts(normalize=True)
    first = column.vocabulary[0]
    assert shares[False][first] > 0.9  # control: the drifted head writes the first category almost always
    assert all(abs(shares[True][k] - v) < 0.03 for k, v in released.items()), (shares[True], released)


def test_under_dp_the_optimizer_takes_the_dp_learning_rate(plan_and_data):
    plan, _ = plan_and_data
    rates = {}
    for private in (False, True):
        model = create_model("argn", plan, {**SMALL, "learning_rate": 1e-3, "dp_learning_rate": 7e-3}, private=private)
        optimizer = model.make_optimizers(model.build_modules())["argn"]
        rates[private] = optimizer.param_groups[0]["lr"]
    assert rates == {False: 1e-3, True: 7e-3}
    defaults = create_model("argn", plan, SMALL).options
    assert defaults["dp_learning_rate"] > defaults["learning_rate"]  # DP-SGD's fewer steps need the longer stride
