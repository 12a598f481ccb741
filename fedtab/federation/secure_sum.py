"""Secure sums of encoder statistics and of FedAvg's training updates: SecAgg+ (Bell et al. 2020) built from Flower's own primitives, carried by
fedtab's ``Transport`` so it runs unchanged in the simulation engine, the deployment engine and the in-process
``LocalTransport``; the server only ever holds the sum over parties of a statistics stage, or of a training round's rows·weights
(``weighted_update``, ``secure_mean``).

Why not Flower's ``SecAggPlusWorkflow``: it drives the legacy FedAvg strategy and its ``secaggplus_mod`` acts on
messages of type ``train`` only, so it cannot carry fedtab's ``query.*`` statistics stages, their per-party
privacy plans or their refusals; it returns a weighted mean clipped to ±8 (statistics are counts in the
thousands); and its quantiser draws from numpy's global RNG and its mask generator folds a 32-byte seed into 32
bits. What is reused: ECDH key pairs (``flwr.supercore.primitives.asymmetric``), the key derivation and Fernet
encryption of the share exchange, Shamir secret sharing and the share framing
(``flwr.common.secure_aggregation``). Masks come from SHAKE-256 over the full secret; values are fixed point
(``FRACTION_BITS``) summed modulo 2⁶⁴.

Four exchanges per statistics stage, with fresh keys each time (nothing is reused across stages):

1. setup — each party makes two key pairs and sends the public halves;
2. share — the server broadcasts the keys; each party Shamir-shares (threshold t) its self-mask seed and
   its first private key, encrypting each share for its peer;
3. collect — the server forwards each party's shares and the stage's request; the party computes its
   statistics, fixes them to integers, adds its self-mask and ± a pairwise mask per peer, and sends them;
4. unmask — the server names who sent a masked vector (active) and who did not (dropped); each party hands
   over its shares of the active parties' self-mask seeds and of the dropped parties' private keys, never both
   for one party, and never twice.

With t parties or more at every step the server removes the masks and holds the sum of the active parties'
statistics; below t it learns nothing and the run stops, naming the parties it lost. A party refuses steps out
of order, a threshold of half the parties or fewer, and an unmask with fewer than t active parties.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from flwr.common.secure_aggregation.crypto.shamir import combine_shares, create_shares
from flwr.common.secure_aggregation.crypto.symmetric_encryption import decrypt, encrypt, generate_shared_key
from flwr.common.secure_aggregation.secaggplus_utils import share_keys_plaintext_concat, share_keys_plaintext_separate
from flwr.supercore.primitives.asymmetric import (bytes_to_private_key, bytes_to_public_key, generate_key_pairs,
                                                  private_key_to_bytes, public_key_to_bytes)

from fedtab.config import FedtabConfig
from fedtab.errors import ConfigError, FederationError, PartyError
from fedtab.federation import keys
from fedtab.federation.payload import Payload
from fedtab.federation.privacy_run import PrivacyRun
from fedtab.privacy.distributed import default_tolerance, summed_noise
from fedtab.schema import TableSchema
from fedtab.transformers.plan import DISCRETE_KINDS
from fedtab.transformers.private_party import public_categories, request_releases
from fedtab.transformers.protocol import StatsRequest

Weights = dict[str, np.ndarray]
FRACTION_BITS = 16
"""Fixed point: 2⁻¹⁶ ≈ 1.5e-5 per value and party, far below any DP noise; values up to ±2⁴⁰, sums exact up to ~2⁴⁶/P.
A FedAvg round sums rows·weights, so the mean's error is at most P·2⁻¹⁷/Σrows per weight (5 parties, 1,000 rows: 4e-8)."""
_SCALE = float(2**FRACTION_BITS)
_LIMIT = float(2**62)
_STEPS = ("setup", "share", "collect", "unmask")
Compute = Callable[[Payload, Weights, "SumContext"], tuple[Payload, Weights]]


@dataclass(frozen=True)
class SumContext:
    """What a party knows of the sum it is about to enter: every party set up for it, and the threshold."""

    parties: tuple[str, ...]
    threshold: int


