"""SPM's precision, habits, preferences and end-of-trial learning, against SPM's own spm_MDP_VB_X run under Octave.

The files in tests/reference/spm/ were written by SPM (SPM12, and the current SPM for preference learning) from the
scripts beside them (their README says how to remake them); ../shared/reference/spm/vbx_test_1a.mat is pymdp's.
MATLAB's arrays are 1-based and policy-last: ``MDP.V`` is (T - 1, P, F), ``MDP.Q{f}`` (S, T, P), ``MDP.R`` (P, T),
``MDP.F`` and ``MDP.G`` (P, T) hold *negative* free energies.
"""

from __future__ import annotations

import runpy
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat

import aif
from aif import SPM_EFE, SPM_TERMS, neuronal_responses
from aif.efe import pD_info_gain
from aif.errors import BeliefError, CallOrderError, ModelError, ParameterError
from aif.learning import WNORM_SPM12_TRIAL

HERE = Path(__file__).parent / "reference" / "spm"
TOL = 1e-8


def load(stem):
    return loadmat(str(HERE / f"{stem}.mat"))


def cell(m, key, i):
    return m[key][0][i]


def with_controls(b):
    """MATLAB drops a trailing singleton axis: B of one control comes back (S, S)."""
    return b[..., None] if b.ndim == 2 else b


def policies_of(m):
    return np.transpose(m["V"].astype(int) - 1, (1, 0, 2))  # (P, T - 1, F)


def observations(m, i):
    o = cell(m, "o_all", i).astype(int) - 1
    return [list(o[:, t]) for t in range(o.shape[1])]


def per_policy(q):
    return np.transpose(q, (2, 1, 0))  # SPM's (S, T, P) -> (P, T, S)


def test_octave_route_rebuilds_the_shared_vbx_test_1a(spm_file):
    """make_vbx_test_1a.m under Octave 7.3 and SPM12 gives pymdp's MATLAB file back (its A, B, C, outcomes, actions)."""
    shared, ours = spm_file("vbx_test_1a"), load("vbx_test_1a_octave")
    for key in ("xn", "vn"):
        assert np.abs(ours[key] - shared[key][0][0]).max() < TOL, key
    assert np.abs(ours["qs"][0][0] - shared["qs"][0][0]).max() < TOL
    np.testing.assert_array_equal(ours["actions"].ravel(), shared["actions"].ravel())


def test_precision_updates_equal_spm_given_its_free_energies():
    """w, wn, un, R and dn of six trials from SPM's own F and G, with E from the habits learned so far."""
    m = load("spm_trials")
    e, beta = m["e0"].ravel(), float(m["beta"].squeeze())
    for i in range(6):
        F, G = cell(m, "F", i), cell(m, "G", i)  # negative free energies (P, T)
        ln_E = np.log(e / e.sum() + 1e-16)  # SPM's spm_log(E)
        rate, steps = beta, []
        for t in range(F.shape[1]):
            steps.append(aif.update_precision(-G[:, t], -F[:, t], ln_E, rate, beta))
            rate = steps[-1].rate
        wn = np.concatenate([s.gamma for s in steps])
        assert np.abs(wn - cell(m, "wn", i).ravel()).max() < TOL
        assert np.abs(np.array([s.gamma[-1] for s in steps]) - cell(m, "w", i).ravel()).max() < TOL
        assert np.abs(np.concatenate([s.q_pi_iter for s in steps]).T - cell(m, "un", i)).max() < TOL
        assert np.abs(np.array([s.q_pi for s in steps]).T - cell(m, "R", i)).max() < TOL
        assert np.abs(aif.dopamine(wn) - cell(m, "dn", i).ravel()).max() < TOL
        e = cell(m, "e", i).ravel()


