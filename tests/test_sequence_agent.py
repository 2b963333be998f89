"""The Agent with inference over time: pymdp.legacy's MMP Agent in a closed T-maze loop, SPM's whole trial
(vbx_test_1a) replayed by the Agent, per-policy EFE against legacy's ``update_posterior_policies_full_factorized``
and against the one-step EFE of ``aif.control`` (an independent route to the same numbers), behaviour and errors.
"""

import contextlib
import io

import numpy as np
import pytest
from scipy.special import log_softmax

import aif
import aif.io
from aif.control import expected_free_energy, predict_policies
from aif.envs import TMaze
from aif.errors import BeliefError, CallOrderError, ParameterError, PolicyError, StrategyError
from aif.planning import PolicyEnumeration
from aif.sequence import MarginalMessagePassing, VariationalMessagePassing
from aif.sequence_control import (
    SequenceOptions,
    policy_average,
    sequence_expected_free_energy,
    sequence_policy_posterior,
)
from aif.strategies import SequenceInference

REF_TOL = 1e-8


def _objarr(xs):
    out = np.empty(len(xs), dtype=object)
    for i, x in enumerate(xs):
        out[i] = np.array(x)
    return out


# --------------------------------------------------------------------------------------------------------
# pymdp.legacy's Agent(inference_algo="MMP") in a closed loop


def _legacy_run_mmp_kernel(A, mb_dict, B, B_factor_list, prev_obs, policies, prev_actions=None, prior=None,
                           policy_sep_prior=True, **kwargs):
    """The legacy Agent's state inference with legacy's ``run_mmp`` (the port checked against SPM) in place
    of its ``run_mmp_factorized`` (see ``test_legacy_agent_unmodified_at_the_demo_settings``)."""
    from pymdp.legacy import inference

    return inference.update_posterior_states_full(A, B, prev_obs, policies, prev_actions, prior,
                                                  policy_sep_prior, **kwargs)


def _closed_loop(model, make_env, W, policy_len, separated, seed, steps):
    """Run pymdp.legacy's MMP Agent and ours side by side, each in its own environment with the same seed.

    Returns the actions of each and the largest deviations over the steps of q_pi, G (ours is legacy's -G),
    F (ours is legacy's -F, up to a constant shared by the policies) and the policy-conditioned beliefs; and,
    under ``"sign"``, how far SPM's sign of F would have moved q_pi.
    """
    from pymdp.legacy.agent import Agent as LegacyAgent

    np.random.seed(seed)  # legacy breaks ties between action marginals with the global generator
    legacy = LegacyAgent(A=_objarr(model.A), B=_objarr(model.B), C=_objarr(model.C), D=_objarr(model.D),
                         control_fac_idx=[0], policy_len=policy_len, inference_algo="MMP",
                         inference_horizon=W, policy_sep_prior=separated, use_BMA=not separated)
    ours = aif.Agent.pymdp_legacy_mmp(model, policy_len, inference_horizon=W, policy_sep_prior=separated)
    env_legacy, env_ours = make_env(), make_env()
    obs_legacy, _ = env_legacy.reset(seed=seed)
    obs_ours, _ = env_ours.reset(seed=seed)
    actions_legacy, actions_ours, dev = [], [], {"q_pi": 0.0, "G": 0.0, "F": 0.0, "qs": 0.0}
    sign = 0.0
    for _ in range(steps):
        with contextlib.redirect_stdout(io.StringIO()):                # legacy's message passing prints
            legacy.infer_states([int(o) for o in obs_legacy])
            q_pi, neg_G = legacy.infer_policies()
            a_legacy = legacy.sample_action().astype(int)
        a_ours = ours.step(obs_ours)
        dev["q_pi"] = max(dev["q_pi"], np.abs(q_pi - ours.q_pi).max())
        dev["G"] = max(dev["G"], np.abs(-neg_G - ours.G).max())
        dev["F"] = max(dev["F"], np.ptp(-legacy.F - ours.F))
        dev["qs"] = max(dev["qs"], max(np.abs(legacy.qs[p][k][f] - ours.qs_seq[f][p, k]).max()
                                       for p in range(len(q_pi)) for k in range(len(legacy.qs[p]))
                                       for f in range(model.num_factors)))
        sign = max(sign, np.abs(sequence_policy_posterior(ours.G, ours.F, None, ours.gamma) - ours.q_pi).max())
        actions_legacy.append(int(a_legacy[0]))
        actions_ours.append(int(a_ours[0]))
        obs_legacy, *_ = env_legacy.step(int(a_legacy[0]))
        obs_ours, *_ = env_ours.step(int(a_ours[0]))
    return actions_legacy, actions_ours, dev, sign