@dataclass(frozen=True)
class SecureSum:
    """One stage's sum, and what the protocol cost."""

    arrays: dict[str, np.ndarray]
    replies: dict[str, Payload]
    """Each summed party's collect reply without its arrays (its DP report)."""
    parties: tuple[str, ...]
    failures: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    received: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- server


def check_secure_schema(schema: TableSchema) -> None:
    """Refuse, before anything is released, columns whose labels only a party could name: a sum is positional."""
    undeclared = [c.name for c in schema if c.kind in DISCRETE_KINDS and public_categories(c.kind, c.categories) is None]
    if undeclared:
        raise ConfigError(
            f"Secure aggregation needs every categorical column's categories declared; {undeclared} have none, so each "
            "party would have to name its own labels (partition selection), which cannot be summed. Declare them in the "
            "public domain (--public-domain, [public.<column>] categories = [...]), or drop --secure-aggregation."
        )


def secure_threshold(privacy: PrivacyRun | None, names: Sequence[str]) -> int:
    """SecAgg+'s threshold t = P − T: the fewest parties whose shares the server may unmask together."""
    plans = [] if privacy is None else list(privacy.plans.values())
    tolerated = plans[0].noise_tolerance if plans else default_tolerance(len(names))
    return len(names) - tolerated


def sum_noise(privacy: PrivacyRun, config: FedtabConfig) -> float:
    """The noise (per unit of sensitivity) on what the server merges: one party's σ, or the summed shares'."""
    if not config.secure_aggregation:
        return privacy.encoder_noise_multiplier
    plan = next(iter(privacy.plans.values()))
    return summed_noise(privacy.encoder_noise_multiplier, plan.noise_parties, plan.noise_tolerance)


def charge_lost(privacy: PrivacyRun | None, summed: SecureSum, request: StatsRequest) -> None:
    """A party lost before its masked statistics arrived may have computed, and charged, them: the server's mirror
    counts the stage's releases anyway, as it does a training round a party did not answer (never under-count).
    The party's own accountant stays the authority: its next report replaces the mirror."""
    if privacy is None:
        return
    needed = request_releases(request)
    for party in sorted(set(summed.failures) - set(summed.replies)):
        plan = privacy.plans[party]
        mirror = privacy.accountants.setdefault(party, plan.new_accountant(party))
        sigma, mechanism = plan.encoder_noise_multiplier or 1.0, plan.encoder_mechanism
        if needed.encoder_releases > needed.partition_selections:
            mirror.record_gaussian(noise_multiplier=sigma, mechanism=mechanism,
                                   releases=needed.encoder_releases - needed.partition_selections)
        if needed.partition_selections:
            mirror.record_gaussian(noise_multiplier=sigma, mechanism=mechanism, releases=needed.partition_selections,
                                   threshold_delta=plan.threshold_delta)


def secure_cost(summed: SecureSum) -> dict[str, float]:
    """What one secure sum cost, for the progress report: seconds, bytes each way, parties summed and lost."""
    return {"stage_s": summed.seconds, "bytes_sent": float(summed.sent), "bytes_received": float(summed.received),
            "secagg_parties": float(len(summed.parties)), "secagg_lost": float(len(summed.failures))}


def secure_sum(transport: object, payloads: Mapping[str, Payload], *, threshold: int, what: str) -> SecureSum:
    """The sum over parties of their replies to ``payloads`` (one stage's request each), by SecAgg+."""
    started = time.perf_counter()
    names = sorted(payloads)
    run = _Run(transport, threshold, what)
    setup = run.step(keys.SECURE_SETUP, {p: Payload(config={keys.SA_PARTIES: names, keys.SA_THRESHOLD: threshold})
                                         for p in names}, names)
    public = {f"{prefix}{p}": setup[p].arrays[prefix] for p in setup for prefix in (keys.SA_PK1, keys.SA_PK2)}
    shared = run.step(keys.SECURE_SHARE, {p: Payload(arrays=public) for p in setup}, list(setup))
    sources = sorted(shared)
    collect = {p: Payload(arrays={**payloads[p].arrays, **{f"{keys.SA_CIPHER}{q}": shared[q].arrays[f"{keys.SA_CIPHER}{p}"]
                                                           for q in sources if q != p}},
                          config={**payloads[p].config, keys.SA_ACTIVE: sources}) for p in sources}
    masked = run.step(keys.SECURE_COLLECT, collect, sources)
    active, dropped = sorted(masked), [p for p in sources if p not in masked]
    layout, clear = _agreed_layout(masked)
    shares = run.step(keys.SECURE_UNMASK, {p: Payload(config={keys.SA_ACTIVE: active, keys.SA_DROPPED: dropped})
                                           for p in active}, active)
    total = _unmasked(masked, shares, public, active, dropped)
    arrays = {**_decoded(total, layout), **clear}
    replies = {p: Payload(config=dict(masked[p].config), metrics=dict(masked[p].metrics)) for p in active}
    return SecureSum(arrays, replies, tuple(active), run.failures, run.sent, run.received, time.perf_counter() - started)


