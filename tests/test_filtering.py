"""aif.filtering: exact smoothing, online variational filtering and the free energy of belief sequences.

Three kinds of evidence: pymdp 1.0 (``smoothing_exact``, ``smoothing_ovf``, ``variational_filtering_step``,
``calc_vfe``, ``update_posterior_states(return_info=True)``) on random models, each reference jitted once for one
set of sizes (compiling is most of this file's time); brute-force enumeration of trajectories; and pymdp's own
examples (its ``test/test_vfe_jax.py``), whose expected values are brute-force sums or written out by hand. Every
pymdp comparison records its largest deviation in ``MEASURED`` (printed with ``-s``).
"""

import itertools
import math

import numpy as np
import pytest
from scipy.stats import entropy

import aif
from aif import (
    BeliefError,
    ModelError,
    ObservationError,
    ParameterError,
    PolicyError,
    VariationalFiltering,
    filter_states,
    forward_backward,
    free_energy_terms,
    sequence_free_energy,
    smooth,
)
from aif.maths import CLIP

TOL = 1e-10
MEASURED: dict = {}
NUM_MODELS = 12  # random models per pymdp comparison


def record(name, ours, theirs):
    """Assert agreement to ``TOL`` and keep the largest deviation seen under ``name``."""
    diff = float(np.max(np.abs(np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float))))
    MEASURED[name] = max(MEASURED.get(name, 0.0), diff)
    assert diff < TOL, f"{name}: {diff}"


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    if MEASURED:
        print("\nmax |aif - pymdp|:", {k: f"{v:.1e}" for k, v in sorted(MEASURED.items())})


@pytest.fixture(scope="module")
def jnp():
    pytest.importorskip("pymdp")
    from _reference import jax64

    jax64()
    import jax.numpy as jnp

    return jnp


def onehots(idx, n):
    return np.eye(n)[np.asarray(idx)]


def history(rng, model, T):
    """Random outcome indices (T, M) and actions (T - 1, F)."""
    obs = np.stack([rng.integers(o, size=T) for o in model.num_obs], axis=1)
    actions = np.stack([rng.integers(u, size=T - 1) for u in model.num_controls], axis=1)
    return obs, actions


# ----------------------------------------------------------------------------------------------------------
# Exact smoothing against pymdp 1.0 (one factor, as pymdp has it)


def test_forward_backward_and_smooth_equal_pymdp_exact_smoothing(jnp):
    import jax
    from pymdp import inference

    S, O, U, T = 4, [3, 2], 3, 5
    rng = np.random.default_rng(0)
    smoothing_exact = jax.jit(inference.smoothing_exact)
    for _ in range(NUM_MODELS):
        model = aif.random_model(rng, [S], O, [U])
        obs, actions = history(rng, model, T)
        fb = forward_backward(model, obs.tolist(), actions)
        # exact filtering is one-step exact inference from the predicted prior (pymdp's "exact" method)
        np.testing.assert_allclose(fb.filtered[0], filter_states(model, obs.tolist(), actions, method=aif.Exact())
                                   .qs[0], atol=1e-14)
        smoothed, joints = smoothing_exact(fb.filtered, model.B, actions)
        record("forward_backward qs (smoothing_exact)", fb.qs[0], smoothed[0])
        record("forward_backward joints (smoothing_exact)", fb.joints[0], joints[0])
        # beliefs that are not exact filtering: smooth's input
        noisy = [rng.dirichlet(np.ones(S), T)]
        smoothed, joints = smoothing_exact(noisy, model.B, actions)
        sm = smooth(model, noisy, actions)
        record("smooth qs (smoothing_exact)", sm.qs[0], smoothed[0])
        record("smooth joints (smoothing_exact)", sm.joints[0], joints[0])


# ----------------------------------------------------------------------------------------------------------
# Online variational filtering and the free energy against pymdp 1.0 (several factors)


S2, O2, U2, T2 = [3, 2], [3, 4], [2, 2], 3  # several factors: sizes, and steps of a history
A_DEPS2 = [[0, 1], [1]]


def several_factors(rng, B_dependencies=None):
    """Random two-factor models, each with a history (modality 1 observed as a probability vector, which pymdp
    1.0 scores by the expected log-likelihood) and a prior: ``(model, obs, actions, prior, pymdp's obs)``."""
    for _ in range(NUM_MODELS):
        model = aif.random_model(rng, S2, O2, U2, A_dependencies=A_DEPS2, B_dependencies=B_dependencies)
        obs, actions = history(rng, model, T2)
        soft = rng.dirichlet(np.ones(O2[1]), T2)
        prior = [rng.dirichlet(np.ones(s)) for s in S2]
        yield (model, [[int(o[0]), p] for o, p in zip(obs, soft, strict=True)], actions, prior,
               [onehots(obs[:, 0], O2[0]), soft])