def test_end_of_trial_learning_equals_spm_over_six_trials_with_a_reversal():
    """a, b, d, e after each trial from SPM's beliefs (MDP.Q, MDP.R), learning rate eta = 1/2, d without it."""
    m = load("spm_trials")
    counts = {"pA": [cell(m, "a0", g) for g in range(2)], "pB": [with_controls(cell(m, "b0", f)) for f in range(2)],
              "pD": [cell(m, "d0", f).ravel() for f in range(2)], "pE": m["e0"].ravel()}
    policies, eta = policies_of(m), float(m["eta"].squeeze())
    for i in range(6):
        qs = [per_policy(cell(m, "Qx1", i)), per_policy(cell(m, "Qx2", i))]
        q_pi = cell(m, "R", i).T
        new = aif.learn_trial(counts, observations(m, i), qs, q_pi, policies, lr=eta, lr_D=1.0)
        expected = {"pA": [cell(m, "a1", i), cell(m, "a2", i)],
                    "pB": [with_controls(cell(m, "b1", i)), with_controls(cell(m, "b2", i))],
                    "pD": [cell(m, "d1", i).ravel(), cell(m, "d2", i).ravel()], "pE": [cell(m, "e", i).ravel()]}
        for name, arrays in expected.items():
            got = new[name] if name != "pE" else [new[name]]
            assert max(np.abs(a - b).max() for a, b in zip(got, arrays, strict=True)) < TOL, (i, name)
        # SPM's X (the beliefs averaged with the last step's q(pi)) is what A and D learn from
        assert np.abs(np.einsum("p,pts->st", q_pi[-1], qs[1]) - cell(m, "X2", i)).max() < TOL
        # SPM has no forgetting; ours discounts the old counts (towards a prior, if given) before adding the evidence
        forgot = aif.learn_trial(counts, observations(m, i), qs, q_pi, policies, lr=eta, lr_D=1.0, forgetting=0.5,
                                 prior={"pB": [np.ones_like(b) for b in counts["pB"]]})
        for name in ("pA", "pD"):
            for old, learned, decayed in zip(counts[name], new[name], forgot[name], strict=True):
                np.testing.assert_allclose(decayed, learned - 0.5 * old, atol=1e-12)
        for old, learned, decayed in zip(counts["pB"], new["pB"], forgot["pB"], strict=True):
            np.testing.assert_allclose(decayed, np.where(old > 0, learned - 0.5 * old + 0.5, 0.0), atol=1e-12)
        counts = new
    # the reversal: after three trials in the second context, the agent believes in it at the start of the trial
    assert cell(m, "X2", 5)[1, 0] > 0.5 > cell(m, "X2", 2)[1, 0]


def test_preference_learning_equals_the_current_spm():
    """c after each of three trials and the C SPM scored with (ln softmax(psi(c + 1/32))), from the current SPM."""
    m = load("spm_preferences")
    pC = [np.repeat(cell(m, "c0", g).reshape(-1, 1), 3, axis=1) for g in range(2)]  # SPM's c, one column per step
    eta = float(m["eta"].squeeze())
    for i in range(3):
        C = aif.preferences_from_counts(pC)
        assert max(np.abs(C[g] - cell(m, f"C{g + 1}", i)).max() for g in range(2)) < TOL
        pC = aif.update_C(pC, observations(m, i), lr=eta)
        assert max(np.abs(pC[g] - cell(m, f"c{g + 1}", i)).max() for g in range(2)) < TOL


def test_the_agent_learns_preferences_as_the_current_spm():
    """An Agent with SPM's counts c (one column per step) replays the three trials: the C it scores each trial with
    and its counts after the trial (Learning(learn_C=True) at the trial's end) equal the current SPM's."""
    m, maze = load("spm_preferences"), load("spm_trials")
    A, B = [cell(maze, "A", g) for g in range(2)], [with_controls(cell(maze, "B", f)) for f in range(2)]
    pC = [np.repeat(cell(m, "c0", g).reshape(-1, 1), 3, axis=1) for g in range(2)]
    eta, T = float(m["eta"].squeeze()), 3
    for i in range(3):
        agent = spm_agent(aif.GenerativeModel(A=A, B=B, pC=pC), policies_of(maze), T,
                          aif.Learning(lr=eta, online=False, learn_A=False, learn_B=False, learn_C=True))
        assert max(np.abs(agent.model.C[g] - cell(m, f"C{g + 1}", i)).max() for g in range(2)) < TOL
        for t, o in enumerate(observations(m, i)):
            agent.infer_states(o)
            agent.infer_policies()
            if t < T - 1:
                take(agent, [0, 0])
        pC = agent.learn().pC
        assert max(np.abs(pC[g] - cell(m, f"c{g + 1}", i)).max() for g in range(2)) < TOL