class _Run:
    """The exchanges of one secure sum: who is left after each, and the bytes they took."""

    def __init__(self, transport: object, threshold: int, what: str) -> None:
        self.transport, self.threshold, self.what = transport, threshold, what
        self.failures: dict[str, str] = {}
        self.sent = self.received = 0

    def step(self, message_type: str, payloads: Mapping[str, Payload], asked: Sequence[str]) -> dict[str, Payload]:
        replies = self.transport.exchange(message_type, payloads)  # type: ignore[attr-defined]
        self.sent += sum(getattr(replies, "sent", {}).values())
        self.received += sum(getattr(replies, "received", {}).values())
        recorded = getattr(replies, "failures", {})
        self.failures.update({p: recorded.get(p, "no reply") for p in asked if p not in replies})
        if len(replies) < self.threshold:
            lost = "; ".join(f"'{p}': {why}" for p, why in sorted(self.failures.items()))
            raise FederationError(
                f"Secure aggregation of the {self.what} stopped at its {message_type.split('_')[-1]} step: "
                f"{len(replies)} parties are left and SecAgg+ needs {self.threshold} to unmask the sum without exposing "
                f"a party's statistics. Lost: {lost}. Restart those parties and rerun, or allow more dropouts "
                "(--secure-dropouts; each party then adds more noise)."
            )
        return dict(replies)


def _agreed_layout(masked: Mapping[str, Payload]) -> tuple[list, dict[str, np.ndarray]]:
    """Every party's vector layout and public (text) arrays must agree, or the positional sum is meaningless."""
    first = sorted(masked)[0]
    layout = json.loads(str(masked[first].config[keys.SA_LAYOUT]))
    clear = {k[len(keys.SA_CLEAR):]: v for k, v in masked[first].arrays.items() if k.startswith(keys.SA_CLEAR)}
    for party, reply in masked.items():
        theirs = {k[len(keys.SA_CLEAR):]: v for k, v in reply.arrays.items() if k.startswith(keys.SA_CLEAR)}
        same = json.loads(str(reply.config[keys.SA_LAYOUT])) == layout and set(theirs) == set(clear) and all(
            np.array_equal(theirs[k], clear[k]) for k in clear)
        if not same:
            raise FederationError(
                f"Party '{party}' entered the secure sum with statistics laid out differently from party '{first}' "
                "(other keys, shapes or public labels); a sum needs the same layout from every party. Run every party on "
                "the same fedtab version, and declare every categorical column's categories."
            )
    return layout, clear


def _unmasked(masked: Mapping[str, Payload], shares: Mapping[str, Payload], public: Mapping[str, np.ndarray],
              active: list[str], dropped: list[str]) -> np.ndarray:
    """Σ masked vectors − every active party's self-mask ∓ the pairwise masks active parties shared with dropped ones."""
    total = np.zeros_like(masked[active[0]].arrays[keys.SA_MASKED])
    for party in active:
        total += masked[party].arrays[keys.SA_MASKED]
        seed = combine_shares([shares[h].arrays[f"{keys.SA_SEED_SHARE}{party}"].tobytes() for h in shares])
        total -= _mask(seed, total.size)
    for gone in dropped:
        secret = bytes_to_private_key(combine_shares([shares[h].arrays[f"{keys.SA_KEY_SHARE}{gone}"].tobytes()
                                                      for h in shares]))
        for party in active:
            pairwise = _mask(generate_shared_key(secret, bytes_to_public_key(public[f"{keys.SA_PK1}{party}"].tobytes())),
                             total.size)
            total = total - pairwise if party > gone else total + pairwise
    return total


