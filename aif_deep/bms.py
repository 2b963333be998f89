r"""Random-effects Bayesian model selection over subjects (Stephan et al. 2009; Rigoux et al. 2014).

Given each subject's log evidence under each model, ``L: (N, K)`` (Laplace or ELBO, ``aif_deep.bayes``), the
models' frequencies in the population ``r ~ Dir(alpha0)`` and each subject's model ``m_n ~ Cat(r)`` are inferred by
variational Bayes (SPM's ``spm_BMS``, VBA's ``VBA_groupBMC``):

    u_nk  = L_nk + psi(alpha_k) - psi(sum_k alpha_k)
    g_nk  = softmax_k(u_nk)                       (posterior that subject n used model k)
    alpha = alpha0 + sum_n g_n                    (until alpha stops changing)

Exceedance probability ``xp_k = p(r_k > r_j for all j != k)``: exact for two models (a Beta tail), by sampling the
Dirichlet otherwise. The protected exceedance probability allows for the null that all frequencies are equal:
``pxp = (1 - BOR) xp + BOR / K`` with the Bayesian omnibus risk ``BOR = 1 / (1 + exp(F1 - F0))``, ``F0`` the
evidence that every model is equally frequent (``sum_n logsumexp_k(L_nk) - N ln K``) and ``F1`` the free energy of
the random-effects model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betainc, digamma, gammaln, logsumexp, softmax

from aif.checks import check_index, check_positive
from aif.errors import ParameterError


@dataclass(frozen=True)
class BMSResult:
    """Group Bayesian model selection.

    Attributes:
        alpha: ``(K,)`` Dirichlet counts of the posterior over model frequencies.
        frequencies: ``(K,)`` expected frequencies ``alpha / sum(alpha)``.
        responsibilities: ``(N, K)`` posterior probability of each model for each subject.
        exceedance: ``(K,)`` exceedance probabilities.
        protected_exceedance: ``(K,)`` protected exceedance probabilities.
        bor: Bayesian omnibus risk (the posterior probability that all models are equally frequent).
        free_energy: ``F1``, the free energy of the random-effects model; ``null_evidence``: ``F0``.
    """

    alpha: np.ndarray
    frequencies: np.ndarray
    responsibilities: np.ndarray
    exceedance: np.ndarray
    protected_exceedance: np.ndarray
    bor: float
    free_energy: float
    null_evidence: float


def exceedance(alpha: ArrayLike, rng: np.random.Generator | None = None, samples: int = 100_000) -> np.ndarray:
    """``p(r_k > r_j, all j != k)`` under ``Dir(alpha)``: ``(K,)``; exact for two models, sampled with ``rng`` for
    more (``samples`` draws)."""
    alpha = np.asarray(alpha, dtype=float)
    if alpha.ndim != 1 or len(alpha) < 2 or not (np.isfinite(alpha) & (alpha > 0)).all():
        raise ParameterError(f"alpha must hold two or more positive counts, got {alpha}")
    if len(alpha) == 2:
        # p(r_0 > 1/2) for r_0 ~ Beta(alpha_0, alpha_1): the regularised incomplete beta function's tail.
        xp0 = 1.0 - betainc(alpha[0], alpha[1], 0.5)
        return np.array([xp0, 1.0 - xp0])
    if not isinstance(rng, np.random.Generator):
        raise ParameterError("exceedance probabilities of more than two models are sampled: give rng, a "
                             "np.random.Generator")
    winners = rng.dirichlet(alpha, check_index(samples, "samples")).argmax(1)
    return np.bincount(winners, minlength=len(alpha)) / len(winners)


def group_bms(log_evidence: ArrayLike, alpha0: float = 1.0, rng: np.random.Generator | None = None,
              tol: float = 1e-10, max_iter: int = 10_000, samples: int = 100_000) -> BMSResult:
    """Random-effects Bayesian model selection (module docstring).

    Args:
        log_evidence: ``(N, K)``: ln p(data_n | model k), N >= 1 subjects, K >= 2 models.
        alpha0: the prior Dirichlet count of every model (1: uniform over frequencies).
        rng: for the exceedance probabilities of more than two models.
        tol, max_iter: stop when ``alpha`` changes by less than ``tol`` (sum of absolute changes).
        samples: Dirichlet draws for the exceedance probabilities of more than two models.
    """
    L = np.asarray(log_evidence, dtype=float)
    if L.ndim != 2 or L.shape[1] < 2 or L.shape[0] < 1 or not np.isfinite(L).all():
        raise ParameterError(f"log_evidence must be finite (subjects, models) with two or more models, got shape "
                             f"{L.shape}")
    check_positive(alpha0, "alpha0")
    N, K = L.shape
    prior = np.full(K, float(alpha0))
    alpha = prior.copy()
    for _ in range(check_index(max_iter, "max_iter")):
        g = softmax(L + digamma(alpha) - digamma(alpha.sum()), axis=1)
        new = prior + g.sum(0)
        done = np.abs(new - alpha).sum() < tol
        alpha = new
        if done:
            break
    g = softmax(L + digamma(alpha) - digamma(alpha.sum()), axis=1)
    e_log_r = digamma(alpha) - digamma(alpha.sum())
    # F1 = E[ln p(L | m)] + E[ln p(m | r)] - E[ln q(m)] - KL(Dir(alpha) || Dir(alpha0))
    log_g = np.log(np.where(g > 0, g, 1.0))
    expected = (g * (L + e_log_r - log_g)).sum()
    kl = (gammaln(alpha.sum()) - gammaln(alpha).sum() - gammaln(prior.sum()) + gammaln(prior).sum()
          + ((alpha - prior) * e_log_r).sum())
    F1 = float(expected - kl)
    F0 = float((logsumexp(L, axis=1) - np.log(K)).sum())
    bor = float(1.0 / (1.0 + np.exp(F1 - F0)))
    xp = exceedance(alpha, rng, samples)
    return BMSResult(alpha=alpha, frequencies=alpha / alpha.sum(), responsibilities=g, exceedance=xp,
                     protected_exceedance=(1 - bor) * xp + bor / K, bor=bor, free_energy=F1, null_evidence=F0)