def spm_agent(model, policies, T, learning=None):
    return aif.Agent(model, policies=policies, inference=aif.MarginalMessagePassing.spm(), inference_horizon=T,
                     trial_length=T, efe_terms=SPM_TERMS, efe=SPM_EFE,
                     sequence=replace(aif.SequenceOptions.spm(), record=True), learning=learning)


def take(agent, action):
    """SPM's fixed MDP.u: the action taken is given, not chosen (what sample_action does after choosing)."""
    agent.action = np.asarray(action)
    agent.prior = agent._cycle.next_prior()
    agent.t += 1


def test_the_agent_replays_spm_trials_step_by_step():
    """Agent(policies over the trial, MarginalMessagePassing.spm(), SequenceOptions.spm()) over four SPM trials (B and
    the habits E learned at each trial's end by the Agent's Learning, a reversal at trial 3): F, G, q(pi), the
    precision and dopamine traces, each policy's beliefs, their average, the simulated neuronal responses (xn, vn,
    un) and the learned counts b and e equal SPM's."""
    m = load("spm_inference")
    A, C = [cell(m, "A", g) for g in range(2)], [cell(m, "C", g) for g in range(2)]
    D = [cell(m, "D", f).ravel() for f in range(2)]
    pB, e = [with_controls(cell(m, "b0", f)) for f in range(2)], m["e0"].ravel()
    policies, eta, T = policies_of(m), float(m["eta"].squeeze()), 3
    worst: dict[str, float] = {}
    spread = 0.0  # how far the precision moved within a trial
    for i in range(4):
        agent = spm_agent(aif.GenerativeModel(A=A, B=None, pB=pB, C=C, D=D, pE=e), policies, T,
                          aif.Learning(lr=eta, online=False, learn_A=False, learn_E=True))
        obs, u = observations(m, i), cell(m, "u_all", i).astype(int) - 1
        F, G, q_pi = [], [], []
        for t in range(T):
            agent.infer_states(obs[t])
            q, g = agent.infer_policies()
            F.append(agent.F), G.append(g), q_pi.append(q)
            if t < T - 1:
                take(agent, u[:, t])
        wn = np.concatenate(agent.gamma_trace)
        spread = max(spread, float(np.ptp(wn)))
        X = np.einsum("p,pts->st", agent.policy_weights, agent.qs_seq[0])
        xn, vn = neuronal_responses(agent.traces, np.array(q_pi))
        for name, ours, theirs in (("F", -np.array(F).T, cell(m, "F", i)), ("G", -np.array(G).T, cell(m, "G", i)),
                                   ("R", np.array(q_pi).T, cell(m, "R", i)), ("wn", wn, cell(m, "wn", i).ravel()),
                                   ("dn", aif.dopamine(wn), cell(m, "dn", i).ravel()),
                                   ("w", agent.gamma, cell(m, "w", i)[0, -1]),
                                   ("Q", agent.qs_seq[1], per_policy(cell(m, "Qx2", i))), ("X", X, cell(m, "X1", i)),
                                   ("xn", np.concatenate(xn, axis=1), np.concatenate([cell(m, "xn1", i),
                                                                                      cell(m, "xn2", i)], axis=1)),
                                   ("vn", vn[0], cell(m, "vn1", i)),
                                   ("un", np.concatenate(agent.q_pi_trace).T, cell(m, "un", i))):
            worst[name] = max(worst.get(name, 0.0), float(np.abs(ours - theirs).max()))
        learned = agent.learn()
        pB, e = learned.pB, learned.pE
        assert max(np.abs(pB[f] - with_controls(cell(m, f"b{f + 1}", i))).max() for f in range(2)) < TOL
        assert np.abs(e - cell(m, "e", i).ravel()).max() < TOL
    assert max(worst.values()) < TOL, worst
    assert spread > 0.4  # the precision moved (0.85 to 1.3 in the trials that visit the cue)