def _decoded(total: np.ndarray, layout: list) -> dict[str, np.ndarray]:
    values = total.view(np.int64).astype(np.float64) / _SCALE
    out, start = {}, 0
    for key, shape in layout:
        size = int(np.prod(shape, dtype=np.int64))
        out[key] = values[start:start + size].reshape(shape)
        start += size
    return out


# ---------------------------------------------------------------------------------------------- party


def answer(party: str, message_type: str, payload: Payload, state: Weights, compute: Compute) -> tuple[Payload, Weights]:
    """One party's side of a secure-sum message; ``compute`` answers the stage's request in the collect step."""
    step = _STEPS[keys.SECURE_MESSAGES.index(message_type)]
    _check_order(party, step, state)
    if step == "setup":
        return _setup(party, payload, _cleared(state))
    if step == "share":
        return _share(party, payload, state)
    if step == "collect":
        return _collect(party, payload, state, compute)
    return _unmask(party, payload, state)


def _check_order(party: str, step: str, state: Weights) -> None:
    done = _text(state, "step")
    expected = "setup" if done in (None, "unmask") else _STEPS[_STEPS.index(done) + 1]
    if step != expected and step != "setup":
        raise PartyError(f"Party '{party}' refuses the secure sum's {step} step: it expected the {expected} step "
                         f"(last done: {done or 'none'}). The server must run SecAgg+'s steps in order, each once.")


