"""The Agent's free-energy diagnostics, learning from smoothed beliefs, and learning with inference over time.

- ``agent.infer_states(obs, return_info=True)``: the VFE and its terms of the posterior, ``aif.free_energy_terms``
  (equal to pymdp 1.0's ``return_info`` values: ``tests/test_filtering.py``).
- ``Learning(online=False, smoothing=True)``: the episode's filtered beliefs are smoothed before A and B are
  learned, as pymdp 1.0's ``"ovf"`` agent does in ``infer_parameters``.
- ``Learning`` with ``MarginalMessagePassing`` / ``VariationalMessagePassing``: online from each step's belief
  about the present, offline from the last window's policy-averaged beliefs (SPM's learning at the end of a trial
  when the window spans it).
"""

from __future__ import annotations

import numpy as np
import pytest
from _reference import jax64

import aif
from aif.errors import ParameterError

TOL = 1e-10


def small_model(rng, num_states=(3, 2), num_obs=(3, 2), num_controls=(2, 2), counts=True):
    model = aif.random_model(rng, list(num_states), list(num_obs), list(num_controls))
    if not counts:
        return model
    pA = [a * 4.0 + 0.5 for a in model.A]
    pB = [b * 4.0 + 0.5 for b in model.B]
    pD = [d * 2.0 + 0.5 for d in model.D]
    return model.replace(A=None, B=None, D=None, pA=pA, pB=pB, pD=pD)


def test_return_info_is_the_vfe_of_the_posterior_under_the_prior_it_came_from():
    rng = np.random.default_rng(0)
    model = small_model(rng, counts=False)
    agent = aif.Agent.pymdp(model)
    for obs in ([0, 1], [2, 0], [1, 1]):
        prior = agent.prior
        qs, info = agent.infer_states(obs, return_info=True)
        method = agent.inference
        expected = aif.free_energy_terms(model, obs, qs, prior, guard=method.guard, soft_obs=method.soft_obs)
        assert info.vfe == pytest.approx(expected.vfe, abs=1e-14)
        assert info.complexity == pytest.approx(info.vfe + info.accuracy, abs=1e-14)
        agent.infer_policies()
        agent.sample_action()
    sequence = aif.Agent(model, inference=aif.MarginalMessagePassing(), inference_horizon=2)
    with pytest.raises(ParameterError, match="agent.F"):
        sequence.infer_states([0, 0], return_info=True)


def run(agent, observations):
    for obs in observations:
        agent.step(obs)
    return agent


def test_learning_from_smoothed_beliefs_equals_pymdp_ovf_infer_parameters():
    pytest.importorskip("pymdp.agent")
    jnp = jax64().numpy
    from pymdp import agent as pymdp_agent

    rng = np.random.default_rng(2)
    model = small_model(rng)
    observations = [[int(rng.integers(o)) for o in model.num_obs] for _ in range(5)]
    learning = aif.Learning(online=False, smoothing=True, mask_zeros=False, learn_D=False)
    agent = run(aif.Agent.pymdp(model, inference=aif.VariationalFiltering.pymdp(), learning=learning), observations)
    filtered = [np.stack([qs[f] for _, qs, _ in agent.history]) for f in range(model.num_factors)]
    actions = np.array([previous[1] for _, _, previous in agent.history[1:]])
    learned = agent.learn()

    ref = pymdp_agent.Agent([jnp.asarray(a)[None] for a in model.A], [jnp.asarray(b)[None] for b in model.B],
                            D=[jnp.asarray(d)[None] for d in model.D], pA=[jnp.asarray(p)[None] for p in model.pA],
                            pB=[jnp.asarray(p)[None] for p in model.pB], num_controls=model.num_controls,
                            inference_algo="ovf", learn_A=True, learn_B=True)
    ref = ref.infer_parameters([jnp.asarray(q)[None] for q in filtered],
                               [jnp.asarray([o[m] for o in observations])[None] for m in range(model.num_modalities)],
                               jnp.asarray(actions)[None])
    assert max(np.abs(p - np.asarray(r)[0]).max() for p, r in zip(learned.pA, ref.pA, strict=True)) < TOL
    assert max(np.abs(p - np.asarray(r)[0]).max() for p, r in zip(learned.pB, ref.pB, strict=True)) < TOL
    # smoothing changed the answer: the filtered beliefs give other counts
    plain = run(aif.Agent.pymdp(model, inference=aif.VariationalFiltering.pymdp(),
                                learning=aif.Learning(online=False, mask_zeros=False)), observations).learn()
    assert max(np.abs(p - q).max() for p, q in zip(plain.pA, learned.pA, strict=True)) > 1e-6