@pytest.mark.parametrize("W, policy_len, separated, seed", [(3, 2, True, 1), (2, 1, False, 2)])
def test_tmaze_closed_loop_matches_legacy_mmp_agent(monkeypatch, W, policy_len, separated, seed):
    """20 steps in a T-maze whose arms pay with probability 0.8 (the agent revisits the cue and switches
    arms after losses): the same actions, and q_pi, G, F and every policy's beliefs to 1e-8, with the
    window prior per policy (``policy_sep_prior``) or averaged (legacy's default ``use_BMA``).

    Legacy's Agent runs here with legacy's ``run_mmp`` in place of ``run_mmp_factorized`` (the next test
    says why); the windowing, the priors, G from each policy's beliefs, the sign of F and the action
    selection are the Agent's own.
    """
    from pymdp.legacy import inference

    monkeypatch.setattr(inference, "update_posterior_states_full_factorized", _legacy_run_mmp_kernel)
    model = TMaze(reward_prob=0.8).generative_model()
    actions_legacy, actions_ours, dev, _ = _closed_loop(model, lambda: TMaze(reward_prob=0.8), W, policy_len,
                                                        separated, seed, steps=20)
    assert actions_ours == actions_legacy
    assert actions_ours[0] == 3 and len(set(actions_ours)) >= 2              # cue first, then the arms
    for name, value in dev.items():
        assert value <= REF_TOL, f"{name}: max deviation {value:.3g}"


def test_random_pomdp_closed_loop_matches_legacy_mmp_agent(monkeypatch):
    """The same comparison in a random POMDP (two factors, two modalities, stochastic transitions, 25
    steps), where F differs between policies: in the T-maze it does not (deterministic moves, so the
    policies' windows explain the past equally well) and the sign of F cannot matter there. Here SPM's
    sign would move q_pi by more than 1e-3, and legacy's sign reproduces legacy to 1e-8."""
    from pymdp.legacy import inference

    from aif.envs.pomdp import POMDPEnv

    monkeypatch.setattr(inference, "update_posterior_states_full_factorized", _legacy_run_mmp_kernel)
    model = aif.random_model(np.random.default_rng(2), [3, 2], [3, 2], [3, 1], concentration=1.0, C_scale=2.0)
    actions_legacy, actions_ours, dev, sign = _closed_loop(
        model, lambda: POMDPEnv(model.A, model.B, model.D), 3, 2, True, seed=0, steps=25)
    assert actions_ours == actions_legacy and len(set(actions_ours)) == 3
    for name, value in dev.items():
        assert value <= REF_TOL, f"{name}: max deviation {value:.3g}"
    assert sign > 1e-3


def test_legacy_agent_unmodified_at_the_demo_settings():
    """Legacy's MMP Agent as shipped, in pymdp's T-maze demo (arms pay with probability 0.98), 20 steps:
    the same actions and q_pi to 1e-8.

    Its kernel ``run_mmp_factorized`` is not ``run_mmp`` (the SPM port): it halves the backward message
    (``lnB_future *= 0.5``) and sums per-modality log-likelihoods instead of taking the log of the joint.
    The policy-conditioned beliefs, hence G, differ (by ~1e-5 here); q(pi) is saturated in this demo, so
    q_pi and the actions still agree. With arms that pay 0.8 the actions part ways within 15 steps.
    """
    model = TMaze().generative_model()
    actions_legacy, actions_ours, dev, _ = _closed_loop(model, TMaze, 2, 1, False, seed=0, steps=20)
    assert actions_ours == actions_legacy
    assert dev["q_pi"] <= REF_TOL
    assert dev["G"] > 1e-6                                                  # the kernels differ