def test_habits_are_the_prior_over_policies_and_grow_with_the_chosen_ones():
    q_pi = np.array([0.7, 0.2, 0.1])
    pE = aif.update_E(np.ones(3), q_pi, lr=2.0)
    np.testing.assert_allclose(pE, [2.4, 1.4, 1.2])
    np.testing.assert_allclose(aif.update_E(pE, q_pi, forgetting=0.5), 0.5 * pE + q_pi)
    # with nothing else to tell them apart, q(pi) is the habit E itself, at any precision
    step = aif.update_precision(np.zeros(3), np.zeros(3), np.log(pE / pE.sum()), rate=0.5)
    np.testing.assert_allclose(step.q_pi, pE / pE.sum())
    assert step.rate == pytest.approx(0.5 + (1.0 - 0.5) * (1 - 0.5**16))  # no evidence: rate relaxes to beta


def test_precision_with_moving_policies_is_the_same_update_on_the_agents_g_and_f():
    env = aif.envs.TMaze()
    agent = aif.Agent(env.generative_model(), policy_horizon=2, inference=aif.MarginalMessagePassing(),
                      inference_horizon=3, trial_length=3, sequence=aif.SequenceOptions(precision=aif.Precision(2.0)))
    obs, _ = env.reset(seed=0)
    agent.infer_states(obs)
    q_pi, G = agent.infer_policies()
    step = aif.update_precision(G, agent.F, 0.0, rate=2.0, beta=2.0)
    np.testing.assert_allclose(q_pi, step.q_pi, atol=1e-14)
    assert agent.gamma == pytest.approx(1.0 / step.rate) and len(agent.gamma_trace) == 1
    agent.reset()
    assert agent.gamma == 0.5 and agent.gamma_trace == []


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ParameterError, match="Precision.beta"):
        aif.Precision(beta=0.0)
    with pytest.raises(ParameterError, match="vfe_sign='spm'"):
        aif.SequenceOptions(precision=aif.Precision(), vfe_sign="pymdp_legacy")
    with pytest.raises(ParameterError, match="SequenceOptions.policies"):
        aif.SequenceOptions(policies="sequential")
    with pytest.raises(ParameterError, match="G and F"):
        aif.update_precision(np.zeros(3), np.zeros(2), 0.0, 1.0)
    with pytest.raises(ParameterError, match="non-finite"):
        aif.update_precision(np.array([0.0, np.nan]), np.zeros(2), 0.0, 1.0)
    with pytest.raises(ParameterError, match="at least two"):
        aif.dopamine([1.0])
    with pytest.raises(ModelError, match="columns"):
        aif.update_C([np.ones((3, 4))], [[0], [1]])
    with pytest.raises(BeliefError, match=r"\(T, P\)"):
        aif.learn_trial({"pE": np.ones(2)}, [[0]], [np.full((2, 2, 2), 0.5)], np.full((1, 2), 0.5),
                        np.zeros((2, 0, 1), int))
    with pytest.raises(ParameterError, match="unknown keys"):
        aif.learn_trial({"pZ": []}, [[0]], [np.full((2, 1, 2), 0.5)], np.full((1, 2), 0.5), np.zeros((2, 0, 1), int))
    m = load("spm_inference")
    spm_model = aif.GenerativeModel(A=[cell(m, "A", g) for g in range(2)], B=None,
                                    pB=[with_controls(cell(m, "b0", f)) for f in range(2)],
                                    C=[cell(m, "C", g) for g in range(2)],
                                    D=[cell(m, "D", f).ravel() for f in range(2)])
    agent = spm_agent(spm_model, policies_of(m), 3, aif.Learning(online=False, learn_A=False))
    agent.infer_states(observations(m, 0)[0])
    with pytest.raises(CallOrderError, match="at its end: 1 of 3"):
        agent.learn()
    model = aif.envs.TMaze().generative_model()
    with pytest.raises(ParameterError, match="policies over the whole trial"):
        aif.Agent(model, policy_horizon=1, inference=aif.MarginalMessagePassing(), inference_horizon=3, trial_length=3,
                  sequence=aif.SequenceOptions.spm())


def test_example_spm_reversal_quick(tmp_path, monkeypatch, capsys):
    """examples/spm_reversal.py --quick, run in this process (no second interpreter start)."""
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "spm_reversal.png"
    monkeypatch.setattr(sys, "argv", ["spm_reversal.py", "--quick", "--out", str(out)])
    runpy.run_path(str(root / "examples" / "spm_reversal.py"), run_name="__main__")
    assert out.stat().st_size > 10_000
    assert capsys.readouterr().out.count("trial ") == 4


