"""A K-armed Bernoulli bandit, optionally with reversals: arm ``k`` pays a reward with probability ``p_k``.

The task is a sequence of pulls in one episode (bound it with the number of steps, as the T-maze). Indices:

- factor 0, arm (``K + 1``): 0 start (nothing pulled yet), ``k + 1`` arm ``k`` was pulled last. Action ``u``
  pulls arm ``u`` from anywhere.
- factor 1, clock (``L + 1``): the number of pulls made, saturating at ``L = max(reversals) + 1`` (one state,
  never changing, without reversals). It exists so that the reversals are part of the arrays: the process is a
  POMDP that ``POMDPEnv`` and ``POMDPVectorEnv`` sample like any other.
- modality 0, arm (``K + 1``): the arm state, without noise.
- modality 1, outcome (3): 0 null (at the start), 1 reward, 2 no reward. After pull ``i`` (counted from 0) of
  arm ``k``: reward with probability ``arm_probabilities(i)[k]``, which is ``p_k``, or ``p`` in reverse order
  after an odd number of the ``reversals`` (the pull indices from which the order flips; for two arms, a swap).

The agent does not know ``p``. ``generative_model`` gives it one of two models, without the clock:

- ``kind="counts"`` (any K; learning and novelty): the arm factor alone; ``pA[1]`` holds ``prior_count`` for
  reward and no reward in every arm's column, so ``A[1]`` there is 50/50 and Dirichlet learning
  (``aif.Learning``) estimates each arm's probability from its pulls; the ``aif.Novelty`` term values pulls of
  little-known arms; forgetting (``Learning.forgetting``) lets it track reversals. Counts of what the agent
  knows (the arm observation, the start's null outcome) are ``1e4`` times their probability, with exact zeros
  for the impossible outcomes (so pymdp.legacy's novelty of an arm with counts ``a`` is ``1 / sum(a)``).
- ``kind="context"`` (the "which arm is good" model): a second factor, the good arm (``K`` states, uniform
  prior), with the agent knowing a good arm pays with ``good_prob`` and the others with ``bad_prob``; state
  information gain (``aif.InfoGain``) values the pulls that tell which arm is good, and ``switch_prob`` (the
  chance per pull that the good arm changes, spread evenly over the others) lets beliefs follow reversals.
  Exact for two arms with ``p = (good_prob, bad_prob)`` in either order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..checks import as_numbers, check_choice, check_fraction, check_integer, check_positive, check_real
from ..errors import ParameterError
from ..model import GenerativeModel
from .pomdp import KNOWN_COUNT, POMDPEnv

START = 0  # arm-factor state before the first pull
NULL, REWARD, NO_REWARD = range(3)
OUTCOME_NAMES = ("null", "reward", "no reward")


def _probabilities(probs: Any, name: str = "probs") -> np.ndarray:
    """``probs`` as a float ``(K,)`` array with K >= 2 entries in [0, 1] (``ParameterError``)."""
    p = as_numbers(probs, name, ParameterError)
    if p.ndim != 1 or p.size < 2 or not ((p >= 0) & (p <= 1)).all():
        raise ParameterError(f"{name} must be a 1-D array of at least 2 reward probabilities in [0, 1], "
                             f"got {probs!r:.200}")
    return p


def _reversals(reversals: Any) -> tuple[int, ...]:
    """Strictly increasing positive pull indices (``ParameterError``)."""
    r = as_numbers(reversals, "reversals", ParameterError, None)
    if r.size == 0:
        return ()
    if r.ndim != 1 or not np.issubdtype(r.dtype, np.integer) or (r < 1).any() or (np.diff(r) <= 0).any():
        raise ParameterError(f"reversals must be strictly increasing integer pull indices >= 1, got {reversals!r:.200}")
    return tuple(int(x) for x in r)


def bandit_arrays(probs: ArrayLike, reversals: Sequence[int] = ()) -> tuple[list, list, list]:
    """The bandit's generative process.

    Args:
        probs: ``(K,)`` reward probability of each arm (K >= 2) before the first reversal.
        reversals: strictly increasing pull indices (>= 1) from which the arms' order is reversed.

    Returns:
        ``(A, B, D)`` with ``A_dependencies = [[0], [0, 1]]``: ``A = [(K+1, K+1), (3, K+1, L+1)]``,
        ``B = [(K+1, K+1, K), (L+1, L+1, 1)]``, ``D = [start, clock 0]``, where ``L = max(reversals) + 1``
        (``L = 0`` without reversals).
    """
    p, r = _probabilities(probs), _reversals(reversals)
    K, L = p.size, (r[-1] + 1 if r else 0)
    A_arm = np.eye(K + 1)
    A_out = np.zeros((3, K + 1, L + 1))
    A_out[NULL, START] = 1.0
    for c in range(L + 1):
        # the clock after pull i is i + 1: pull i has seen the reversals r <= i, i.e. r < c
        p_c = p[::-1] if sum(x < c for x in r) % 2 else p
        A_out[REWARD, 1:, c], A_out[NO_REWARD, 1:, c] = p_c, 1.0 - p_c
    # B_arm[next, prev, u] = 1 when next == u + 1: every action pulls arm u.
    B_arm = np.broadcast_to(np.eye(K + 1)[:, 1:][:, None, :], (K + 1, K + 1, K)).copy()
    B_clock = np.zeros((L + 1, L + 1, 1))
    B_clock[np.minimum(np.arange(L + 1) + 1, L), np.arange(L + 1), 0] = 1.0
    D = [np.eye(K + 1)[START], np.eye(L + 1)[0]]
    return [A_arm, A_out], [B_arm, B_clock], D


class Bandit(POMDPEnv):
    """A K-armed Bernoulli bandit as a Gymnasium environment.

    Args:
        probs: ``(K,)`` reward probabilities (K >= 2); ``None`` draws ``num_arms`` of them uniformly in [0, 1]
            from ``np.random.default_rng(seed)``.
        num_arms: the number of arms to draw (``probs=None`` only; 2 by default).
        seed: the seed of those draws (``probs=None`` only); it does not seed the episode's outcomes, which
            ``reset(seed=...)`` does.
        reversals: pull indices (counted from 0, strictly increasing, >= 1) from which the arms' probabilities
            are reversed in order (``p[::-1]``; for two arms, a swap). Empty: a stationary bandit.

    Observation: ``MultiDiscrete([K + 1, 3])`` (arm, outcome); action: ``Discrete(K)``, the arm to pull;
    reward: 1 for a reward outcome, else 0. ``info["state"]`` is ``(arm state, clock)``. The episode never ends
    by itself. Attributes ``probs`` ``(K,)`` and ``reversals`` hold the settings.
    """

    def __init__(self, probs: ArrayLike | None = None, *, num_arms: int | None = None, seed: int | None = None,
                 reversals: Sequence[int] = ()) -> None:
        if probs is None:
            K = 2 if num_arms is None else check_integer(num_arms, "num_arms")
            if K < 2:
                raise ParameterError(f"num_arms must be at least 2, got {K}")
            p = np.random.default_rng(seed).random(K)
        else:
            if seed is not None:
                raise ParameterError("seed draws the probabilities when probs is None; give probs or seed, not both")
            p = _probabilities(probs)
            if num_arms is not None and check_integer(num_arms, "num_arms") != p.size:
                raise ParameterError(f"num_arms = {num_arms} but probs has {p.size} entries")
        self.probs = p.copy()
        self.probs.flags.writeable = False
        self.reversals = _reversals(reversals)
        self.num_arms = p.size
        super().__init__(*bandit_arrays(p, self.reversals), A_dependencies=[[0], [0, 1]],
                         B_dependencies=[[0], [1]], control_factor=0)

    def arm_probabilities(self, pull: int) -> np.ndarray:
        """``(K,)``: the arms' reward probabilities at pull ``pull`` (counted from 0) of an episode."""
        if not (isinstance(pull, (int, np.integer)) and not isinstance(pull, bool) and pull >= 0):
            raise ParameterError(f"pull must be an integer >= 0, got {pull!r}")
        flips = sum(r <= pull for r in self.reversals)
        return self.probs[::-1].copy() if flips % 2 else self.probs.copy()

    def reward(self, state: Any, obs: Any) -> float:
        return 1.0 if int(obs[1]) == REWARD else 0.0

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``POMDPEnv.reward_tables``: 1 for a reward."""
        return self._outcome_rewards(1, {REWARD: 1.0})

    def generative_model(self, reward_preference: float = 2.0, *, kind: str = "counts",
                         prior_count: float | None = None, good_prob: float | None = None,
                         bad_prob: float | None = None, switch_prob: float | None = None) -> GenerativeModel:
        """The model of an agent that does not know the arms' probabilities (see the module's docstring).

        Args:
            reward_preference: ``C[1] = [0, reward_preference, 0]`` (log-preferences over null, reward, no
                reward; not normalised).
            kind: ``"counts"`` (learnable ``A`` through ``pA``) or ``"context"`` (a hidden "good arm" factor).
            prior_count: ``"counts"``: the Dirichlet count of reward and of no reward in every arm (1 if None).
            good_prob, bad_prob: ``"context"``: the reward probability the agent gives the good arm and the
                others; by default the largest of ``probs`` and the mean of the others.
            switch_prob: ``"context"``: the probability per pull that the good arm changes (0 if None).

        Returns:
            ``"counts"``: one factor (arm, ``K + 1``), ``A = [(K+1, K+1), (3, K+1)]``, ``B = [(K+1, K+1, K)]``,
            ``D = [start]``, ``pA`` set. ``"context"``: factors (arm, good arm ``K``), ``A_dependencies =
            [[0], [0, 1]]``, ``A = [(K+1, K+1), (3, K+1, K)]``, ``B = [(K+1, K+1, K), (K, K, 1)]``,
            ``D = [start, uniform]``, no counts.
        """
        kind = check_choice(kind, "kind", ("counts", "context"))
        given = {"prior_count": prior_count, "good_prob": good_prob, "bad_prob": bad_prob, "switch_prob": switch_prob}
        mine = ("prior_count",) if kind == "counts" else ("good_prob", "bad_prob", "switch_prob")
        stray = [name for name, value in given.items() if value is not None and name not in mine]
        if stray:
            raise ParameterError(f"{', '.join(stray)} do not apply to kind={kind!r} (it takes {', '.join(mine)})")
        K = self.num_arms
        C_out = np.array([0.0, check_real(reward_preference, "reward_preference"), 0.0])
        A_arm = np.eye(K + 1)
        B_arm = self.B[0].copy()
        if kind == "counts":
            count = 1.0 if prior_count is None else check_positive(prior_count, "prior_count")
            A_out = np.zeros((3, K + 1))
            A_out[NULL, START] = 1.0
            A_out[REWARD:, 1:] = 0.5
            # What the agent knows is pinned by large counts, and its impossible outcomes are zero counts: structural
            # zeros, which learning leaves at zero and the novelty term masks (a small positive floor there would add
            # 1/a0 to pymdp.legacy's novelty of every arm, as if a third outcome were possible).
            pA = [KNOWN_COUNT * A_arm, KNOWN_COUNT * A_out]
            pA[1][REWARD:, 1:] = count
            return GenerativeModel([A_arm, A_out], [B_arm], [np.zeros(K + 1), C_out], [np.eye(K + 1)[START]], pA=pA)
        others = (self.probs.sum() - self.probs.max()) / (K - 1)
        good = float(self.probs.max()) if good_prob is None else check_fraction(good_prob, "good_prob")
        bad = float(others) if bad_prob is None else check_fraction(bad_prob, "bad_prob")
        h = 0.0 if switch_prob is None else check_fraction(switch_prob, "switch_prob")
        A_out = np.zeros((3, K + 1, K))
        A_out[NULL, START] = 1.0
        is_good = np.eye(K)  # [arm k, good arm c]
        A_out[REWARD, 1:] = np.where(is_good, good, bad)
        A_out[NO_REWARD, 1:] = 1.0 - A_out[REWARD, 1:]
        B_good = ((1.0 - h) * np.eye(K) + h / (K - 1) * (1.0 - np.eye(K)))[:, :, None]
        return GenerativeModel([A_arm, A_out], [B_arm, B_good], [np.zeros(K + 1), C_out],
                               [np.eye(K + 1)[START], np.full(K, 1.0 / K)], A_dependencies=[[0], [0, 1]])


__all__ = ["Bandit", "bandit_arrays", "OUTCOME_NAMES", "START", "NULL", "REWARD", "NO_REWARD"]