def test_variational_filtering_and_smooth_equal_pymdp_ovf(jnp):
    import jax
    from pymdp import algos, inference, maths

    @jax.jit
    def reference(A, B, prior, obs, actions):
        posts, preds, conds = [], [], []
        for t in range(T2):  # pymdp.algos.update_variational_filtering's scan, unbatched
            ln_A = maths.compute_log_likelihood_per_modality([o[t] for o in obs], A)
            # the last step's transition is update_variational_filtering's padding of ones
            Bs = [b[..., actions[t, f]] if t < T2 - 1 else jnp.ones(b.shape[:2]) for f, b in enumerate(B)]
            post, prior, cond = algos.variational_filtering_step(prior, Bs, ln_A, A_DEPS2)
            posts.append(post)
            preds.append(prior)
            conds.append(cond)
        posts = [jnp.stack(p) for p in zip(*posts, strict=True)]
        return (posts, [jnp.stack(p[:-1]) for p in zip(*preds, strict=True)],
                [jnp.stack(c[:-1]) for c in zip(*conds, strict=True)], inference.smoothing_ovf(posts, B, actions))

    # B_dependencies [f]: pymdp's online variational filtering has no others
    for model, obs, actions, prior, pymdp_obs in several_factors(np.random.default_rng(1)):
        posts, preds, conds, (ovf_qs, ovf_joints) = reference(model.A, model.B, prior, pymdp_obs, actions)
        filt = filter_states(model, obs, actions, prior, VariationalFiltering.pymdp())
        sm = smooth(model, filt.qs, actions)
        for f in range(len(S2)):
            record("VariationalFiltering posteriors (variational_filtering_step)", filt.qs[f], posts[f])
            record("VariationalFiltering priors (its predictions)", filt.priors[f][1:], preds[f])
            record("smooth qs (smoothing_ovf)", sm.qs[f], ovf_qs[f])
            record("smooth joints (smoothing_ovf)", sm.joints[f], ovf_joints[f])
            # the filter's reverse conditionals q(s_t | s_t+1) are the pairs over the next marginal
            record("reverse conditionals (variational_filtering_step)", sm.joints[f] / sm.qs[f][1:, :, None],
                   conds[f])


def test_free_energy_equals_pymdp_calc_vfe_and_return_info(jnp):
    import jax
    from pymdp import inference, maths

    B_deps = [[0, 1], [0, 1]]

    @jax.jit
    def reference(A, B, prior, obs, actions, qs, joints):
        vfe = maths.calc_vfe(qs, prior, obs=obs, A=A, B=B, past_actions=actions, A_dependencies=A_DEPS2,
                             B_dependencies=B_deps, joint_qs=joints, return_decomposition=True)
        # return_info of one-step inference (fpi) at the first observation
        info = inference.update_posterior_states(A, B, [o[:1] for o in obs], None, prior=prior,
                                                 A_dependencies=A_DEPS2, B_dependencies=B_deps, method="fpi",
                                                 return_info=True)
        return vfe, info

    names = ("neg_entropy", "prior_cross_entropy", "transition_cross_entropy", "accuracy")
    for model, obs, actions, prior, pymdp_obs in several_factors(np.random.default_rng(2), B_deps):
        # beliefs to score: the exact smoothed marginals and pairs (from the joint state space)
        e = forward_backward(model, obs, actions, prior, soft_obs="expected_log")
        (vfe_t, vfe, parts), (qs_fpi, info) = reference(model.A, model.B, prior, pymdp_obs, actions, e.qs, e.joints)
        ours = sequence_free_energy(model, obs, e.qs, actions, prior, e.joints, guard=CLIP, soft_obs="expected_log")
        record("sequence_free_energy vfe_t (calc_vfe with joint_qs)", ours.vfe_t, vfe_t)
        record("sequence_free_energy vfe (calc_vfe with joint_qs)", ours.vfe, vfe)
        for name in names:
            record(f"sequence_free_energy {name} (calc_vfe)", getattr(ours, name), parts[name + "_t"])
        ours = free_energy_terms(model, obs[0], [q[0] for q in qs_fpi], prior, guard=CLIP, soft_obs="expected_log")
        record("free_energy_terms vfe (fpi return_info)", ours.vfe, info["vfe"])
        for name in names:
            record(f"free_energy_terms {name} (fpi return_info)", getattr(ours, name),
                   info["vfe_components"][name + "_t"])