# --------------------------------------------------------------------------------------------------------
# SPM: vbx_test_1a replayed by the Agent


def test_vbx_test_1a_whole_trial_by_the_agent(spm_file):
    """The Agent alone (window 3, trial of 10, one-step policies, SPM's sign of F, C by absolute time)
    reproduces SPM's posteriors at every step (the last iteration of xn, to 1e-8), cuts the policies to
    nothing at the trial's last step, and chooses SPM's actions."""
    m = spm_file("vbx_test_1a")
    A, B = [np.array(a, float) for a in m["A"][0]], [np.array(b, float) for b in m["B"][0]]
    model = aif.GenerativeModel(A, B, C=[np.array(m["C"][0][0], dtype=float)])
    obs = m["obs"].astype(int)[0] - 1
    W, T = int(m["t_horizon"][0, 0]), len(obs)
    xn = m["xn"][0][0]                                                      # (iter, state, step, time, policy)
    agent = aif.Agent(model, 1, inference=MarginalMessagePassing(num_iter=10), inference_horizon=W,
                      trial_length=T, efe=aif.EFEOptions.pymdp_legacy())
    actions, dev = [], 0.0
    for t in range(T):
        agent.infer_states([obs[t]])
        agent.infer_policies()
        start, steps = max(0, t - W + 1), agent.qs_seq[0].shape[1]
        assert steps == min(t + 1, W) + (1 if t < T - 1 else 0)
        dev = max(dev, np.abs(agent.qs_seq[0] - xn[-1, :, start : start + steps, t, :].T).max())
        if t < T - 1:
            actions.append(int(agent.sample_action()[0]))
    assert dev <= REF_TOL, f"xn: max deviation {dev:.3g}"
    assert actions == list(m["actions"].astype(int)[0] - 1)
    agent.sample_action()
    with pytest.raises(CallOrderError, match="trial has 10 observations"):
        agent.infer_states([obs[0]])


# --------------------------------------------------------------------------------------------------------
# The per-policy EFE


def _random_case(rng, dirichlet=False):
    nf, nm = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    ns, no = list(rng.integers(2, 4, size=nf)), list(rng.integers(2, 4, size=nm))
    nu = list(rng.integers(1, 4, size=nf))
    A_deps = B_deps = None
    if nf > 1 and rng.random() < 0.5:
        A_deps = [sorted(rng.choice(nf, size=int(rng.integers(1, nf + 1)), replace=False).tolist()) for _ in no]
    if nf > 1 and rng.random() < 0.5:
        B_deps = [sorted({f} | set(rng.choice(nf, size=int(rng.integers(0, nf)), replace=False).tolist()))
                  for f in range(nf)]
    model = aif.random_model(rng, ns, no, nu, A_dependencies=A_deps, B_dependencies=B_deps,
                             concentration=float(rng.choice([0.3, 1.0])), dirichlet=dirichlet)
    T_C = int(rng.integers(1, 5))
    model = model.replace(C=[rng.normal(size=(o, T_C)) for o in no])          # time-varying preferences
    H, P = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    policies = np.stack([rng.integers(u, size=(P, H)) for u in nu], axis=-1)
    qs = [rng.dirichlet(np.ones(s)) for s in ns]
    return model, policies, qs


def _predicted_sequence(model, qs, policies):
    """Each policy's beliefs rolled forward with B from ``qs``: ``[q_f (P, H + 1, S_f)]``."""
    P, H, _ = policies.shape
    steps = [[np.broadcast_to(q, (P, len(q))) for q in qs]]
    for k in range(H):
        steps.append(predict_policies(model, steps[-1], policies[:, k]))
    return [np.stack([s[f] for s in steps], axis=1) for f in range(model.num_factors)]


@pytest.mark.parametrize("options, joint", [(aif.EFEOptions(), False), (aif.EFEOptions.pymdp_legacy(), False),
                                            (aif.EFEOptions.pymdp(), False), (aif.EFEOptions(), True)],
                         ids=["exact", "legacy", "pymdp", "joint"])
