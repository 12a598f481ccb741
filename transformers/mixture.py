"""Variational Bayes for 1-D Gaussian mixtures with a Dirichlet-process prior, split so it federates.

The E-step (``accumulate``/``e_step``) turns points into per-component sufficient statistics; it is
what a party runs. The M-step (``m_step``) turns summed statistics into variational parameters; it
is what the server runs. Summing statistics from several parties and then running the M-step is
exactly the M-step on the pooled points, which is why a federated fit matches a pooled one.

The update equations are those of scikit-learn's ``BayesianGaussianMixture`` (Bishop §10.2, with the
stick-breaking weight prior), specialised to one feature and vectorised over any leading batch
axes, so the server can fit every numerical column in one call. Every array of parameters has shape
``(..., K)``; points have shape ``(..., n)`` with a weight per point (0 marks padding).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln, logsumexp

_TINY = 10 * np.finfo(np.float64).eps
_LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class MixturePrior:
    """The priors scikit-learn uses by default, per column (arrays of shape ``(...,)``)."""

    mean: np.ndarray
    covariance: np.ndarray
    mean_precision: float = 1.0
    dof: float = 1.0
    weight_concentration: float = 1e-3
    reg_covar: float = 1e-6


@dataclass(frozen=True)
class MixtureState:
    """Variational parameters: stick-breaking Betas, Normal means, Wishart (here Gamma) precisions.

    ``cov`` is scikit-learn's ``covariances_``: the Wishart scale's inverse divided by ``dof``.
    """

    beta1: np.ndarray
    beta2: np.ndarray
    mean: np.ndarray
    mean_precision: np.ndarray
    dof: np.ndarray
    cov: np.ndarray

    def take(self, index: np.ndarray) -> MixtureState:
        """The parameters of a subset of the batch (the columns still iterating)."""
        return MixtureState(*(getattr(self, f)[index] for f in STATE_FIELDS))

    def put(self, index: np.ndarray, other: MixtureState) -> MixtureState:
        """A copy with the batch rows at ``index`` replaced by ``other``'s."""
        arrays = []
        for name in STATE_FIELDS:
            array = getattr(self, name).copy()
            array[index] = getattr(other, name)
            arrays.append(array)
        return MixtureState(*arrays)


STATE_FIELDS = ("beta1", "beta2", "mean", "mean_precision", "dof", "cov")


@dataclass(frozen=True)
class SufficientStats:
    """Per-component sums, centred on ``centre`` for numerical stability.

    ``nk = Σ w·r``, ``s1 = Σ w·r·(z − c)``, ``s2 = Σ w·r·(z − c)²``; ``entropy = −Σ w·r·log r`` and
    ``total = Σ w`` per batch row (they feed the lower bound used to stop).
    """

    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    entropy: np.ndarray
    total: np.ndarray
    centre: np.ndarray


def expected_log_weights(state: MixtureState) -> np.ndarray:
    """E[log π_k] under the stick-breaking posterior."""
    digamma_sum = digamma(state.beta1 + state.beta2)
    log_stick = digamma(state.beta2) - digamma_sum
    before = np.cumsum(log_stick, axis=-1) - log_stick
    return digamma(state.beta1) - digamma_sum + before


def weighted_log_prob(z: np.ndarray, state: MixtureState) -> np.ndarray:
    """E[log π_k + log N(z | μ_k, λ_k)] for points ``z`` (..., n) → (..., n, K)."""
    mean, cov = state.mean[..., None, :], state.cov[..., None, :]
    dof, mean_precision = state.dof[..., None, :], state.mean_precision[..., None, :]
    diff = z[..., :, None] - mean
    log_gauss = -0.5 * (_LOG_2PI + np.log(cov) + diff * diff / cov) - 0.5 * np.log(dof)
    log_lambda = math.log(2.0) + digamma(0.5 * dof)
    return log_gauss + 0.5 * (log_lambda - 1.0 / mean_precision) + expected_log_weights(state)[..., None, :]


