"""Deep temporal models: two Agents, one a step of the other's world (SPM's ``MDP.MDP`` and ``MDP.link``).

A higher level's step lasts a whole trial of the lower level (Friston et al. 2017, "Deep temporal models and active
inference"; SPM's ``DEM_demo_MDP_reading``). Some of the higher level's outcomes are hidden states of the lower
level, tied by link matrices ``L`` of shape ``(num_states_low[f], num_obs_high[m])``. At the higher level's step
``t``, with ``q(s_t)`` its predicted states (SPM: each policy's beliefs about step ``t``, averaged with the last
q(pi); the Bayesian model average ``X(:, t)``):

    descending:  D_low[f] = L  E_q(s_t)[A_high[m]]       (the predicted outcome o_m = A_m . q(s_t), then the link)
    ascending:   o_m      = L^T X_low[f](:, 1)           (the lower level's posterior over its first state)

The lower level runs its trial from that prior; its posterior over the linked factor's initial state (policies
averaged with the q(pi) of its last step) is the higher level's outcome ``o_m``, a probability vector. SPM's
likelihood of such an outcome is the mixture ``sum_o o[o] A_m[o, s]`` (``spm_dot(A, O)``), the ``"mixture"`` rule
of the inference methods' ``soft_obs`` (``MarginalMessagePassing``'s default). The lower trial stops early once the
entropy of its beliefs about the linked factors' initial states falls below ``stop_entropy`` (SPM's ``MDP.chi``,
1/64: "no further uncertainty to resolve").

This module composes two ``aif.Agent``: it holds no maths of its own beyond the two link products above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from .agent import Agent
from .checks import as_numbers, check_index, check_obs, check_obs_list, check_positive
from .errors import CallOrderError, ModelError, ParameterError, StrategyError
from .maths import LEGACY, factor_dot
from .sequence_control import policy_average
from .strategies import SequenceInference


def first_state(agent: Agent) -> list:
    """The beliefs of an Agent that infers over time about its window's first step, one ``(S_f,)`` per factor: each
    policy's, averaged with its latest q(pi) (SPM's ``X{f}(:, 1)``)."""
    a = cast(Any, agent)  # qs_seq and policy_weights are kept by the Agent's cycle over time
    return policy_average([q[:, 0] for q in a.qs_seq], a.policy_weights)


Act = Callable[[Agent], np.ndarray]
"""``act(agent) -> action``: makes an Agent act at the end of a step and returns the action; ``Agent.sample_action``
(its choice), or a function that makes it take a given action (a replay of SPM's fixed ``MDP.u``: with policies over
the trial the action taken changes only the world, with moving policies it is the past the policies share)."""


@dataclass(frozen=True)
class Link:
    """One higher-level outcome that is one lower-level hidden factor (an entry ``MDP.link{f, m}`` of SPM).

    Attributes:
        modality: the higher level's modality ``m``.
        factor: the lower level's factor ``f``.
        matrix: ``(num_states_low[f], num_obs_high[m])``, non-negative, every row and column summing to one (a
            permutation in SPM's demos), so that both ``L o`` (a prior) and ``L^T x`` (an outcome) are
            distributions.
    """

    modality: int
    factor: int
    matrix: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "modality", check_index(self.modality, "Link.modality"))
        object.__setattr__(self, "factor", check_index(self.factor, "Link.factor"))
        L = as_numbers(self.matrix, "Link.matrix", ModelError)
        if L.ndim != 2 or not np.isfinite(L).all() or (L < 0).any():
            raise ModelError(f"Link.matrix (modality {self.modality}, factor {self.factor}) must be a finite, "
                             f"non-negative 2-d array, got shape {L.shape}")
        for axis, what in ((0, "column"), (1, "row")):
            total = L.sum(axis=axis)
            bad = np.flatnonzero(np.abs(total - 1.0) > 1e-6)
            if bad.size:
                raise ModelError(f"Link.matrix (modality {self.modality}, factor {self.factor}): {what} {bad[0]} "
                                 f"sums to {total[bad[0]]:.6g}; every row and column must sum to 1")
        object.__setattr__(self, "matrix", L.copy())


@dataclass(frozen=True, eq=False)
class LowerTrial:
    """One trial of the lower level, run during one step of the higher level (SPM's ``MDP.mdp(t)``).

    Attributes:
        agent: the lower Agent at the trial's end (``qs_seq``, ``q_pi``, ``gamma_trace``, ``traces``, ...).
        prior: the initial-state prior it started from, one ``(S_f,)`` per factor (SPM's ``mdp.D``).
        F: ``(K, P)``, the free energy of each policy at each of the ``K`` steps it ran (lower is better).
        G: ``(K, P)``, the expected free energy of each policy at each step (lower is better).
        q_pi: ``(K, P)``, q(pi) at each step (SPM's ``mdp.R`` transposed).
        first: one ``(K, S_f)`` per factor: after each step, the beliefs about the trial's first state (policies
            averaged; what would have been sent up had the trial ended there; its last row is sent up).
        outcome: higher modality -> ``(num_obs_high[m],)``, the outcome it sent up.
    """

    agent: Agent
    prior: list
    F: np.ndarray
    G: np.ndarray
    q_pi: np.ndarray
    first: list
    outcome: dict

    @property
    def steps(self) -> int:
        """How many steps the trial ran (fewer than the trial length when it stopped early)."""
        return int(self.q_pi.shape[0])


class Hierarchy:
    """Two Agents as one deep temporal model: each step of ``high`` is a whole trial of ``low``.

    Args:
        high: the higher level's Agent; each of its steps reads the linked modalities from a lower trial.
        low: the lower level's Agent, an inference method over time whose window covers its whole trial
            (``inference_horizon == trial_length``: SPM's policies over the trial, ``SequenceOptions.spm()``, or
            moving policies over the trial so far), so that its beliefs about the trial's first state are kept.
            Its model's ``D`` for the linked factors is replaced at every higher step; its other arrays, learned
            or not, carry over (SPM's ``spm_MDP_update`` of ``MDP.MDP``).
        links: the ``Link`` of each linked lower factor (at most one per factor and per higher modality).
        stop_entropy: a lower trial ends after the step at which the summed entropy (nats, SPM's ``ln(x + 1e-16)``)
            of its beliefs about the linked factors' initial states is below this (SPM's ``chi``, 1/64); ``None``:
            every lower trial runs to its end.

    After ``step``: ``lower`` holds a ``LowerTrial`` per higher step of the current higher trial.
    """

    def __init__(self, high: Agent, low: Agent, links: Sequence[Link], stop_entropy: float | None = 1 / 64) -> None:
        for name, agent in (("high", high), ("low", low)):
            if not isinstance(agent, Agent):
                raise StrategyError(f"{name} must be an aif.Agent, got {type(agent).__name__}")
        if not isinstance(low.inference, SequenceInference) or low.trial_length is None \
                or low.inference_horizon != low.trial_length:
            raise ParameterError(f"the lower level must infer over its whole trial (an inference method over time, "
                                 f"trial_length = inference_horizon) to report its beliefs about its first state; got "
                                 f"{type(low.inference).__name__}, trial_length = {low.trial_length}, "
                                 f"inference_horizon = {low.inference_horizon}")
        links = list(links)
        if not links or not all(isinstance(link, Link) for link in links):
            raise StrategyError(f"links must be a non-empty list of aif.hierarchy.Link, got {links!r}")
        for key in ("modality", "factor"):
            seen = [getattr(link, key) for link in links]
            if len(set(seen)) < len(seen):
                raise ModelError(f"two links share {key} {max(seen, key=seen.count)}: link each {key} once")
        for link in links:
            m, f = link.modality, link.factor
            if m >= high.model.num_modalities:
                raise ModelError(f"Link.modality {m} is out of range: the higher model has "
                                 f"{high.model.num_modalities} modalities")
            if f >= low.model.num_factors:
                raise ModelError(f"Link.factor {f} is out of range: the lower model has {low.model.num_factors} "
                                 "factors")
            expected = (low.model.num_states[f], high.model.num_obs[m])
            if link.matrix.shape != expected:
                raise ModelError(f"Link.matrix (modality {m}, factor {f}) has shape {link.matrix.shape}, expected "
                                 f"{expected}: (lower states of factor {f}, higher outcomes of modality {m})")
        self.high, self.low, self.links = high, low, links
        self.stop_entropy = None if stop_entropy is None else check_positive(stop_entropy, "stop_entropy", zero=True)
        self.lower: list[LowerTrial] = []

    def reset(self) -> None:
        """Start a new trial of the higher level."""
        self.high.reset()
        self.lower = []

    def predicted_states(self) -> list:
        """The higher level's beliefs about its present step before it observes it, one ``(S_f,)`` per factor.

        At the trial's first step, the prior it was reset with; after a step of an agent that infers over time,
        each policy's beliefs about this step averaged with the last q(pi) (SPM's ``X(:, t)``, whatever action was
        taken); after a step of a one-step agent, its prediction under the action it took.
        """
        high = cast(Any, self.high)  # qs_seq and present are kept by the Agent's cycle over time
        if high.t > 0 and isinstance(high.inference, SequenceInference):
            return policy_average([q[:, high.present + 1] for q in high.qs_seq], high.q_pi)
        return high.prior

    def descend(self) -> list:
        """The lower level's initial-state prior for the present higher step: ``L E_q[A_high[m]]`` for each linked
        factor, the lower model's ``D`` for the others."""
        high, qs = self.high.model, self.predicted_states()
        D = list(self.low.model.D)
        for link in self.links:
            A_m, deps = high.A[link.modality], high.A_dependencies[link.modality]
            o_m = factor_dot(A_m, [qs[f] for f in deps], axes=range(1, A_m.ndim), keep=(0,))  # (O_m,)
            D[link.factor] = link.matrix @ o_m
        return D

    def ascend(self, low: Agent) -> dict:
        """Higher modality -> outcome ``L^T x``: ``x`` the lower agent's beliefs about its first state, averaged over
        its policies with its latest q(pi) (SPM's ``X{f}(:, 1)``)."""
        first = first_state(low)
        return {link.modality: link.matrix.T @ first[link.factor] for link in self.links}

    def settled(self, first: list) -> bool:
        """SPM's test for ending a lower trial: the entropy of ``first``, the lower level's beliefs about the linked
        factors' initial states (one ``(S_f,)`` per factor), is below ``stop_entropy`` (chi)."""
        if self.stop_entropy is None:
            return False
        # SPM's sum_f x' ln(x + 1e-16): its guard, so that the test falls on the same side of chi as SPM's
        entropy = -sum(float(first[link.factor] @ LEGACY(first[link.factor])) for link in self.links)
        return entropy < self.stop_entropy

    def run_lower(self, world: Any, act: Act | None = None) -> LowerTrial:
        """One trial of the lower level in ``world`` from the descending prior; recorded in ``lower``.

        ``world`` is a Gymnasium-style environment of the lower level (``reset() -> (obs, info)``, ``step(action) ->
        (obs, reward, terminated, truncated, info)``) whose hidden state the caller set for this higher step. ``act``
        makes the lower agent act after each step but the last (``Agent.sample_action`` when ``None``; see ``Act``).
        """
        act = Agent.sample_action if act is None else act
        prior = self.descend()
        low = self.low = dataclasses.replace(self.low, model=self.low.model.replace(D=prior))
        steps = cast(int, low.trial_length)  # checked when the hierarchy was built
        F, G, q_pi, first = [], [], [], []
        obs, _ = world.reset()
        for t in range(steps):
            low.infer_states(obs)
            q, g = low.infer_policies()
            F.append(cast(Any, low).F)  # each policy's free energy, kept by the Agent's cycle over time
            G.append(g)
            q_pi.append(q)
            first.append(first_state(low))
            if t == steps - 1 or self.settled(first[-1]):
                break
            obs = world.step(act(low))[0]
        trial = LowerTrial(low, prior, np.array(F), np.array(G), np.array(q_pi),
                           [np.array(q) for q in zip(*first, strict=True)], self.ascend(low))
        self.lower.append(trial)
        return trial

    def step(self, obs: Sequence, world: Any, act_low: Act | None = None,
             act_high: Act | None = None) -> np.ndarray | None:
        """One step of the higher level: a lower trial in ``world`` (``run_lower``), then the higher level infers
        its states and policies from ``obs`` with the linked modalities' outcomes from that trial.

        Args:
            obs: the higher level's observation, one entry per modality; the entries of linked modalities are
                replaced by the lower trial's outcome (pass ``None`` there).
            world: the lower level's environment for this step (see ``run_lower``).
            act_low, act_high: how each level's agent acts after its steps (``Agent.sample_action`` when ``None``;
                see ``Act``).

        Returns:
            the higher level's action ``(num_factors,)``, or ``None`` at the last step of its trial.
        """
        high = self.high
        if high.trial_length is not None and len(self.lower) >= high.trial_length:
            raise CallOrderError(f"the higher level's trial has {high.trial_length} steps: call reset() first")
        linked = {link.modality for link in self.links}
        obs = check_obs_list(obs, high.model.num_modalities, "the higher model")
        check_obs(high.model, [0 if m in linked else o for m, o in enumerate(obs)])  # before the lower trial runs
        trial = self.run_lower(world, act_low)
        obs = [trial.outcome.get(m, o) for m, o in enumerate(obs)]
        high.infer_states(obs)
        high.infer_policies()
        if high.trial_length is not None and high.t == high.trial_length - 1:
            return None
        return (Agent.sample_action if act_high is None else act_high)(high)


__all__ = ["Hierarchy", "Link", "LowerTrial", "Act"]
