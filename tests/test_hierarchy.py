"""Deep temporal models (aif.Hierarchy: two Agents linked as SPM's MDP.MDP + MDP.link), against SPM12's spm_MDP_VB_X.

tests/reference/spm/spm_hierarchical.mat was written by make_spm_hierarchical.m beside it (a two-level miniature of
DEM_demo_MDP_reading: four two-page stories above, words read by saccades below; states, outcomes and actions fixed
at both levels). MATLAB's arrays are 1-based and policy-last: ``V`` is (T - 1, P, F), ``Q{f}`` (S, T, P), ``R``
(P, T); ``F`` and ``G`` (P, T) hold *negative* free energies. Lower-level fields are cells over the higher steps.
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
from aif import SPM_EFE, SPM_TERMS, Hierarchy, Link, neuronal_responses
from aif.errors import CallOrderError, ModelError, ObservationError, ParameterError, StrategyError

ROOT = Path(__file__).resolve().parents[1]
SPM = loadmat(str(ROOT / "tests" / "reference" / "spm" / "spm_hierarchical.mat"))
TOL = 1e-8
T = 3  # steps of a trial at both levels


def cell(key, i):
    return SPM[key][0][i]


def with_controls(b):
    """MATLAB drops a trailing singleton axis: B of one control comes back (S, S)."""
    return b[..., None] if b.ndim == 2 else b


def policies_of(V):
    return np.transpose(V.astype(int) - 1, (1, 0, 2))  # (P, T - 1, F)


def per_policy(q):
    return np.transpose(q, (2, 1, 0))  # SPM's (S, T, P) -> (P, T, S)


def spm_agent(model, V):
    return aif.Agent(model, policies=policies_of(V), inference=aif.MarginalMessagePassing.spm(), inference_horizon=T,
                     trial_length=T, efe_terms=SPM_TERMS, efe=SPM_EFE,
                     sequence=replace(aif.SequenceOptions.spm(), record=True))


def high_model():
    return aif.GenerativeModel(A=[cell("A", g) for g in range(3)], B=[with_controls(cell("B", f)) for f in range(3)],
                               C=[cell("C", g).ravel() for g in range(3)], D=[cell("D", f).ravel() for f in range(3)])


def low_model():
    # the word's D is the higher level's to set; the eye starts at the centre
    return aif.GenerativeModel(A=[cell("lA", g) for g in range(2)], B=[with_controls(cell("lB", f)) for f in range(2)],
                               D=[np.full(3, 1 / 3), np.array([1.0, 0.0, 0.0])])


class Replay:
    """The lower level's world with SPM's fixed outcomes (its actions are fixed too, so the agent's are not read:
    with policies over the trial they change only what the world shows, and the outcomes are given)."""

    def __init__(self, outcomes):
        self.outcomes, self.t = outcomes.astype(int) - 1, 0  # (modalities, steps)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return list(self.outcomes[:, 0]), {}

    def step(self, action):
        self.t += 1
        return list(self.outcomes[:, self.t]), 0.0, False, False, {}


def compare(worst, name, ours, theirs):
    """Keep in ``worst[name]`` the largest deviation of ``ours`` from SPM's ``theirs`` so far."""
    worst[name] = max(worst.get(name, 0.0), float(np.abs(np.asarray(ours) - theirs).max(initial=0.0)))


def replay(hierarchy):
    """The higher trial of the SPM file: its word outcome comes from below, its page and feedback are given."""
    o = SPM["o"].astype(int) - 1
    hierarchy.reset()
    record = {"F": [], "G": [], "R": [], "w": []}
    for t in range(T):
        hierarchy.step([None, o[1, t], o[2, t]], Replay(cell("lo_given", t)))
        high = hierarchy.high
        for name, value in (("F", high.F), ("G", high.G), ("R", high.q_pi), ("w", high.gamma)):
            record[name].append(value)
    return record