# ----------------------------------------------------------------------------------------------------------
# Independent formulas: brute-force enumeration, aif's one-step functions


def brute_force(model, obs, actions, prior):
    """Every trajectory of joint states ``(K, T, F)``, its posterior ``(K,)``, ``ln p(o_1..T)`` and ``ln p(o, s)``
    ``(K,)``, by enumeration."""
    S, T, F = model.num_states, len(obs), model.num_factors
    states = list(itertools.product(*[range(s) for s in S]))
    trajectories = np.array(list(itertools.product(states, repeat=T)))  # (K, T, F)
    log_joint = np.zeros(len(trajectories))
    for k, traj in enumerate(trajectories):
        lp = sum(np.log(prior[f][traj[0, f]]) for f in range(F))
        for t in range(T):
            for A_m, deps, o in zip(model.A, model.A_dependencies, obs[t], strict=True):
                lp += np.log(A_m[(o, *traj[t, deps])])
            if t > 0:
                for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies, strict=True)):
                    lp += np.log(B_f[(traj[t, f], *traj[t - 1, deps], actions[t - 1, f])])
        log_joint[k] = lp
    top = log_joint.max()
    log_evidence = top + np.log(np.exp(log_joint - top).sum())
    return trajectories, np.exp(log_joint - log_evidence), log_evidence, log_joint


def test_forward_backward_is_exact_for_interacting_factors():
    rng = np.random.default_rng(2)
    model = aif.random_model(rng, [2, 3], [3, 2], [2, 2], A_dependencies=[[0, 1], [1]],
                             B_dependencies=[[0, 1], [0, 1]])
    obs, actions = history(rng, model, 3)
    prior = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    fb = forward_backward(model, obs.tolist(), actions, prior)
    traj, p, log_evidence, log_joint = brute_force(model, obs.tolist(), actions, prior)
    assert fb.log_evidence == pytest.approx(log_evidence, abs=1e-12)
    for f, deps in enumerate(model.B_dependencies):
        for t in range(3):
            marginal = np.bincount(traj[:, t, f], weights=p, minlength=model.num_states[f])
            np.testing.assert_allclose(fb.qs[f][t], marginal, atol=1e-12)
        for t in range(2):
            pairs = np.zeros(fb.joints[f].shape[1:])
            np.add.at(pairs, (traj[:, t + 1, f], *[traj[:, t, g] for g in deps]), p)
            np.testing.assert_allclose(fb.joints[f][t], pairs, atol=1e-12)
    # one step: filtered = smoothed = the exact posterior, and ln p(o) = aif.log_evidence
    one = forward_backward(model, obs[:1].tolist(), None, prior)
    assert one.log_evidence == pytest.approx(aif.log_evidence(model, obs[0].tolist(), prior), abs=1e-12)
    exact = aif.infer_states(model, obs[0].tolist(), prior, method=aif.Exact())
    for f in range(2):
        np.testing.assert_allclose(one.qs[f][0], exact[f], atol=1e-14)
        assert one.joints[f].shape == (0, model.num_states[f], *[model.num_states[g] for g in model.B_dependencies[f]])
    # a probability-vector observation is uncertain evidence: ln p(o) of its mixture likelihood
    soft = [rng.dirichlet(np.ones(3)), int(obs[0, 1])]
    assert forward_backward(model, [soft], None, prior).log_evidence == pytest.approx(
        aif.log_evidence(model, soft, prior), abs=1e-12)
    # mean field over factors and steps: F = E_q[ln q - ln p(o, s)] under q = prod_t prod_f q_t(s_f), enumerated
    q = np.prod([fb.qs[f][t, traj[:, t, f]] for t in range(3) for f in range(2)], axis=0)
    mean_field = sequence_free_energy(model, obs.tolist(), fb.qs, actions, prior)
    assert mean_field.vfe == pytest.approx(np.sum(q * (np.log(q) - log_joint)), abs=1e-12)
    assert mean_field.vfe >= -log_evidence