def test_sequence_efe_on_predictions_is_the_one_step_efe_plus_the_present(options, joint):
    """With each policy's beliefs the plain predictions, the summed EFE is aif.control's EFE of the future
    steps plus the present step's terms, term by term, parameter terms included, on 40 random models with
    sparse A and B dependencies and time-varying C (C_time = 0: the present scores column 0, so the
    future step k scores column k, aif.control's column k - 1 of C shifted by one)."""
    rng = np.random.default_rng(7)
    terms = (aif.Utility(), aif.InfoGain(joint=joint), aif.Novelty("A"), aif.Novelty("B"))
    dev = 0.0
    for _ in range(40):
        model, policies, qs = _random_case(rng, dirichlet=True)
        qs_future = _predicted_sequence(model, qs, policies)
        G, out = sequence_expected_free_energy(model, qs_future, policies, terms, options, C_time=0)
        G0, out0 = sequence_expected_free_energy(model, [q[:, :1] for q in qs_future], policies[:, :0], terms,
                                                 options, C_time=0)
        shifted = model.replace(C=[c[:, 1:] if c.shape[1] > 1 else c for c in model.C])
        G1, out1 = expected_free_energy(shifted, qs, policies, terms, options)
        # relative to the size of the term: with near-zero counts the parameter terms reach 1e9
        dev = max(dev, (np.abs(G - (G0 + G1)) / np.maximum(1.0, np.abs(G))).max())
        for name in ("risk", "ambiguity", "utility", "state_info_gain", "pA_info_gain", "pB_info_gain"):
            expected = out0[name] + out1[name]
            dev = max(dev, (np.abs(out[name] - expected) / np.maximum(1.0, np.abs(expected))).max())
        assert np.all(out0["pB_info_gain"] == 0)                          # no transition at the present
    assert dev <= 1e-10, f"max relative deviation {dev:.3g}"


def test_sequence_efe_and_q_pi_match_legacy_full_factorized():
    """Our per-policy EFE (legacy's conventions, C by the step within the sum) and q(pi) with legacy's sign
    of F against ``update_posterior_policies_full_factorized`` on 60 random models, policy-conditioned
    belief sequences and free energies, and the information gain about A against legacy's
    ``calc_pA_info_gain_factorized`` on the same sequences (relative to its size), to 1e-10. (Legacy's
    policy posterior cannot add that term under NumPy 2: the term is a (1,) array; and its information gain
    about B indexes the policy one step past its end; neither is compared through it.)"""
    from pymdp.legacy.control import (
        calc_pA_info_gain_factorized,
        get_expected_obs_factorized,
        update_posterior_policies_full_factorized,
    )

    rng = np.random.default_rng(11)
    dev_G = dev_q = dev_pA = 0.0
    for i in range(60):
        model, policies, _ = _random_case(rng, dirichlet=True)
        P, H, _ = policies.shape
        # legacy reads column k of a time-varying C at step k and has no clamp: give it enough columns
        model = model.replace(C=[rng.normal(size=(o, H + 1 + i % 3)) if i % 4 else rng.normal(size=o)
                                 for o in model.num_obs])
        qs_future = [rng.dirichlet(np.ones(s), size=(P, H + 1)) for s in model.num_states]
        F, E, gamma = rng.normal(size=P), rng.dirichlet(np.ones(P)), float(rng.uniform(1, 16))
        options = aif.EFEOptions.pymdp_legacy()
        G, _ = sequence_expected_free_energy(model, qs_future, policies, options=options, C_time=0)
        _, out = sequence_expected_free_energy(model, qs_future, policies, (aif.Novelty("A"),), options, C_time=0)
        q_pi = sequence_policy_posterior(G, F, E, gamma, vfe_sign="pymdp_legacy")
        seq = _objarr([None] * P)
        for p in range(P):
            seq[p] = [_objarr([q[p, k] for q in qs_future]) for k in range(H + 1)]
        q_legacy, neg_G = update_posterior_policies_full_factorized(
            seq, _objarr(model.A), _objarr(model.B), _objarr(model.C), model.A_dependencies, model.B_dependencies,
            list(policies), F=-F, E=E, gamma=gamma)                        # legacy's F: the negative free energy
        dev_G = max(dev_G, np.abs(G + neg_G).max())
        dev_q = max(dev_q, np.abs(q_pi - q_legacy).max())
        for p in range(P):
            qo = get_expected_obs_factorized(seq[p], _objarr(model.A), model.A_dependencies)
            gain = float(np.ravel(calc_pA_info_gain_factorized(_objarr(model.pA), qo, seq[p], model.A_dependencies))[0])
            dev_pA = max(dev_pA, abs(out["pA_info_gain"][p] - gain) / max(1.0, abs(gain)))
    assert max(dev_G, dev_q, dev_pA) <= 1e-10, (dev_G, dev_q, dev_pA)