def test_both_levels_equal_spm_over_a_deep_trial():
    """Higher level: F, G, q(pi), precision and its traces, each policy's beliefs and their average, the outcomes sent
    up from below, the neuronal responses; each lower trial: where it stopped (SPM's chi), the prior sent down, F, G,
    q(pi), precision, beliefs, neuronal responses. All equal SPM's to 1e-8."""
    hierarchy = Hierarchy(spm_agent(high_model(), SPM["V"]), spm_agent(low_model(), SPM["lV"]),
                          [Link(modality=0, factor=0, matrix=np.eye(3))])
    record = replay(hierarchy)
    high = hierarchy.high
    wn = np.concatenate(high.gamma_trace)
    xn, _ = neuronal_responses(high.traces, np.array(record["R"]))
    X = [np.einsum("p,pts->st", high.q_pi, q) for q in high.qs_seq]
    worst: dict[str, float] = {}

    compare(worst, "F", -np.array(record["F"]).T, SPM["F"])
    compare(worst, "G", -np.array(record["G"]).T, SPM["G"])
    compare(worst, "R", np.array(record["R"]).T, SPM["R"])
    compare(worst, "w", record["w"], SPM["w"].ravel())
    compare(worst, "wn", wn, SPM["wn"].ravel())
    compare(worst, "dn", aif.dopamine(wn), SPM["dn"].ravel())
    compare(worst, "un", np.concatenate(high.q_pi_trace).T, SPM["un"])
    compare(worst, "xn", xn[0], SPM["xn1"])
    compare(worst, "O", np.array([trial.outcome[0] for trial in hierarchy.lower]).T, SPM["O1"])
    for f in range(3):
        compare(worst, "Q", high.qs_seq[f], per_policy(SPM[f"Q{f + 1}"]))
        compare(worst, "X", X[f], SPM[f"X{f + 1}"])
    stops = []
    for t, trial in enumerate(hierarchy.lower):
        low, K = trial.agent, trial.steps
        stops.append(K)
        assert K == int(cell("lT", t).squeeze())
        lxn, _ = neuronal_responses(low.traces, trial.q_pi)
        lwn = np.concatenate(low.gamma_trace)
        compare(worst, "lower D", trial.prior[0], cell("lD", t).ravel())
        compare(worst, "lower F", -trial.F.T, cell("lF", t))
        compare(worst, "lower G", -trial.G.T, cell("lG", t))
        compare(worst, "lower R", trial.q_pi.T, cell("lR", t))
        compare(worst, "lower w", [g[-1] for g in low.gamma_trace], cell("lw", t).ravel())
        compare(worst, "lower wn", lwn, cell("lwn", t).ravel())
        compare(worst, "lower Q", low.qs_seq[0], per_policy(cell("lQ1", t)))
        for f in range(2):
            compare(worst, "lower X", np.einsum("p,pts->st", low.q_pi, low.qs_seq[f]), cell(f"lX{f + 1}", t))
        # SPM keeps the responses about the K steps it ran: (iterations, states, K, K), squeezed when K = 1
        compare(worst, "lower xn", lxn[0][:, :, :K].reshape(cell("lxn1", t).shape), cell("lxn1", t))
    assert max(worst.values()) < TOL, worst
    # what the run shows: each page is read with one saccade (left) and the third lower trial, whose word the higher
    # level already knows, stops at once; the higher level reads page 2 where the prior over it was still split
    assert stops == [2, 2, 1]
    assert cell("lD", 1).ravel()[1:].min() > 0.4 and high.q_pi[1] > 0.99  # it reports "sad" (story 3)


def taking(actions):
    """``act`` for Hierarchy.step: the agent takes the given actions in turn (SPM's fixed ``MDP.u``), as
    ``sample_action`` does after choosing one (the Agent has no public call for a given action; test_spm_trials.py
    does the same)."""
    queue = [np.asarray(a) for a in actions]

    def act(agent):
        agent.action = queue.pop(0)
        agent.prior = agent._cycle.next_prior()
        agent.t += 1
        return agent.action

    return act


def moving_agent(model, policies, T, tau):
    """spm_MDP_VB_X with moving policies (MDP.U): the precision fixed (gamma = 1/beta = 1), no backward message into
    the present, the trial's first step started from D softened (start="prior"), 16 iterations of step 1/tau with
    SPM's convergence test."""
    method = aif.MarginalMessagePassing(num_iter=16, tau=tau, early_stop=True, spm_backward=True)
    return aif.Agent(model, policies=policies, gamma=1.0, inference=method, inference_horizon=T, trial_length=T,
                     efe_terms=SPM_TERMS, efe=SPM_EFE, sequence=aif.SequenceOptions(start="prior"))