def test_aif_deep_keeps_spm_traces_per_agent_of_its_batch():
    """aif_deep.Agent runs SPM's trial mode through aif (its NumPy route) and keeps gamma_trace, q_pi_trace and the
    message passing's traces stacked over a batch of two agents (one with SPM's habits, one without): each row equals
    the aif.Agent of its model, and the first equals SPM's wn and un."""
    import aif_deep

    m = load("spm_inference")
    A, C = [cell(m, "A", g) for g in range(2)], [cell(m, "C", g) for g in range(2)]
    D, B = [cell(m, "D", f).ravel() for f in range(2)], [with_controls(cell(m, "b0", f)) for f in range(2)]
    models = [aif.GenerativeModel(A=A, B=None, pB=B, C=C, D=D, pE=m["e0"].ravel()),
              aif.GenerativeModel(A=A, B=None, pB=B, C=C, D=D, pE=np.arange(1.0, 11.0))]
    T, policies = 3, policies_of(m)
    settings = dict(policies=policies, inference=aif.MarginalMessagePassing.spm(), inference_horizon=T, trial_length=T,
                    efe_terms=SPM_TERMS, efe=SPM_EFE, sequence=replace(aif.SequenceOptions.spm(), record=True))
    deep = aif_deep.Agent(aif_deep.TabularModel.from_aif(models, device="cpu"), **settings)
    ones = [aif.Agent(model, **settings) for model in models]
    for t, o in enumerate(observations(m, 0)):
        deep.infer_states(o)
        deep.infer_policies()
        for agent in ones:
            agent.infer_states(o)
            agent.infer_policies()
        if t < T - 1:
            deep.sample_action()
            for agent in ones:
                agent.sample_action()
    assert len(deep.gamma_trace) == len(deep.q_pi_trace) == len(deep.traces) == T
    assert tuple(deep.gamma_trace[0].shape) == (2, 16) and tuple(deep.q_pi_trace[0].shape) == (2, 16, len(policies))
    assert tuple(deep.traces[0].qs[1].shape) == (2, 16, len(policies), T, 2)
    for k, agent in enumerate(ones):
        for t in range(T):
            np.testing.assert_array_equal(deep.gamma_trace[t][k].numpy(), agent.gamma_trace[t])
            np.testing.assert_array_equal(deep.q_pi_trace[t][k].numpy(), agent.q_pi_trace[t])
            for f in range(2):
                np.testing.assert_array_equal(deep.traces[t].qs[f][k].numpy(), agent.traces[t].qs[f])
                np.testing.assert_array_equal(deep.traces[t].err[f][k].numpy(), agent.traces[t].err[f])
    wn = np.concatenate([g[0].numpy() for g in deep.gamma_trace])
    assert np.abs(wn - cell(m, "wn", 0).ravel()).max() < TOL
    assert np.abs(np.concatenate([q[0].numpy() for q in deep.q_pi_trace]).T - cell(m, "un", 0)).max() < TOL
    assert np.abs(wn - np.concatenate([g[1].numpy() for g in deep.gamma_trace])).max() > 1e-3  # the habits differ
    deep.reset()
    assert deep.gamma_trace == deep.q_pi_trace == deep.traces == []