def spm_style_counts(model, agent, observations, lr=1.0):
    """Counts after a trial, written out from the last window: X_t = sum_pi q(pi) q(s_t | pi); pA += o_t x X_t,
    pB[..., u_t] += X_t+1 x X_t, pD += X_0 (SPM's spm_MDP_VB_X at the end of a trial)."""
    X = [[agent.policy_weights @ q[:, t] for q in agent.qs_seq] for t in range(len(observations))]
    pA = [p.copy() for p in model.pA]
    for obs, x in zip(observations, X, strict=True):
        for m, deps in enumerate(model.A_dependencies):
            pA[m][obs[m]] += lr * aif.maths.outer([x[f] for f in deps])
    pB = [p.copy() for p in model.pB]
    for t in range(1, len(observations)):
        for f in range(model.num_factors):
            pB[f][..., agent.actions_window[t - 1][f]] += lr * np.outer(X[t][f], X[t - 1][f])
    pD = [p + lr * x for p, x in zip(model.pD, X[0], strict=True)]
    return pA, pB, pD


@pytest.mark.parametrize("method", [aif.MarginalMessagePassing(), aif.VariationalMessagePassing()])
def test_offline_learning_over_a_trial_is_spms_end_of_trial_update(method):
    rng = np.random.default_rng(3)
    model = small_model(rng)
    observations = [[int(rng.integers(o)) for o in model.num_obs] for _ in range(4)]
    learning = aif.Learning(online=False, learn_D=True, mask_zeros=False)
    agent = aif.Agent(model, inference=method, inference_horizon=4, trial_length=4, learning=learning)
    for obs in observations:
        agent.infer_states(obs)
        agent.infer_policies()
        if agent.t < 3:
            agent.sample_action()
    pA, pB, pD = spm_style_counts(model, agent, observations)
    learned = agent.learn()
    for name, expected in (("pA", pA), ("pB", pB), ("pD", pD)):
        assert max(np.abs(a - b).max() for a, b in zip(getattr(learned, name), expected, strict=True)) < TOL, name
    assert agent.history == []


def test_online_learning_with_message_passing_adds_lr_per_step_and_stays_finite():
    rng = np.random.default_rng(4)
    model = small_model(rng)
    agent = aif.Agent(model, inference=aif.MarginalMessagePassing(), inference_horizon=2,
                      learning=aif.Learning(lr=0.5), rng=np.random.default_rng(0))
    for step in range(6):
        agent.step([int(rng.integers(o)) for o in model.num_obs])
        added = [(p - p0).sum() for p, p0 in zip(agent.model.pA, model.pA, strict=True)]
        assert np.allclose(added, 0.5 * (step + 1))  # each observation adds lr to every modality's counts
    assert all(np.isfinite(p).all() for p in agent.model.pB)
    agent.reset()
    assert len(agent.history) == 0


def test_learning_settings_are_checked():
    with pytest.raises(ParameterError, match="online=False"):
        aif.Learning(smoothing=True)
    with pytest.raises(ParameterError, match="True or False"):
        aif.Learning(online="yes")  # type: ignore[arg-type]
    model = small_model(np.random.default_rng(5))
    with pytest.raises(ParameterError, match="smooths over its window"):
        aif.Agent(model, inference=aif.MarginalMessagePassing(), learning=aif.Learning(online=False, smoothing=True))