def test_dem_demo_mdp_reading_with_moving_policies_equals_spm():
    """DEM_demo_MDP_reading's own model (six stories of four words, words of two pictures in four quadrants, possibly
    flipped; moving policies at both levels), one trial fixed at both levels (fields r*).

    F, G, q(pi), the beliefs about the story, the words sent up, and each lower trial's stop, prior, F, G and q(pi)
    agree to 1e-12 with SPM's start of a trial with moving policies, softmax(ln x / 4) of beliefs holding D at the
    first step (``SequenceOptions(start="prior")``); from uniform beliefs (the default) 16 gradient iterations
    leave up to 3.3e-6 of the difference."""
    high_model = aif.GenerativeModel(A=[cell("rA", g) for g in range(3)],
                                     B=[with_controls(cell("rB", f)) for f in range(3)],
                                     C=[cell("rC", g).ravel() for g in range(3)],
                                     D=[cell("rD", f).ravel() / cell("rD", f).sum() for f in range(3)])
    low_model = aif.GenerativeModel(A=[cell("rlA", g) for g in range(2)],
                                    B=[with_controls(cell("rlB", f)) for f in range(4)],
                                    D=[cell("rlD0", f).ravel() / cell("rlD0", f).sum() for f in range(4)])
    turn_page, happy, sad = [0, 1, 0], [0, 0, 1], [0, 0, 2]
    saccades = [[[0, k, 0, 0]] for k in range(4)]
    hierarchy = Hierarchy(moving_agent(high_model, np.array([[turn_page], [happy], [sad]]), 5, 1 / 4),
                          moving_agent(low_model, np.array(saccades), T, 1 / 2), [Link(0, 0, np.eye(3))])
    o, u = SPM["ro"].astype(int) - 1, SPM["ru"].astype(int).T - 1
    worst: dict[str, float] = {}

    F, G, R = [], [], []
    for t in range(5):
        lower_u = cell("rlu_given", t).astype(int).T - 1
        hierarchy.step([None, o[1, t], o[2, t]], Replay(cell("rlo_given", t)), act_low=taking(lower_u),
                       act_high=taking(u[t:t + 1]))
        F.append(hierarchy.high.F)
        G.append(hierarchy.high.G)
        R.append(hierarchy.high.q_pi)
    compare(worst, "F", -np.array(F).T, SPM["rF"])
    compare(worst, "G", -np.array(G).T, SPM["rG"])
    compare(worst, "R", np.array(R).T[:, :4], SPM["rR"])  # SPM keeps q(pi) of the steps that chose an action
    compare(worst, "X story", hierarchy.high.qs_seq[0][0], SPM["rX1"].T)  # one past, shared by every moving policy
    compare(worst, "O", np.array([trial.outcome[0] for trial in hierarchy.lower]).T, SPM["rO1"])
    for t, trial in enumerate(hierarchy.lower):
        assert trial.steps == int(cell("rlT", t).squeeze())
        compare(worst, "lower D", trial.prior[0], cell("rlD", t).ravel())
        compare(worst, "lower F", -trial.F.T, cell("rlF", t))
        compare(worst, "lower G", -trial.G.T, cell("rlG", t))
        compare(worst, "lower R", trial.q_pi[:-1].T, cell("rlR", t).reshape(4, -1))
    assert max(worst.values()) < 1e-12, worst
    assert [trial.steps for trial in hierarchy.lower] == [3, 2, 2, 3, 1]  # the last word is known before a look


def test_the_prior_sent_down_is_the_average_over_policies_and_the_outcome_sent_up_is_a_permuted_posterior():
    """Relabelling the lower level's words (a permuted link, the lower model permuted to match) changes nothing
    above; the prior sent down at step 2 is L A_word . X(:, 2), X the higher policies' beliefs averaged with q(pi) at
    step 1 (not the prediction under the action taken); without chi every lower trial runs to its end."""
    perm = np.array([2, 0, 1])  # lower word k is higher word perm[k]
    lA = [cell("lA", g)[:, perm] for g in range(2)]
    low = aif.GenerativeModel(A=lA, B=[with_controls(cell("lB", f)) for f in range(2)],
                              D=[np.full(3, 1 / 3), np.array([1.0, 0.0, 0.0])])
    link = np.eye(3)[perm]  # (lower word, higher word)
    hierarchy = Hierarchy(spm_agent(high_model(), SPM["V"]), spm_agent(low, SPM["lV"]),
                          [Link(0, 0, link)], stop_entropy=None)
    o = SPM["o"].astype(int) - 1
    hierarchy.reset()
    hierarchy.step([None, o[1, 0], o[2, 0]], Replay(cell("lo_given", 0)))
    high = hierarchy.high
    predicted = [np.einsum("p,ps->s", high.q_pi, q[:, 1]) for q in high.qs_seq]
    A_word = np.einsum("oabc,a,b,c->o", high.model.A[0], *predicted)
    assert np.abs(hierarchy.descend()[0] - link @ A_word).max() < 1e-14
    assert np.abs(hierarchy.descend()[0] - cell("lD", 1).ravel()[perm]).max() < TOL
    for t in range(1, T):
        hierarchy.step([None, o[1, t], o[2, t]], Replay(cell("lo_given", t)))
    assert [trial.steps for trial in hierarchy.lower] == [T, T, T]
    assert np.abs(hierarchy.lower[0].outcome[0] - SPM["O1"][:, 0]).max() < 1e-6  # the same reading of page 1
    assert high.q_pi.argmax() == 1  # and the same report