def _setup(party: str, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
    parties = [str(p) for p in payload.config[keys.SA_PARTIES]]  # type: ignore[union-attr]
    threshold = int(payload.config[keys.SA_THRESHOLD])  # type: ignore[arg-type]
    if party not in parties or len(set(parties)) != len(parties) or not (len(parties) < 2 * threshold <= 2 * len(parties)):
        raise PartyError(f"Party '{party}' refuses a secure sum over {len(parties)} parties with threshold {threshold}: "
                         "it must name this party once, every party once, and need more than half of them to unmask "
                         "(else colluders could unmask a party alone).")
    sk1, pk1 = generate_key_pairs()
    sk2, pk2 = generate_key_pairs()
    state = {**state, **_put("step", "setup"), **_put("parties", parties), **_put("threshold", threshold),
             _key("sk1"): _array(private_key_to_bytes(sk1)), _key("sk2"): _array(private_key_to_bytes(sk2))}
    return Payload(arrays={keys.SA_PK1: _array(public_key_to_bytes(pk1)), keys.SA_PK2: _array(public_key_to_bytes(pk2))}), state


def _share(party: str, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
    parties, threshold = _parties(state), int(_text(state, "threshold"))  # type: ignore[arg-type]
    peers = sorted(k[len(keys.SA_PK1):] for k in payload.arrays if k.startswith(keys.SA_PK1))
    if party not in peers or not set(peers) <= set(parties) or len(peers) < threshold:
        raise PartyError(f"Party '{party}' refuses the key share: {len(peers)} parties' keys for a sum that needs "
                         f"{threshold} of {parties}.")
    seed = os.urandom(32)
    seed_shares = create_shares(seed, threshold, len(parties))
    key_shares = create_shares(state[_key("sk1")].tobytes(), threshold, len(parties))
    sk2 = bytes_to_private_key(state[_key("sk2")].tobytes())
    me = parties.index(party)
    out, kept = {}, {_key("b"): _array(seed), **_put("step", "share")}
    kept |= {_key(f"pk1.{p}"): payload.arrays[f"{keys.SA_PK1}{p}"] for p in peers}
    kept |= {_key(f"bshare.{party}"): _array(seed_shares[me]), _key(f"skshare.{party}"): _array(key_shares[me])}
    for peer in peers:
        if peer == party:
            continue
        index = parties.index(peer)
        secret = generate_shared_key(sk2, bytes_to_public_key(payload.arrays[f"{keys.SA_PK2}{peer}"].tobytes()))
        kept[_key(f"ek.{peer}")] = _array(secret)
        plain = share_keys_plaintext_concat(me, index, seed_shares[index], key_shares[index])
        out[f"{keys.SA_CIPHER}{peer}"] = _array(encrypt(secret, plain))
    return Payload(arrays=out), {**state, **kept}


def _collect(party: str, payload: Payload, state: Weights, compute: Compute) -> tuple[Payload, Weights]:
    parties, threshold = _parties(state), int(_text(state, "threshold"))  # type: ignore[arg-type]
    sources = [str(p) for p in payload.config[keys.SA_ACTIVE]]  # type: ignore[union-attr]
    if party not in sources or len(sources) < threshold:
        raise PartyError(f"Party '{party}' refuses to send masked statistics: {len(sources)} parties would enter a sum "
                         f"that needs {threshold}.")
    held = {}
    for source in sources:
        if source == party:
            continue
        plain = decrypt(state[_key(f"ek.{source}")].tobytes(), payload.arrays[f"{keys.SA_CIPHER}{source}"].tobytes())
        src, dst, seed_share, key_share = share_keys_plaintext_separate(plain)
        if (src, dst) != (parties.index(source), parties.index(party)):
            raise PartyError(f"Party '{party}' received key shares from '{source}' addressed elsewhere; refusing the sum.")
        held |= {_key(f"bshare.{source}"): _array(seed_share), _key(f"skshare.{source}"): _array(key_share)}
    request = Payload(arrays={k: v for k, v in payload.arrays.items() if not k.startswith(keys.SA_CIPHER)},
                      config={k: v for k, v in payload.config.items() if k != keys.SA_ACTIVE})
    reply, state = compute(request, state, SumContext(tuple(parties), threshold))
    if reply.config.get(keys.ERROR_KIND) is not None:
        return reply, state
    vector, layout, clear = _encoded(party, reply.arrays)
    vector += _mask(state[_key("b")].tobytes(), vector.size)
    sk1 = bytes_to_private_key(state[_key("sk1")].tobytes())
    for peer in sources:
        if peer != party:
            pairwise = _mask(generate_shared_key(sk1, bytes_to_public_key(state[_key(f"pk1.{peer}")].tobytes())), vector.size)
            vector = vector + pairwise if party > peer else vector - pairwise
    arrays = {keys.SA_MASKED: vector, **{f"{keys.SA_CLEAR}{k}": v for k, v in clear.items()}}
    config = {**reply.config, keys.SA_LAYOUT: json.dumps(layout)}
    return Payload(arrays=arrays, config=config, metrics=reply.metrics), {**state, **held, **_put("step", "collect")}


def _unmask(party: str, payload: Payload, state: Weights) -> tuple[Payload, Weights]:
    threshold = int(_text(state, "threshold"))  # type: ignore[arg-type]
    active = [str(p) for p in payload.config[keys.SA_ACTIVE]]  # type: ignore[union-attr]
    dropped = [str(p) for p in payload.config[keys.SA_DROPPED]]  # type: ignore[union-attr]
    if set(active) & set(dropped) or party not in active or len(active) < threshold:
        raise PartyError(f"Party '{party}' refuses to unmask: {len(active)} active parties (threshold {threshold}), "
                         f"{len(set(active) & set(dropped))} named both active and dropped.")
    missing = [p for p in active + dropped if _key(f"bshare.{p}") not in state]
    if missing:
        raise PartyError(f"Party '{party}' holds no key shares of {missing}; they did not enter this sum.")
    out = {f"{keys.SA_SEED_SHARE}{p}": state[_key(f"bshare.{p}")] for p in active}
    out |= {f"{keys.SA_KEY_SHARE}{p}": state[_key(f"skshare.{p}")] for p in dropped}
    return Payload(arrays=out), {**_cleared(state), **_put("step", "unmask")}


def weighted_update(party: str, weights: Mapping[str, np.ndarray], rows: int, round_index: int) -> Weights:
    """The party's side of a secure FedAvg round: rows·weights and its rows, checked to fit the fixed point.

    The party weighs itself by its own training rows (the count its hello declared), so a server cannot weigh every
    other party by 0 and read one party's update off the sum; the server checks the summed rows (``secure_mean``)."""
    what = f"model update of training round {round_index + 1}"
    weighted = {k: np.asarray(v, dtype=np.float64) * rows for k, v in weights.items()}
    for key, value in weighted.items():
        check_fixed_point(party, value, f"{what} ('{key}' × {rows} rows)")
    return {**weighted, keys.SA_ROWS: np.array([float(rows)])}


def secure_mean(summed: SecureSum, global_weights: Weights, rows: Mapping[str, int], round_index: int) -> Weights:
    """The server's side: Σ rows·weights / Σ rows, after checking the sum has the model's arrays, is finite, and
    weighs the summed parties by the rows they declared (no single update is there to screen)."""
    arrays = dict(summed.arrays)
    total = float(np.asarray(arrays.pop(keys.SA_ROWS, np.zeros(1))).ravel()[0])
    declared = sum(rows[p] for p in summed.parties)
    where = f"training round {round_index + 1}, parties {list(summed.parties)}"
    if abs(total - declared) > 0.5:
        raise FederationError(f"The secure sum of {where} weighs the updates by {total:g} rows; those parties declared "
                              f"{declared}. A party weighs its update by rows it did not declare: rerun without it.")
    if set(arrays) != set(global_weights) or any(np.size(arrays[k]) != np.size(v) for k, v in global_weights.items()):
        raise FederationError(f"The secure sum of {where} does not have the model's arrays; run every party on the "
                              "same fedtab version and model options.")
    bad = [k for k, v in arrays.items() if not np.isfinite(v).all()]
    if bad:
        raise FederationError(f"The secure sum of {where} is not finite (e.g. '{bad[0]}'); rerun, and check the parties.")
    out: Weights = {}
    for key, value in global_weights.items():
        mean = np.asarray(arrays[key], dtype=np.float64).reshape(np.shape(value)) / total
        out[key] = np.rint(mean).astype(value.dtype) if np.issubdtype(value.dtype, np.integer) else mean.astype(value.dtype)
    return out


def check_fixed_point(party: str, values: np.ndarray, what: str) -> None:
    """A value a secure sum cannot carry exactly (not finite, or beyond ±2⁴⁰) is an error, never a silent clip."""
    scaled = np.asarray(values, dtype=np.float64) * _SCALE
    if not np.isfinite(scaled).all() or (np.abs(scaled) >= _LIMIT / 64).any():
        raise PartyError(f"Party '{party}' has {what} that are not finite or beyond ±{_LIMIT / 64 / _SCALE:.3g}; "
                         "a secure sum cannot carry them. Check the party's table (and its training: lower the learning "
                         "rate if its model diverged).")


def _encoded(party: str, arrays: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list, dict[str, np.ndarray]]:
    """Numbers as fixed-point integers modulo 2⁶⁴ (one vector, keys in sorted order); text travels as it is."""
    numeric = {k: np.asarray(v, dtype=np.float64) for k, v in sorted(arrays.items()) if np.asarray(v).dtype.kind in "biuf"}
    clear = {k: np.asarray(v) for k, v in arrays.items() if k not in numeric}
    flat = np.concatenate([v.ravel() for v in numeric.values()]) if numeric else np.zeros(0)
    check_fixed_point(party, flat, "statistics")
    vector = np.round(flat * _SCALE).astype(np.int64).view(np.uint64)
    return vector, [[k, list(v.shape)] for k, v in numeric.items()], clear


def _mask(seed: bytes, size: int) -> np.ndarray:
    """A mask from the whole secret: SHAKE-256 as a stream of uniform 64-bit words."""
    return np.frombuffer(hashlib.shake_256(b"fedtab-secagg-mask\0" + seed).digest(8 * size), dtype=np.uint64).copy()


def _key(name: str) -> str:
    return f"{keys.SA_STATE}{name}"


def _array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8).copy()


def _put(name: str, value: object) -> Weights:
    return {_key(name): _array(json.dumps(value).encode())}


def _text(state: Weights, name: str) -> object:
    value = state.get(_key(name))
    return None if value is None else json.loads(value.tobytes().decode())


def _parties(state: Weights) -> list[str]:
    return [str(p) for p in _text(state, "parties") or []]  # type: ignore[union-attr]


def _cleared(state: Weights) -> Weights:
    """The party's state without any secret of an earlier sum."""
    return {k: v for k, v in state.items() if not k.startswith(keys.SA_STATE)}