def test_policy_posterior_sign_of_F_and_the_policy_average():
    rng = np.random.default_rng(3)
    G, F, E = rng.normal(size=5), rng.normal(size=5), rng.dirichlet(np.ones(5))
    spm = sequence_policy_posterior(G, F, E, 4.0)
    legacy = sequence_policy_posterior(G, F, E, 4.0, vfe_sign="pymdp_legacy")
    np.testing.assert_allclose(spm, np.exp(log_softmax(-4.0 * G - F + np.log(E))), rtol=1e-12)
    # the two signs differ by 2F in the logits
    diff = np.log(spm) - np.log(legacy) + 2 * F
    np.testing.assert_allclose(diff, diff[0], atol=1e-12)
    qs_t = [rng.dirichlet(np.ones(3), size=5), rng.dirichlet(np.ones(2), size=5)]
    avg = policy_average(qs_t, spm)
    np.testing.assert_allclose(avg[1], sum(spm[p] * qs_t[1][p] for p in range(5)), rtol=1e-12)
    np.testing.assert_allclose([a.sum() for a in avg], 1.0)


# --------------------------------------------------------------------------------------------------------
# The Agent's state and behaviour


def test_agent_attributes_windows_and_trial_length():
    """``qs`` is the policy average of the present beliefs (with q(pi) from F and E alone after
    infer_states, with the full q(pi) after infer_policies); the window grows to W and then slides; the
    policies are cut to the steps left in the trial; after the trial, infer_states refuses."""
    model = TMaze().generative_model()
    agent = aif.Agent(model, policy_horizon=2, inference=MarginalMessagePassing(), inference_horizon=2,
                      trial_length=4)
    obs = [[0, 0, 0], [3, 0, 1], [2, 1, 0], [2, 1, 0]]
    lengths = []
    for t, o in enumerate(obs):
        agent.infer_states(o)
        evidence = sequence_policy_posterior(np.zeros(len(agent.F)), agent.F, None, agent.gamma)
        np.testing.assert_allclose(agent.qs[1], evidence @ agent.qs_seq[1][:, agent.present], rtol=1e-12)
        agent.infer_policies()
        for f in range(2):
            np.testing.assert_allclose(agent.qs[f], agent.q_pi @ agent.qs_seq[f][:, agent.present], rtol=1e-12)
        lengths.append((agent.present + 1, agent.qs_seq[0].shape[1] - agent.present - 1))
        if t < len(obs) - 1:
            action = agent.sample_action()
            # after the window is full, each policy's next prior is its belief about this window's first step
            if t >= 1:
                np.testing.assert_array_equal(agent.prior[1], agent.qs_seq[1][:, 0])
            else:
                np.testing.assert_array_equal(agent.prior[1], model.D[1])
            assert action.shape == (2,)
    assert lengths == [(1, 2), (2, 2), (2, 1), (2, 0)]                     # (window, horizon) at each step
    assert agent.qs[1][1] > 0.99                                             # the cue said "left"
    agent.sample_action()
    with pytest.raises(CallOrderError, match="call reset"):
        agent.infer_states(obs[0])
    agent.reset()
    assert agent.t == 0 and agent.qs_seq is None and agent.obs_window == []
    agent.infer_states(obs[0])
    assert agent.qs_seq[0].shape == (16, 3, 4)


