"""SecAgg+ over fedtab's transport: the sum is exact to the fixed point, no party's masked vector shows its values,
dropouts above the threshold are survived and below it name the parties lost, and parties refuse bent protocol."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from fedtab.errors import FederationError, FedtabError, PartyError
from fedtab.federation import keys, secure_sum
from fedtab.federation.local import LocalTransport
from fedtab.federation.payload import Payload
from fedtab.federation.secure_sum import FRACTION_BITS, SumContext

QUANTUM = 2.0 ** -FRACTION_BITS


@dataclass(frozen=True)
class Holder:
    """A party whose statistics are given arrays (hand-checkable sums), and the step at which it crashes, if any."""

    name: str
    arrays: dict[str, np.ndarray] = field(hash=False)
    crash_at: str | None = None


class HolderWorker:
    """The party side of ``secure_sum`` with the holder's arrays as its stage statistics."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder

    def handle(self, message_type: str, payload: Payload, state: dict) -> tuple[Payload, dict]:
        name = self.holder.name
        if message_type == keys.HELLO:
            return Payload(config={keys.PARTY: name, keys.ROWS: 1}), state
        if message_type == self.holder.crash_at:
            return Payload.from_error(PartyError(f"{name} lost its connection"), fault=True), state
        try:
            return secure_sum.answer(name, message_type, payload, state, self._statistics)
        except FedtabError as error:
            return Payload.from_error(error), state

    def _statistics(self, request: Payload, state: dict, context: SumContext) -> tuple[Payload, dict]:
        return Payload(arrays=dict(self.holder.arrays), config={"seen": len(context.parties)}), state


def holders(count: int, crash: dict[str, str] | None = None) -> list[Holder]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(count):
        arrays = {"counts": rng.normal(3000, 2000, size=(4, 50)), "missing": rng.normal(0, 40, size=7),
                  "labels": np.array(["a", "b", ""])}
        out.append(Holder(f"party_{i}", arrays, (crash or {}).get(f"party_{i}")))
    return out


def run(parties: list[Holder], threshold: int, tap=None) -> secure_sum.SecureSum:
    transport = LocalTransport(parties, worker=HolderWorker, tap=tap)
    request = {p.name: Payload(config={keys.STAGE: "histogram"}) for p in parties}
    return secure_sum.secure_sum(transport, request, threshold=threshold, what="test statistics")


def test_the_sum_is_exact_to_the_fixed_point_and_labels_pass_through():
    parties = holders(4)
    summed = run(parties, threshold=3)
    for key in ("counts", "missing"):
        expected = sum(p.arrays[key] for p in parties)
        assert np.abs(summed.arrays[key] - expected).max() <= len(parties) * QUANTUM
    assert summed.arrays["labels"].tolist() == ["a", "b", ""]
    assert summed.parties == tuple(p.name for p in parties) and not summed.failures
    assert all(r.config["seen"] == 4 for r in summed.replies.values())


def test_no_message_a_party_sends_shows_its_statistics():
    """Positive control first: the plain values are recoverable from the plain reply; none of the masked ones are."""
    parties = holders(3)
    sent: dict[str, list[Payload]] = {}
    run(parties, threshold=2, tap=lambda party, kind, payload: sent.setdefault(party, []).append(payload))
    for holder in parties:
        own = np.concatenate([holder.arrays["counts"].ravel(), holder.arrays["missing"]])
        assert _best_match(own, [own + np.random.default_rng(1).normal(0, 50, own.size)]) > 0.99  # control: a noisy reply gives them away
        candidates = [_as_numbers(a)[: own.size] for p in sent[holder.name] for a in p.arrays.values()]
        candidates = [c for c in candidates if c.size == own.size]
        assert candidates, "the masked vector must have been sent"
        assert _best_match(own, candidates) < 0.5  # keys, ciphertexts and masked words: uncorrelated with the values


def test_a_party_lost_before_its_masked_vector_is_left_out_of_the_sum():
    parties = holders(3, crash={"party_1": keys.SECURE_COLLECT})
    summed = run(parties, threshold=2)
    expected = parties[0].arrays["counts"] + parties[2].arrays["counts"]
    assert np.abs(summed.arrays["counts"] - expected).max() <= 2 * QUANTUM
    assert summed.parties == ("party_0", "party_2") and "lost its connection" in summed.failures["party_1"]


def test_a_party_lost_after_its_masked_vector_is_still_summed():
    parties = holders(3, crash={"party_2": keys.SECURE_UNMASK})
    summed = run(parties, threshold=2)
    expected = sum(p.arrays["counts"] for p in parties)
    assert np.abs(summed.arrays["counts"] - expected).max() <= 3 * QUANTUM


def test_below_the_threshold_the_run_stops_naming_the_parties_lost():
    parties = holders(3, crash={"party_0": keys.SECURE_SHARE, "party_2": keys.SECURE_COLLECT})
    with pytest.raises(FederationError, match=r"(?s)needs 2.*'party_0': .*lost its connection.*'party_2'"):
        run(parties, threshold=2)


def test_a_threshold_of_half_the_parties_or_fewer_is_refused():
    with pytest.raises(PartyError, match="more than half"):
        run(holders(4), threshold=2)


def test_a_party_hands_over_its_shares_once():
    """Two unmask requests could yield both a party's self-mask and its private key: the second is refused."""
    parties = [p.name for p in holders(3)]
    states: dict[str, dict] = {p: {} for p in parties}

    def step(message_type: str, payloads: dict[str, Payload]) -> dict[str, Payload]:
        out = {}
        for party, payload in payloads.items():
            out[party], states[party] = secure_sum.answer(
                party, message_type, payload, states[party], lambda r, s, c: (Payload(arrays={"x": np.ones(3)}), s))
        return out

    setup = step(keys.SECURE_SETUP, {p: Payload(config={keys.SA_PARTIES: parties, keys.SA_THRESHOLD: 2}) for p in parties})
    public = {f"{k}{p}": setup[p].arrays[k] for p in parties for k in (keys.SA_PK1, keys.SA_PK2)}
    shared = step(keys.SECURE_SHARE, {p: Payload(arrays=public) for p in parties})
    step(keys.SECURE_COLLECT, {p: Payload(arrays={f"{keys.SA_CIPHER}{q}": shared[q].arrays[f"{keys.SA_CIPHER}{p}"]
                                                  for q in parties if q != p}, config={keys.SA_ACTIVE: parties})
                               for p in parties})
    unmask = Payload(config={keys.SA_ACTIVE: parties, keys.SA_DROPPED: []})
    step(keys.SECURE_UNMASK, {parties[0]: unmask})
    with pytest.raises(PartyError, match="expected the setup step"):
        step(keys.SECURE_UNMASK, {parties[0]: Payload(config={keys.SA_ACTIVE: parties[1:], keys.SA_DROPPED: parties[:1]})})


def _as_numbers(array: np.ndarray) -> np.ndarray:
    """Every reading a curious server could try: floats as they are, 64-bit words as fixed point."""
    if array.dtype == np.uint64:
        return array.view(np.int64).astype(np.float64) * QUANTUM
    if array.dtype.kind in "iuf":
        return array.astype(np.float64).ravel()
    return np.zeros(0)


def _best_match(own: np.ndarray, candidates: list[np.ndarray]) -> float:
    """The highest correlation of any candidate reading with the party's own values (1: recovered)."""
    return max(float(np.corrcoef(c, own)[0, 1]) if np.std(c) > 0 else 0.0 for c in candidates)