def accumulate(z: np.ndarray, w: np.ndarray, resp: np.ndarray, centre: np.ndarray) -> SufficientStats:
    """Weighted per-component sums for given responsibilities ``resp`` (..., n, K)."""
    wr = w[..., :, None] * resp
    diff = z[..., :, None] - centre[..., None, :]
    nk = wr.sum(axis=-2)
    s1 = (wr * diff).sum(axis=-2)
    s2 = (wr * diff * diff).sum(axis=-2)
    zero = np.zeros(nk.shape[:-1])
    return SufficientStats(nk, s1, s2, zero, w.sum(axis=-1), centre)


def e_step(z: np.ndarray, w: np.ndarray, state: MixtureState) -> SufficientStats:
    """The party's half of an iteration: responsibilities → summed statistics (no row leaves)."""
    log_prob = weighted_log_prob(z, state)
    log_resp = log_prob - logsumexp(log_prob, axis=-1, keepdims=True)
    resp = np.exp(log_resp)
    stats = accumulate(z, w, resp, state.mean)
    entropy = -(w * (resp * log_resp).sum(axis=-1)).sum(axis=-1)
    return SufficientStats(stats.nk, stats.s1, stats.s2, entropy, stats.total, stats.centre)


def sum_stats(parts: list[SufficientStats]) -> SufficientStats:
    """Add statistics computed around the same centres (several parties → one pooled set)."""
    first = parts[0]
    return SufficientStats(
        nk=sum((p.nk for p in parts[1:]), first.nk),
        s1=sum((p.s1 for p in parts[1:]), first.s1),
        s2=sum((p.s2 for p in parts[1:]), first.s2),
        entropy=sum((p.entropy for p in parts[1:]), first.entropy),
        total=sum((p.total for p in parts[1:]), first.total),
        centre=first.centre,
    )


SPIKE_VARIANCE = 1e-14
"""A point-mass component's variance in standardised units: decode lands every draw on its value."""


def m_step(stats: SufficientStats, prior: MixturePrior, extra_variance: np.ndarray | float = 0.0, *,
           point_masses: bool = False) -> MixtureState:
    """The server's half: summed statistics → variational parameters.

    Noisy (differentially private) sums may be negative or fractional, so counts and second moments
    are clipped at 0. ``extra_variance`` adds a known within-point spread (Sheppard's correction
    when the points are histogram bin centres). With ``point_masses`` (exact statistics on rows
    only) a component's variance never exceeds its rows' own spread: the prior's variance would
    otherwise keep a spike (capital gain's 92 % zeros) about 1/√n of the column's spread wide, and
    decode would smear the zeros over 0…100. A component whose rows sit on one value becomes a
    point mass at their mean.
    """
    if point_masses:
        return _with_point_masses(stats, prior, m_step(stats, prior, extra_variance))
    nk_raw = np.clip(stats.nk, 0.0, None)
    nk = nk_raw + _TINY
    shift = stats.s1 / nk
    xk = stats.centre + shift
    sk = np.clip(stats.s2 / nk - shift * shift, 0.0, None) + np.asarray(extra_variance)[..., None] + prior.reg_covar

    tail = np.cumsum(nk[..., ::-1], axis=-1)[..., ::-1] - nk
    beta1 = 1.0 + nk
    beta2 = prior.weight_concentration + tail
    mean_precision = prior.mean_precision + nk
    prior_mean = np.asarray(prior.mean)[..., None]
    mean = (prior.mean_precision * prior_mean + nk * xk) / mean_precision
    dof = prior.dof + nk
    deviation = xk - prior_mean
    scatter = nk * sk + nk * prior.mean_precision / mean_precision * deviation * deviation
    cov = (np.asarray(prior.covariance)[..., None] + scatter) / dof
    return MixtureState(beta1, beta2, mean, mean_precision, dof, cov)


def _with_point_masses(stats: SufficientStats, prior: MixturePrior, state: MixtureState) -> MixtureState:
    nk = np.clip(stats.nk, 0.0, None) + _TINY
    shift = stats.s1 / nk
    spread = np.clip(stats.s2 / nk - shift * shift, 0.0, None)
    spike = (spread < prior.reg_covar) & (stats.nk >= 1.0)
    cov = np.where(spike, SPIKE_VARIANCE, np.minimum(state.cov, spread + prior.reg_covar))
    mean = np.where(spike, stats.centre + shift, state.mean)
    return dataclasses.replace(state, mean=mean, cov=cov)