def test_free_energy_terms_are_the_library_vfe_and_kl():
    rng = np.random.default_rng(3)
    for sizes, deps in (([3], None), ([2, 3], [[0, 1], [1]])):
        model = aif.random_model(rng, sizes, [3, 2], A_dependencies=deps)
        obs = [int(rng.integers(o)) for o in model.num_obs]
        qs = [rng.dirichlet(np.ones(s)) for s in sizes]
        prior = [rng.dirichlet(np.ones(s)) for s in sizes]
        terms = free_energy_terms(model, obs, qs, prior)
        assert terms.vfe == pytest.approx(aif.variational_free_energy(model, obs, qs, prior), abs=1e-13)
        assert terms.complexity == pytest.approx(sum(entropy(q, p) for q, p in zip(qs, prior, strict=True)),
                                                 abs=1e-13)
        assert terms.transition_cross_entropy == 0.0
    # at the exact posterior of one factor F = -ln p(o)
    post = aif.infer_states(model := aif.random_model(rng, [4], [3]), [1], method=aif.Exact())
    assert free_energy_terms(model, [1], post).vfe == pytest.approx(-aif.log_evidence(model, [1]), abs=1e-13)


def test_variational_filtering_is_one_sweep_from_the_prior_and_runs_in_the_agent():
    rng = np.random.default_rng(4)
    model = aif.random_model(rng, [3], [4, 2])
    obs, prior = [2, 1], rng.dirichlet(np.ones(3))
    np.testing.assert_allclose(aif.infer_states(model, obs, [prior], method=VariationalFiltering())[0],
                               aif.infer_states(model, obs, [prior], method=aif.Exact())[0], atol=1e-14)
    # several factors: a fixed-point iteration started at the prior, stopped after its first parallel sweep
    model = aif.random_model(rng, [3, 2], [4, 3], [3, 2])
    prior = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    trace: list = []
    qs = aif.infer_states(model, [0, 2], prior, method=VariationalFiltering(), trace=trace)
    lnL = np.log(model.A[0][0]) + np.log(model.A[1][2])  # (3, 2)
    np.testing.assert_allclose(qs[0], aif.maths.softmax(lnL @ prior[1] + np.log(prior[0])), atol=1e-14)
    np.testing.assert_allclose(qs[1], aif.maths.softmax(prior[0] @ lnL + np.log(prior[1])), atol=1e-14)
    assert trace == [pytest.approx(aif.variational_free_energy(model, [0, 2], qs, prior), abs=1e-12)]
    # an Agent holding the strategy filters exactly as filter_states does
    agent = aif.Agent(model, inference=VariationalFiltering())
    obs_seq, actions = [[0, 2], [3, 1], [1, 0]], []
    for o in obs_seq:
        agent.infer_states(o)
        agent.infer_policies()
        actions.append(agent.sample_action())
    filt = filter_states(model, obs_seq, np.array(actions[:-1]), method=VariationalFiltering())
    for f in range(2):
        np.testing.assert_allclose(filt.qs[f][-1], agent.qs[f], atol=1e-14)


# ----------------------------------------------------------------------------------------------------------
# pymdp's own examples (test/test_vfe_jax.py): expected values by enumeration or by hand


def pymdp_example():
    A = [np.array([[0.92, 0.12], [0.08, 0.88]])]
    B = [np.array([[[0.85, 0.30], [0.20, 0.65]], [[0.15, 0.70], [0.80, 0.35]]])]
    return aif.GenerativeModel(A, B, D=[np.array([0.55, 0.45])]), [[0], [1], [1]], np.array([[0], [1]])


@pytest.mark.parametrize("route", ["exact", "ovf"])
def test_pymdp_example_smoothed_posterior_vfe_is_the_bruteforce_vfe(route):
    """pymdp's test_calc_vfe_with_smoothed_{exact,ovf}_posterior_matches_bruteforce_sequence_vfe."""
    model, obs, actions = pymdp_example()
    if route == "exact":
        smoothed = forward_backward(model, obs, actions)
    else:  # pymdp's "ovf" agent: its FPI each step, then smoothing_ovf
        smoothed = smooth(model, filter_states(model, obs, actions, method=aif.FixedPoint.pymdp()).qs, actions)
    vfe = sequence_free_energy(model, obs, smoothed.qs, actions, joints=smoothed.joints, guard=CLIP).vfe
    log_evidence = brute_force(model, obs, actions, model.D)[2]
    assert vfe == pytest.approx(-log_evidence, abs=1e-12)  # = E_q[ln q - ln p(o, s)] at the exact posterior