def test_occams_window_drops_the_policies_spm_drops():
    """SequenceOptions.spm(zeta=3), SPM's default Occam's window, over three trials that SPM ran with it (b and e
    learned, a reversal at trial 2): the same policies dropped at each step (SPM's F = G = 0 there, ours +inf), and F,
    G, q(pi), the precision (w, wn, un), each policy's beliefs (the dropped ones' where SPM left them) and the learned b
    and e equal SPM's; without the window q(pi) differs from SPM's by 0.02."""
    m = load("spm_occam")
    A, C = [cell(m, "A", g) for g in range(2)], [cell(m, "C", g) for g in range(2)]
    D = [cell(m, "D", f).ravel() for f in range(2)]
    pB, e = [with_controls(cell(m, "b0", f)) for f in range(2)], m["e0"].ravel()
    policies, eta, T = policies_of(m), float(m["eta"].squeeze()), 3
    dropped_any, worst = 0, 0.0
    for i in range(3):
        agent = aif.Agent(aif.GenerativeModel(A=A, B=None, pB=pB, C=C, D=D, pE=e), policies=policies,
                          inference=aif.MarginalMessagePassing.spm(), inference_horizon=T, trial_length=T,
                          efe_terms=SPM_TERMS, efe=SPM_EFE,
                          sequence=replace(aif.SequenceOptions.spm(zeta=3.0), record=True),
                          learning=aif.Learning(lr=eta, online=False, learn_A=False, learn_E=True))
        obs, u = observations(m, i), cell(m, "u_all", i).astype(int) - 1
        for t in range(T):
            agent.infer_states(obs[t])
            q, g = agent.infer_policies()
            spm_F, spm_G = cell(m, "F", i)[:, t], cell(m, "G", i)[:, t]
            dropped = spm_F == 0
            np.testing.assert_array_equal(np.isinf(agent.F), dropped)
            np.testing.assert_array_equal(np.isinf(g), dropped)
            assert np.all(q[dropped] == 0) and np.all(np.isnan(agent.terms["utility"][dropped]))
            dropped_any += int(dropped.sum())
            kept = ~dropped
            for ours, theirs in ((-agent.F[kept], spm_F[kept]), (-g[kept], spm_G[kept]), (q, cell(m, "R", i)[:, t]),
                                 (agent.gamma, cell(m, "w", i)[0, t])):
                worst = max(worst, float(np.abs(ours - theirs).max()))
            if t < T - 1:
                take(agent, u[:, t])
        for ours, theirs in ((agent.qs_seq[0], per_policy(cell(m, "Qx1", i))),
                             (agent.qs_seq[1], per_policy(cell(m, "Qx2", i))),
                             (np.concatenate(agent.gamma_trace), cell(m, "wn", i).ravel()),
                             (np.concatenate(agent.q_pi_trace).T, cell(m, "un", i))):
            worst = max(worst, float(np.abs(ours - theirs).max()))
        learned = agent.learn()
        pB, e = learned.pB, learned.pE
        assert max(np.abs(pB[f] - with_controls(cell(m, f"b{f + 1}", i))).max() for f in range(2)) < TOL
        assert np.abs(e - cell(m, "e", i).ravel()).max() < TOL
    assert worst < TOL, worst
    assert dropped_any > 20  # the window closed on most policies by the last step of each trial
    wide = spm_agent(aif.GenerativeModel(A=A, B=None, pB=[with_controls(cell(m, "b0", f)) for f in range(2)], C=C, D=D,
                                         pE=m["e0"].ravel()), policies, T)
    wide.infer_states(observations(m, 0)[0])
    wide.infer_policies()
    take(wide, cell(m, "u_all", 0)[:, 0].astype(int) - 1)
    wide.infer_states(observations(m, 0)[1])
    q, _ = wide.infer_policies()
    assert np.abs(q - cell(m, "R", 0)[:, 1]).max() > 0.01
    with pytest.raises(ParameterError, match="zeta"):
        aif.SequenceOptions(zeta=3.0)
    with pytest.raises(ParameterError, match="zeta"):
        aif.SequenceOptions.spm(zeta=0.0)