@pytest.mark.parametrize("make_agent", [
    lambda model: aif.Agent(model, policy_horizon=2, inference=MarginalMessagePassing(), inference_horizon=3),
    lambda model: aif.Agent.pymdp_legacy_mmp(model, 2, inference_horizon=3),
], ids=["spm", "legacy"])
@pytest.mark.parametrize("condition", [0, 1])
def test_tmaze_agent_over_time_visits_the_cue_then_the_baited_arm(make_agent, condition):
    """Window 3, two-step policies, through ``aif.rollout``: the cue first, then the arm the cue showed,
    and a confident belief about the condition.

    (Not with ``VariationalMessagePassing``: its expected-log messages, from a uniform start, read the
    uninformative cue at the centre as evidence for one condition, and the near-deterministic transitions
    lock that belief in across the window; with tau = 1 it also two-cycles. Its agent goes to an arm first.)"""
    env = TMaze()
    agent = make_agent(env.generative_model())
    traj = aif.rollout(agent, env, steps=5, seed=condition, options={"condition": condition})
    baited = 1 if condition == 0 else 2
    assert traj.actions[0, 0] == 3 and (traj.actions[1:, 0] == baited).all()
    assert traj.q_pi.shape == (5, 16) and traj.qs[1].shape == (5, 2)
    assert traj.qs[1][-1][condition] > 0.99


@pytest.mark.parametrize("method", [MarginalMessagePassing(num_iter=4), VariationalMessagePassing(tau=0.5)],
                         ids=["MMP", "VMP"])
@pytest.mark.parametrize("prior", ["policy", "average"])
def test_agent_steps_are_infer_sequence_calls(method, prior):
    """Every step of the Agent is one ``infer_sequence`` call on the last W observations, the actions between
    them, the policies cut to the trial, and D or the carried prior; q(pi) and the next prior follow from
    its output (a random two-factor model, window 3, policies of 2 steps, a trial of 7)."""
    rng = np.random.default_rng(5)
    model = aif.random_model(rng, [3, 2], [3, 2], [2, 1], concentration=0.5)
    W, T = 3, 7
    agent = aif.Agent(model, policy_horizon=2, inference=method, inference_horizon=W, trial_length=T,
                      sequence=SequenceOptions(prior=prior), selection=aif.Selection("stochastic"),
                      rng=np.random.default_rng(0))
    observations = [[int(rng.integers(3)), int(rng.integers(2))] for _ in range(T)]
    actions, carried = [], None
    for t, o in enumerate(observations):
        agent.infer_states(o)
        agent.infer_policies()
        start, H = max(0, t - W + 1), min(2, T - 1 - t)
        qs_seq, F = aif.infer_sequence(model, observations[start : t + 1], np.array(actions[start:t]).reshape(-1, 2),
                                       agent.policies[:, :H], prior=carried, method=method)
        G, _ = sequence_expected_free_energy(model, [q[:, t - start :] for q in qs_seq], agent.policies[:, :H],
                                             C_time=t)
        q_pi = sequence_policy_posterior(G, F, None, agent.gamma)
        for f in range(2):
            np.testing.assert_array_equal(agent.qs_seq[f], qs_seq[f])
        np.testing.assert_array_equal(agent.F, F)
        np.testing.assert_allclose(agent.q_pi, q_pi, rtol=1e-12, atol=1e-300)
        if t < T - 1:
            actions.append(agent.sample_action())
            if t >= W - 1:
                first = [q[:, 0] for q in qs_seq]
                carried = first if prior == "policy" else policy_average(first, q_pi)
    assert len({tuple(a) for a in actions}) == 2                             # both actions were taken


def test_saved_agent_over_time_continues_identically(tmp_path):
    """``aif.io`` saves the window, the carried per-policy prior and the sequence settings: a reloaded agent
    takes the same actions with the same q(pi) as the original from the middle of an episode."""
    env = TMaze(reward_prob=0.8)
    agent = aif.Agent(env.generative_model(), 2, inference=MarginalMessagePassing(), inference_horizon=3,
                      trial_length=12)
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        obs, *_ = env.step(int(agent.step(obs)[0]))
    aif.io.save_agent(tmp_path / "agent.npz", agent)
    loaded = aif.io.load_agent(tmp_path / "agent.npz")
    assert loaded.sequence == agent.sequence and loaded.prior[0].shape == (16, 4)
    for _ in range(5):
        action = agent.step(obs)
        np.testing.assert_array_equal(loaded.step(obs), action)
        np.testing.assert_array_equal(loaded.q_pi, agent.q_pi)
        obs, *_ = env.step(int(action[0]))


