r"""The policy precision gamma inferred under its Gamma prior, and the simulated dopamine it predicts.

SPM's ``spm_MDP_VB_X`` (Friston et al. 2015, "Active inference and epistemic value"; 2016, "Active inference and
learning"; Schwartenbeck et al. 2015, "The dopaminergic midbrain encodes the expected certainty about desired
outcomes") treats the precision ``gamma`` of the policy posterior as a hidden variable with a Gamma prior of shape 1
and rate ``beta`` (so ``E[1/gamma] = beta`` a priori: ``MDP.beta``). With ``b`` the posterior rate (``E[gamma] = 1/b``)
and the policies' expected free energies ``G`` and free energies ``F`` (both lower is better), each of ``num_iter``
iterations at a time step computes, from the current ``gamma = 1/b``,

    q(pi) = softmax(ln E - gamma G - F)        (the posterior over policies)
    p(pi) = softmax(ln E - gamma G)            (the prior, before the evidence F)
    b    <- b - (b - beta + (p(pi) - q(pi)) . G) / 2

(a half step of gradient descent on the free energy of ``b``; its fixed point is ``1/gamma = beta + (q - p) . G``,
SPM's ``dFdg``), and ``gamma = 1/b`` afterwards. The step's q(pi) is the last iteration's, computed with the precision
*before* that iteration's update (as SPM's ``u(:, t)``). ``b`` is carried from step to step within a trial and
starts each trial at ``beta``. Precision rises when the evidence favours the policies the prior already favoured
(``(q - p) . G < 0``) and falls when it surprises; SPM reads the iterations' ``gamma`` as tonic dopamine (``wn``)
and ``8 d(gamma)/dn + gamma / 8`` as the phasic response (``dn``): :func:`dopamine`.

The same update serves any agent that scores policies by ``G`` and ``F``: ``aif.SequenceOptions(precision=...)``
runs it in the Agent's cycle over time (``aif.sequence_control``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .checks import as_numbers, check_integer, check_positive, first_index
from .errors import ParameterError
from .maths import softmax


@dataclass(frozen=True)
class Precision:
    """The policy precision inferred under a Gamma prior (SPM's ``MDP.beta``), as an Agent setting.

    Attributes:
        beta: the prior's rate, ``E[1/gamma]`` before any evidence (SPM's ``MDP.beta``, default 1); the initial
            precision of every trial is ``1/beta``.
        num_iter: iterations of the update at each time step (SPM's ``Ni = 16``).
    """

    beta: float = 1.0
    num_iter: int = 16

    def __post_init__(self) -> None:
        check_positive(self.beta, "Precision.beta")
        check_integer(self.num_iter, "Precision.num_iter")


@dataclass(frozen=True)
class PrecisionStep:
    """What one time step's precision update computed.

    Attributes:
        q_pi: ``(P,)`` the step's policy posterior (SPM's ``u(:, t)``, ``R``).
        prior_pi: ``(P,)`` the policy prior of the same iteration, ``softmax(ln E - gamma G)``.
        rate: the posterior rate ``b`` after the step (``gamma = 1/b``; carried to the next step).
        gamma: ``(num_iter,)`` the precision after each iteration (SPM's ``wn``, tonic dopamine).
        q_pi_iter: ``(num_iter, P)`` the policy posterior at each iteration (SPM's ``un``).
    """

    q_pi: np.ndarray
    prior_pi: np.ndarray
    rate: float
    gamma: np.ndarray
    q_pi_iter: np.ndarray


def update_precision(G: ArrayLike, F: ArrayLike, ln_E: ArrayLike | float, rate: float, beta: float = 1.0,
                     num_iter: int = 16) -> PrecisionStep:
    """One time step of SPM's joint update of q(pi) and the precision (module docstring).

    Args:
        G: ``(P,)`` expected free energies, lower is better (SPM's ``-Q``, ``-MDP.G(:, t)``).
        F: ``(P,)`` free energies of the policies' pasts, lower is better (SPM's ``-MDP.F(:, t)``).
        ln_E: ``(P,)`` log prior over policies (habits; SPM's ``qE = spm_log(E)``) or a scalar (0: uniform).
        rate: the posterior rate ``b`` carried from the previous step (``beta`` at a trial's first step).
        beta: the prior rate (``Precision.beta``).
        num_iter: iterations (``Precision.num_iter``).

    Returns:
        a :class:`PrecisionStep`.
    """
    G = as_numbers(G, "G", ParameterError)
    F = as_numbers(F, "F", ParameterError)
    ln_E = np.broadcast_to(as_numbers(ln_E, "ln_E", ParameterError), G.shape)
    if G.ndim != 1 or F.shape != G.shape:
        raise ParameterError(f"G and F must both have shape (num_policies,), got {G.shape} and {F.shape}")
    for name, x in (("G", G), ("F", F)):
        if not np.isfinite(x).all():
            raise ParameterError(f"{name} has a non-finite entry at index {first_index(~np.isfinite(x))}")
    b, beta = check_positive(rate, "rate"), check_positive(beta, "beta")
    num_iter = check_integer(num_iter, "num_iter")
    gamma, q_iter = np.zeros(num_iter), np.zeros((num_iter, G.size))
    for i in range(num_iter):
        q_pi = softmax(ln_E - G / b - F)
        prior_pi = softmax(ln_E - G / b)
        # dF/db = b - beta + (q - p) . Q with Q = -G (SPM's eg); a half step down the gradient
        b = b - (b - beta - (q_pi - prior_pi) @ G) / 2
        if not b > 0:  # the step overshoots only when (p - q) . G < -b - beta, i.e. F far larger than G's spread
            raise ParameterError(f"the precision update left a non-positive rate {b:.3g} at iteration {i}: "
                                 f"reduce F's spread or raise beta ({beta})")
        gamma[i], q_iter[i] = 1.0 / b, q_pi
    return PrecisionStep(q_pi=q_pi, prior_pi=prior_pi, rate=b, gamma=gamma, q_pi_iter=q_iter)


def dopamine(gamma: ArrayLike) -> np.ndarray:
    """SPM's simulated phasic dopamine from the precision's trace: ``8 d(gamma)/dn + gamma / 8`` (``MDP.dn``).

    Args:
        gamma: ``(N,)`` the precision after each iteration over a trial (SPM's ``wn``; ``PrecisionStep.gamma``
            of its steps concatenated), ``N >= 2``.

    Returns:
        ``(N,)``; the derivative is ``np.gradient``'s (central differences inside, one-sided at the ends: MATLAB's
        ``gradient``).
    """
    gamma = as_numbers(gamma, "gamma", ParameterError)
    if gamma.ndim != 1 or gamma.size < 2:
        raise ParameterError(f"gamma must be a trace of at least two values, got shape {gamma.shape}")
    return 8.0 * np.gradient(gamma) + gamma / 8.0


__all__ = ["Precision", "PrecisionStep", "update_precision", "dopamine"]