def test_the_agent_replays_spm_trials_that_learn_a_b_d_and_e():
    """The six trials of spm_trials.mat (a, b, d, e learned, beta = 1, a reversal at trial 4) replayed by the Agent,
    with SPM12's novelty of a and d in G (Novelty('A') and Novelty('D') with spm_MDP_VB_X's halved weights,
    WNORM_SPM12_TRIAL) and Learning at each trial's end (d without eta): F, G, q(pi), the precision and every count
    after every trial equal SPM's."""
    m = load("spm_trials")
    counts = dict(pA=[cell(m, "a0", g) for g in range(2)], pB=[with_controls(cell(m, "b0", f)) for f in range(2)],
                  pD=[cell(m, "d0", f).ravel() for f in range(2)], pE=m["e0"].ravel())
    C, policies, eta, T = [cell(m, "C", g) for g in range(2)], policies_of(m), float(m["eta"].squeeze()), 3
    terms = (*SPM_TERMS, aif.Novelty("A", WNORM_SPM12_TRIAL), aif.Novelty("D", WNORM_SPM12_TRIAL))
    worst: dict[str, float] = {}
    for i in range(6):
        agent = aif.Agent(aif.GenerativeModel(A=None, B=None, C=C, **counts), policies=policies,
                          inference=aif.MarginalMessagePassing.spm(), inference_horizon=T, trial_length=T,
                          efe_terms=terms, efe=SPM_EFE, sequence=aif.SequenceOptions.spm(),
                          learning=aif.Learning(lr=eta, lr_D=1.0, online=False, learn_D=True, learn_E=True))
        obs, u = observations(m, i), cell(m, "u_all", i).astype(int) - 1
        F, G, R = [], [], []
        for t in range(T):
            agent.infer_states(obs[t])
            q, g = agent.infer_policies()
            F.append(agent.F), G.append(g), R.append(q)
            assert agent.terms["pA_info_gain"].min() > 0 and agent.terms["pD_info_gain"].min() > 0
            if t < T - 1:
                take(agent, u[:, t])
        model = agent.learn()
        counts = dict(pA=model.pA, pB=model.pB, pD=model.pD, pE=model.pE)
        for name, ours, theirs in (
                ("F", -np.array(F).T, cell(m, "F", i)), ("G", -np.array(G).T, cell(m, "G", i)),
                ("R", np.array(R).T, cell(m, "R", i)),
                ("wn", np.concatenate(agent.gamma_trace), cell(m, "wn", i).ravel()),
                *((f"a{g}", model.pA[g], cell(m, f"a{g + 1}", i)) for g in range(2)),
                *((f"b{f}", model.pB[f], with_controls(cell(m, f"b{f + 1}", i))) for f in range(2)),
                *((f"d{f}", model.pD[f], cell(m, f"d{f + 1}", i).ravel()) for f in range(2)),
                ("e", model.pE, cell(m, "e", i).ravel())):
            worst[name] = max(worst.get(name, 0.0), float(np.abs(ours - theirs).max()))
    assert max(worst.values()) < TOL, worst
    # D's novelty needs SPM's policies over the trial (each policy's own belief about the first step)
    with pytest.raises(ParameterError, match=r"Novelty\('D'\)"):
        aif.Agent(aif.GenerativeModel(A=None, B=None, C=C, **{**counts, "pE": None}), efe_terms=terms)
    with pytest.raises(ParameterError, match=r"Novelty\('D'\)"):  # moving policies over time: no trial to start
        aif.Agent(aif.GenerativeModel(A=None, B=None, C=C, **{**counts, "pE": None}), policy_horizon=2,
                  inference=aif.MarginalMessagePassing.spm(), inference_horizon=2, efe_terms=terms)
    with pytest.raises(ParameterError, match="WNorm.scale"):
        aif.WNorm(scale=0.0)
    # the term for one belief per policy, against SPM's halved weights written out
    d, q = np.array([8.0, 1, 1, 1]), np.array([[0.7, 0.1, 0.1, 0.1], [0.0, 0, 0, 1]])
    np.testing.assert_allclose(pD_info_gain([d], [q], WNORM_SPM12_TRIAL), -q @ ((1 / d.sum() - 1 / d) / 2), rtol=1e-14)
    with pytest.raises(BeliefError, match="qs_first"):
        pD_info_gain([d], [q[0]])


def test_a_trial_started_from_a_given_prior_equals_a_model_with_that_D():
    """reset(prior=p) in SPM's trial mode: the message passing uses p as the first step's prior (as a model whose D
    is p does), not the model's D."""
    rng = np.random.default_rng(3)
    model = aif.random_model(rng, [3, 2], [3, 2], [2, 1])
    p = [rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(2))]
    policies = aif.enumerate_policies(model.num_controls, 2)

    def agent(m):
        return aif.Agent(m, policies=policies, inference=aif.MarginalMessagePassing.spm(), inference_horizon=3,
                         trial_length=3, efe_terms=aif.SPM_TERMS, efe=aif.SPM_EFE, sequence=aif.SequenceOptions.spm())

    given, moved = agent(model), agent(model.replace(D=p))
    given.reset(prior=p)
    for obs in ([0, 1], [2, 0]):
        given.step(obs)
        moved.step(obs)
        np.testing.assert_allclose(given.F, moved.F, atol=1e-14)
        for q, r in zip(given.qs_seq, moved.qs_seq, strict=True):
            np.testing.assert_allclose(q, r, atol=1e-14)