def test_the_family_says_whether_a_method_infers_over_time():
    assert isinstance(MarginalMessagePassing(), SequenceInference)
    assert isinstance(VariationalMessagePassing(), SequenceInference)
    assert not isinstance(aif.FixedPoint(), SequenceInference) and not isinstance(aif.Exact(), SequenceInference)

    class MySequenceMethod(VariationalMessagePassing):
        pass

    assert isinstance(MySequenceMethod(), SequenceInference)                 # subclasses inherit it
    agent = aif.Agent(TMaze().generative_model(), inference=MySequenceMethod(), inference_horizon=2)
    assert agent.infer_states([0, 0, 0])[0].shape == (4,) and agent.qs_seq is not None


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(inference_horizon=0, inference=MarginalMessagePassing()), ParameterError, "inference_horizon"),
    (dict(inference_horizon=2), ParameterError, "need an inference method over time"),
    (dict(trial_length=5), ParameterError, "need an inference method over time"),
    (dict(trial_length=0, inference=MarginalMessagePassing()), ParameterError, "trial_length"),
    (dict(inference=MarginalMessagePassing(), planner=PolicyEnumeration()), ParameterError, "planner"),
    (dict(inference=MarginalMessagePassing(), planner=object()), StrategyError, "planner"),
    # learning with inference over time is supported (tests/test_agent_learning_over_time.py); smoothing it is not
    (dict(inference=MarginalMessagePassing(), learning=aif.Learning(learn_B=False, online=False, smoothing=True)),
     ParameterError,
     "smoothing"),
])
def test_bad_agent_settings(kwargs, error, words):
    model = TMaze().generative_model(learn_A=True)
    with pytest.raises(error, match=words):
        aif.Agent(model, **kwargs)


def test_bad_sequence_input():
    model = TMaze().generative_model()
    q = [np.full((2, 2, 4), 0.25), np.full((2, 2, 2), 0.5)]
    policies = np.zeros((2, 1, 2), dtype=int)
    with pytest.raises(ParameterError, match="SequenceOptions.prior"):
        SequenceOptions(prior="bma")
    with pytest.raises(ParameterError, match="vfe_sign"):
        SequenceOptions(vfe_sign="+")
    with pytest.raises(ParameterError, match="C_time"):
        SequenceOptions(C_time="now")
    with pytest.raises(BeliefError, match=r"qs_future\[1\] has shape"):
        sequence_expected_free_energy(model, [q[0], q[1][:, :1]], policies)
    with pytest.raises(BeliefError, match=r"qs_future\[0\]\[0, 0\] is not a probability vector: it sums to 2, not 1"):
        sequence_expected_free_energy(model, [q[0] * 2, q[1]], policies)
    with pytest.raises(PolicyError, match="expected \\(2, 1, 2\\)"):
        sequence_expected_free_energy(model, q, np.zeros((2, 2, 2), dtype=int))
    with pytest.raises(StrategyError, match="EFE terms are objects"):
        sequence_expected_free_energy(model, q, policies, terms=("novelty",))
    with pytest.raises(ParameterError, match="no pA"):
        sequence_expected_free_energy(model, q, policies, terms=(aif.Novelty("A"),))
    with pytest.raises(ParameterError, match="G and F"):
        sequence_policy_posterior(np.zeros(3), np.zeros(2))
    with pytest.raises(ParameterError, match="F has a non-finite"):
        sequence_policy_posterior(np.zeros(2), np.array([0.0, np.nan]))
    with pytest.raises(ParameterError, match=r"E sums to 1\.1, not 1 \(it is a prior over policies\)"):
        sequence_policy_posterior(np.zeros(2), np.zeros(2), E=np.array([0.5, 0.6]))
    with pytest.raises(PolicyError, match="takes action 7"):
        sequence_expected_free_energy(model, q, np.full((2, 1, 2), 7))