def test_pymdp_example_sequence_terms_by_hand():
    """pymdp's test_calc_vfe_sequence_matches_manual_terms_and_parameter_kls (its state terms)."""
    A = [np.array([[0.90, 0.15], [0.10, 0.85]])]
    B = [np.array([[[0.85, 0.30], [0.20, 0.65]], [[0.15, 0.70], [0.80, 0.35]]])]
    model = aif.GenerativeModel(A, B, D=[np.array([0.65, 0.35])])
    qs = np.array([[0.80, 0.20], [0.25, 0.75], [0.60, 0.40]])
    obs = [[0], [1], [np.array([0.40, 0.60])]]
    actions = np.array([[0], [1]])
    terms = sequence_free_energy(model, obs, [qs], actions, guard=CLIP, soft_obs="expected_log")
    expected = []
    for t in range(3):
        dynamics = (-np.sum(qs[t] * np.log(model.D[0])) if t == 0 else
                    -np.sum(qs[t][:, None] * qs[t - 1][None, :] * np.log(B[0][..., actions[t - 1, 0]])))
        o = onehots(obs[t][0], 2) if t < 2 else obs[t][0]
        accuracy = np.sum(qs[t] * np.sum(o[:, None] * np.log(A[0]), axis=0))
        expected.append(np.sum(qs[t] * np.log(qs[t])) + dynamics - accuracy)
    np.testing.assert_allclose(terms.vfe_t, expected, atol=1e-14)
    assert terms.vfe == pytest.approx(sum(expected), abs=1e-13)


# ----------------------------------------------------------------------------------------------------------
# Bad input


def test_errors_name_the_argument():
    rng = np.random.default_rng(5)
    model = aif.random_model(rng, [2, 3], [3], [2, 2])
    obs, actions = history(rng, model, 3)
    obs = obs.tolist()
    qs = [rng.dirichlet(np.ones(s), 3) for s in model.num_states]
    with pytest.raises(PolicyError, match="actions_window is missing"):
        forward_backward(model, obs)
    with pytest.raises(PolicyError, match=r"actions_window\[1, 0\] = 2 is out of range"):
        smooth(model, qs, np.array([[0, 0], [2, 0]]))
    with pytest.raises(BeliefError, match=r"filtered\[1\] has shape \(2, 3\)"):
        smooth(model, [qs[0], qs[1][:2]], actions)
    with pytest.raises(BeliefError, match=r"qs_seq\[0\]\[1\] is not a probability vector"):
        sequence_free_energy(model, obs, [qs[0] * [[1], [2], [1]], qs[1]], actions)
    fb = forward_backward(model, obs, actions)
    with pytest.raises(BeliefError, match=r"joints\[0\] has shape \(2, 2, 2, 1\)"):
        sequence_free_energy(model, obs, fb.qs, actions, joints=[fb.joints[0][..., None], fb.joints[1]])
    with pytest.raises(BeliefError, match=r"joints\[1\]\[0\] sums over the previous states"):
        sequence_free_energy(model, obs, fb.qs, actions, joints=[fb.joints[0], fb.joints[1][:, ::-1]])
    with pytest.raises(ObservationError, match=r"obs_window\[3\]"):
        filter_states(model, obs + [[7]], np.vstack([actions, [[0, 0]]]))
    dep = aif.random_model(rng, [2, 2], [2], B_dependencies=[[0, 1], [1]])
    with pytest.raises(ModelError, match=r"B_dependencies\[0\] = \[0, 1\]; forward_backward"):
        smooth(dep, [np.full((2, 2), 0.5)] * 2, np.zeros((1, 2), dtype=int))
    # an observation the model rules out after the ones before it
    A = [np.array([[1.0, 0.0], [0.0, 1.0]])]
    B = [np.eye(2)[:, :, None]]
    certain = aif.GenerativeModel(A, B, D=[np.array([1.0, 0.0])])
    with pytest.raises(ObservationError, match=r"obs_window\[1\] has probability 0"):
        forward_backward(certain, [[0], [1]])
    with pytest.raises(ParameterError, match="forward_backward enumerates"):
        forward_backward(model, obs, actions, max_bytes=1000)
    # zeros in A and B are fine where the observations allow them
    assert math.isfinite(forward_backward(certain, [[0], [0]]).log_evidence)


def test_smooth_refuses_beliefs_its_transitions_cannot_connect():
    """Filtered mass on a state B cannot reach would be dropped (pymdp's rule) and the smoothed beliefs would no
    longer sum to 1: an error naming the factor, the step and the action instead."""
    B = np.eye(3)[:, :, None]  # every state stays where it is
    model = aif.GenerativeModel(A=[np.eye(3)], B=[B])
    filtered = [np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])]  # moved from state 0 to state 1
    with pytest.raises(BeliefError, match="smoothing factor 0 lost 1 of its belief at step 0"):
        aif.smooth(model, filtered)