def test_a_one_step_higher_level_sends_down_its_prediction_under_the_action_taken():
    high = aif.Agent(high_model(), policies=policies_of(SPM["V"])[:, :1])
    hierarchy = Hierarchy(high, spm_agent(low_model(), SPM["lV"]), [Link(0, 0, np.eye(3))])
    o = SPM["o"].astype(int) - 1
    hierarchy.reset()
    action = hierarchy.step([None, o[1, 0], o[2, 0]], Replay(cell("lo_given", 0)))
    expected = aif.predict(high.model, high.qs, action)
    A_word = np.einsum("oabc,a,b,c->o", high.model.A[0], *expected)
    np.testing.assert_allclose(hierarchy.descend()[0], A_word, atol=1e-14)


def test_bad_links_and_calls_are_refused():
    high, low = spm_agent(high_model(), SPM["V"]), spm_agent(low_model(), SPM["lV"])
    with pytest.raises(ModelError, match=r"row 0 sums to 2"):
        Link(0, 0, np.array([[1.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ModelError, match=r"column 1 sums to 0.5"):
        Link(0, 0, np.array([[1.0, 0.5], [0.0, 0.0]]))
    with pytest.raises(ModelError, match="non-negative"):
        Link(0, 0, np.array([[2.0, -1.0], [-1.0, 2.0]]))
    with pytest.raises(ParameterError, match="Link.modality"):
        Link(-1, 0, np.eye(3))
    with pytest.raises(ModelError, match=r"shape \(2, 2\), expected \(3, 3\)"):
        Hierarchy(high, low, [Link(0, 0, np.eye(2))])
    with pytest.raises(ModelError, match="Link.modality 3 is out of range: the higher model has 3 modalities"):
        Hierarchy(high, low, [Link(3, 0, np.eye(3))])
    with pytest.raises(ModelError, match="Link.factor 2 is out of range"):
        Hierarchy(high, low, [Link(0, 2, np.eye(3))])
    with pytest.raises(ModelError, match="two links share factor 0"):
        Hierarchy(high, low, [Link(0, 0, np.eye(3)), Link(2, 0, np.eye(3))])
    with pytest.raises(StrategyError, match="links must be a non-empty list"):
        Hierarchy(high, low, [])
    with pytest.raises(StrategyError, match="high must be an aif.Agent"):
        Hierarchy("agent", low, [Link(0, 0, np.eye(3))])
    with pytest.raises(ParameterError, match="must infer over its whole trial"):
        Hierarchy(high, aif.Agent(low_model()), [Link(0, 0, np.eye(3))])
    hierarchy = Hierarchy(high, low, [Link(0, 0, np.eye(3))])
    with pytest.raises(ObservationError, match="observation 7 is out of range for modality 1"):
        hierarchy.step([None, 7, 0], Replay(cell("lo_given", 0)))
    assert hierarchy.lower == []  # refused before the lower trial ran
    o = SPM["o"].astype(int) - 1
    for t in range(T):
        hierarchy.step([None, o[1, t], o[2, t]], Replay(cell("lo_given", t)))
    with pytest.raises(CallOrderError, match="call reset"):
        hierarchy.step([None, 0, 0], Replay(cell("lo_given", 0)))


def test_example_spm_hierarchical_quick(tmp_path, monkeypatch, capsys):
    """examples/spm_hierarchical.py --quick, run in this process; its models (the miniature and DEM_demo_MDP_reading's)
    are the SPM file's."""
    out = tmp_path / "spm_hierarchical.png"
    monkeypatch.setattr(sys, "argv", ["spm_hierarchical.py", "--quick", "--out", str(out)])
    example = runpy.run_path(str(ROOT / "examples" / "spm_hierarchical.py"), run_name="__main__")
    assert out.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "story 3 (sad): reported sad" in printed
    high, low = example["semantic"](), example["lexical"]()
    reading_high, reading_low = example["semantic"](example["TALES"], right=0.0), example["reading_lexical"]()
    for ours, key in ((high.A, "A"), (high.B, "B"), (low.A, "lA"), (low.B, "lB"), (reading_high.A, "rA"),
                      (reading_high.B, "rB"), (reading_high.C, "rC"), (reading_low.A, "rlA"), (reading_low.B, "rlB")):
        pairs = zip(ours, SPM[key][0], strict=True)
        assert all(np.array_equal(a.squeeze(), b.squeeze()) for a, b in pairs), key