def lower_bound(state: MixtureState, stats: SufficientStats) -> np.ndarray:
    """scikit-learn's (constant-free) evidence lower bound per unit of weight, shape (...,)."""
    log_det_precision_chol = -0.5 * np.log(state.cov) - 0.5 * np.log(state.dof)
    log_wishart = -(state.dof * log_det_precision_chol + state.dof * 0.5 * math.log(2.0) + gammaln(0.5 * state.dof))
    log_norm_weight = -betaln(state.beta1, state.beta2)
    bound = (
        stats.entropy
        - log_wishart.sum(axis=-1)
        - log_norm_weight.sum(axis=-1)
        - 0.5 * np.log(state.mean_precision).sum(axis=-1)
    )
    return bound / np.maximum(stats.total, 1.0)


def point_weights(state: MixtureState) -> np.ndarray:
    """The mixture weights a plug-in density uses (scikit-learn's ``weights_``)."""
    total = state.beta1 + state.beta2
    stick = state.beta2 / total
    before = np.cumprod(np.concatenate([np.ones_like(stick[..., :1]), stick[..., :-1]], axis=-1), axis=-1)
    weights = state.beta1 / total * before
    return weights / weights.sum(axis=-1, keepdims=True)


def kmeans_responsibilities(z: np.ndarray, w: np.ndarray, n_components: int, *, iterations: int = 25) -> np.ndarray:
    """Hard one-hot responsibilities from weighted 1-D k-means, started at weighted quantiles.

    Deterministic (no random restarts), batched, and cheap on a few hundred histogram bins; it plays
    the part of scikit-learn's k-means initialisation.
    """
    order = np.argsort(z, axis=-1, kind="stable")
    z_sorted = np.take_along_axis(z, order, axis=-1)
    cumulative = np.cumsum(np.take_along_axis(w, order, axis=-1), axis=-1)
    targets = cumulative[..., -1:] * (np.arange(n_components) + 0.5) / n_components
    index = (cumulative[..., None, :] < targets[..., :, None]).sum(axis=-1)
    centres = np.take_along_axis(z_sorted, np.minimum(index, z.shape[-1] - 1), axis=-1)
    for _ in range(iterations):
        labels = np.abs(z[..., :, None] - centres[..., None, :]).argmin(axis=-1)
        onehot = labels[..., None] == np.arange(n_components)
        mass = (w[..., :, None] * onehot).sum(axis=-2)
        sums = (w[..., :, None] * onehot * z[..., :, None]).sum(axis=-2)
        centres = np.where(mass > 0, sums / np.where(mass > 0, mass, 1.0), centres)
    labels = np.abs(z[..., :, None] - centres[..., None, :]).argmin(axis=-1)
    return (labels[..., None] == np.arange(n_components)).astype(np.float64)


def fit_weighted(
    z: np.ndarray,
    w: np.ndarray,
    prior: MixturePrior,
    n_components: int,
    *,
    max_iter: int = 100,
    tol: float = 1e-3,
    extra_variance: np.ndarray | float = 0.0,
) -> tuple[MixtureState, int]:
    """Fit a mixture on weighted points (histogram bin centres) entirely on the server.

    Stops when every batch row's lower bound per unit weight moved less than ``tol``.
    """
    resp = kmeans_responsibilities(z, w, n_components)
    centre = np.zeros(z.shape[:-1] + (n_components,))
    state = m_step(accumulate(z, w, resp, centre), prior, extra_variance)
    previous = np.full(z.shape[:-1], -np.inf)
    for iteration in range(1, max_iter + 1):
        stats = e_step(z, w, state)
        state = m_step(stats, prior, extra_variance)
        bound = lower_bound(state, stats)
        if np.all(np.abs(bound - previous) < tol):
            return state, iteration
        previous = bound
    return state, max_iter


def mixture_log_likelihood(x: np.ndarray, weights: np.ndarray, means: np.ndarray, stds: np.ndarray) -> float:
    """Mean plug-in log-density of ``x`` under Σ w_k N(μ_k, σ_k²): the figure tests compare."""
    x = np.asarray(x, dtype=np.float64)
    diff = (x[:, None] - means[None, :]) / stds[None, :]
    log_pdf = -0.5 * (_LOG_2PI + diff * diff) - np.log(stds)[None, :] + np.log(weights)[None, :]
    return float(logsumexp(log_pdf, axis=1).mean())
