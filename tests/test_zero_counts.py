"""Dirichlet counts with zeros: structural zeros (pymdp.legacy, SPM) and pymdp 1.0's unmasked updates.

A zero count has probability 0 in the mean, no novelty, and stays zero under learning unless
``mask_zeros=False`` (pymdp 1.0 adds evidence to it). A column of zeros is refused.
"""

import numpy as np
import pytest
from _reference import jax64, obj, random_config

import aif
from aif.efe import pA_info_gain, pB_info_gain
from aif.envs.tmaze import LEFT_ARM, REWARD, RIGHT_ARM, TMaze, tmaze_arrays
from aif.errors import ModelError
from aif.learning import WNORM_EXACT, reduce_dirichlet, update_A, update_B, update_D

TOL = 1e-12


def with_zeros(rng, p, rate=0.4):
    """``p`` with random entries set to zero, keeping the largest count of every column."""
    keep = p == p.max(axis=0, keepdims=True)
    return np.where((rng.random(p.shape) < rate) & ~keep, 0.0, p)


def zero_model(rng, config=None):
    """A random model whose counts pA, pB, pD have random structural zeros; A, B, D are their means."""
    c = config or random_config(rng)
    m = aif.random_model(rng, c["num_states"], c["num_obs"], c["num_controls"], A_dependencies=c["A_dependencies"],
                         dirichlet=True)
    pA, pB, pD = ([with_zeros(rng, p) for p in ps] for ps in (m.pA, m.pB, m.pD))
    return aif.GenerativeModel(None, None, pA=pA, pB=pB, pD=pD, A_dependencies=m.A_dependencies)


def beliefs(rng, model, n=None):
    size = () if n is None else (n,)
    return [rng.dirichlet(np.ones(s), size=size) for s in model.num_states]


def max_diff(xs, ys):
    return max(np.abs(np.asarray(x, float) - np.asarray(y, float)).max() for x, y in zip(xs, ys, strict=True))


def test_mean_of_counts_with_zeros_is_the_normalised_counts():
    m = zero_model(np.random.default_rng(0))
    for p, a in zip(m.pA + m.pB + m.pD, m.A + m.B + m.D, strict=True):
        np.testing.assert_array_equal(a == 0, p == 0)
        np.testing.assert_allclose(a, p / p.sum(axis=0), rtol=0, atol=TOL)


def test_updates_with_structural_zeros_match_pymdp_legacy():
    from pymdp.legacy import learning as legacy

    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(200):
        m = zero_model(rng)
        qs, qs_prev, lr = beliefs(rng, m), beliefs(rng, m), float(rng.uniform(0.1, 3.0))
        obs = [int(rng.integers(o)) for o in m.num_obs]
        action = np.array([int(rng.integers(u)) for u in m.num_controls])
        pairs = [
            (update_A(m.pA, obs, qs, lr, A_dependencies=m.A_dependencies),
             legacy.update_obs_likelihood_dirichlet_factorized(obj(m.pA), obj(m.A), obs, obj(qs), m.A_dependencies,
                                                               lr=lr)),
            (update_B(m.pB, qs, qs_prev, action, lr, B_dependencies=m.B_dependencies),
             legacy.update_state_likelihood_dirichlet_interactions(obj(m.pB), obj(m.B), action, obj(qs), obj(qs_prev),
                                                                   m.B_dependencies, lr=lr)),
            (update_D(m.pD, qs, lr), legacy.update_state_prior_dirichlet(obj(m.pD), obj(qs), lr=lr)),
        ]
        for ours, ref in pairs:
            worst = max(worst, max_diff(ours, ref))
        for ours, before in zip(pairs[0][0] + pairs[1][0] + pairs[2][0], m.pA + m.pB + m.pD, strict=True):
            assert np.all(ours[before == 0] == 0)
    print("pymdp.legacy updates with structural zeros, 200 models, max |diff|:", worst)
    assert worst < TOL


def test_unmasked_updates_match_pymdp_1():
    jax = jax64()
    from pymdp import learning as learning1

    rng = np.random.default_rng(2)
    worst, T = 0.0, 3
    for _ in range(20):
        m = zero_model(rng)
        qs_seq = [rng.dirichlet(np.ones(s), size=T) for s in m.num_states]  # (T, S_f)
        obs_seq = [rng.integers(o, size=T) for o in m.num_obs]
        actions = np.stack([rng.integers(u, size=T - 1) for u in m.num_controls], axis=-1)  # (T-1, F)
        pA, pB, pD = m.pA, m.pB, m.pD
        for t in range(T):
            pA = update_A(pA, [o[t] for o in obs_seq], [q[t] for q in qs_seq], A_dependencies=m.A_dependencies,
                          mask_zeros=False)
        for t in range(1, T):
            pB = update_B(pB, [q[t] for q in qs_seq], [q[t - 1] for q in qs_seq], actions[t - 1],
                          B_dependencies=m.B_dependencies, mask_zeros=False)
        for m_, deps in enumerate(m.A_dependencies):
            ref, _ = learning1.update_obs_likelihood_dirichlet_m(
                m.pA[m_], np.eye(m.num_obs[m_])[obs_seq[m_]], [qs_seq[f] for f in range(m.num_factors)], deps)
            worst = max(worst, max_diff([pA[m_]], [ref]))
        for f, deps in enumerate(m.B_dependencies):
            joint = [qs_seq[f][1:]] + [qs_seq[g][:-1] for g in deps]
            ref, _ = learning1.update_state_transition_dirichlet_f(
                m.pB[f], np.eye(m.num_controls[f])[actions[:, f]], joint)
            worst = max(worst, max_diff([pB[f]], [ref]))
        # pymdp 1.0 has no D learning; unmasked, update_D adds the belief everywhere.
        qs = [q[0] for q in qs_seq]
        worst = max(worst, max_diff(update_D(pD, qs, mask_zeros=False), [p + q for p, q in zip(pD, qs, strict=True)]))
        # zeros did learn
        assert any((np.asarray(p)[z == 0] > 0).any() for p, z in zip(pA + pB, m.pA + m.pB, strict=True))
    print("pymdp 1.0 updates (mask_zeros=False), 20 models, max |diff|:", worst)
    assert worst < TOL
    jax.clear_caches()


def test_novelty_with_zeros_matches_pymdp_legacy_and_pymdp_1():
    jax64()
    import jax.numpy as jnp
    from pymdp import control as control1
    from pymdp.legacy import control as legacy_control

    rng = np.random.default_rng(3)
    worst = {"pA legacy": 0.0, "pB legacy": 0.0, "pA 1.0": 0.0, "pB 1.0": 0.0}
    P = 4
    for case in range(100):
        m = zero_model(rng)
        qs_t, qs_prev = beliefs(rng, m, P), beliefs(rng, m)
        actions = np.stack([rng.integers(u, size=P) for u in m.num_controls], axis=-1)  # (P, F)
        gain_A = pA_info_gain(m.pA, qs_t, m.A_dependencies)
        gain_B = pB_info_gain(m.pB, qs_t, [np.tile(q, (P, 1)) for q in qs_prev], actions, m.B_dependencies)
        assert np.isfinite(gain_A).all() and np.isfinite(gain_B).all()
        for p in range(P):
            qs_pi = [obj([q[p] for q in qs_t])]
            qo_pi = legacy_control.get_expected_obs_factorized(qs_pi, obj(m.A), m.A_dependencies)
            ref_A = legacy_control.calc_pA_info_gain_factorized(obj(m.pA), qo_pi, qs_pi, m.A_dependencies)
            ref_B = legacy_control.calc_pB_info_gain_interactions(obj(m.pB), qs_pi, obj(qs_prev), m.B_dependencies,
                                                                  actions[p][None])
            worst["pA legacy"] = max(worst["pA legacy"], abs(gain_A[p] - float(np.squeeze(ref_A))))
            worst["pB legacy"] = max(worst["pB legacy"], abs(gain_B[p] - float(np.squeeze(ref_B))))
        if case < 10:  # pymdp 1.0 un-jitted is slow: a few models
            exact_A = pA_info_gain(m.pA, qs_t, m.A_dependencies, wnorm=WNORM_EXACT)
            exact_B = pB_info_gain(m.pB, qs_t, [np.tile(q, (P, 1)) for q in qs_prev], actions, m.B_dependencies,
                                   wnorm=WNORM_EXACT)
            pA, pB, A = ([jnp.asarray(x) for x in xs] for xs in (m.pA, m.pB, m.A))
            for p in range(P):
                qs_p = [jnp.asarray(q[p]) for q in qs_t]
                qo = control1.compute_expected_obs(qs_p, A, m.A_dependencies)
                ref_A = control1.calc_negative_pA_info_gain(pA, qo, qs_p, m.A_dependencies)
                ref_B = control1.calc_negative_pB_info_gain(pB, qs_p, [jnp.asarray(q) for q in qs_prev],
                                                            m.B_dependencies, jnp.asarray(actions[p]))
                worst["pA 1.0"] = max(worst["pA 1.0"], abs(exact_A[p] + float(ref_A)))
                worst["pB 1.0"] = max(worst["pB 1.0"], abs(exact_B[p] + float(ref_B)))
    print("novelty with structural zeros, max |diff|:", worst)
    assert max(worst.values()) < 1e-10, worst


def tmaze_demo_model():
    """pymdp's T-maze learning demo: ``pA = dirichlet_like(A, scale=1e16)`` (zeros where A is zero), then the
    reward counts of both arms set to 1 (unknown), A their mean."""
    A, B, D = tmaze_arrays()
    pA = [a * 1e16 for a in A]
    pA[1][REWARD:, RIGHT_ARM:LEFT_ARM + 1, :] = 1.0
    C = [np.zeros(4), np.array([0.0, 3.0, -3.0]), np.zeros(2)]
    return aif.GenerativeModel(None, B, C, D, pA=pA)


@pytest.mark.parametrize("online", [True, False])
def test_tmaze_learning_demo_keeps_structural_zeros(online):
    model = tmaze_demo_model()
    zeros = [p == 0 for p in model.pA]
    assert zeros[1].any()
    terms = (aif.Utility(), aif.InfoGain(), aif.Novelty("A"))
    agent = aif.Agent(model, policy_horizon=2, efe_terms=terms, rng=np.random.default_rng(0),
                      learning=aif.Learning(lr=0.25, learn_B=False, online=online))
    env = TMaze()
    for episode in range(4):
        obs, _ = env.reset(seed=episode)
        agent.reset()
        for _ in range(3):
            obs = env.step(int(agent.step(obs)[0]))[0]
            assert np.isfinite(agent.G).all() and np.isfinite(agent.q_pi).all()
        if not online:
            agent.learn()
    for p, a, z in zip(agent.model.pA, agent.model.A, zeros, strict=True):
        assert np.isfinite(p).all() and np.all(p[z] == 0) and np.all(a[z] == 0)
    learned = agent.model.pA[1][REWARD:, RIGHT_ARM:LEFT_ARM + 1]
    assert learned.sum() > 4.0  # the unknown reward counts grew


def test_forgetting_keeps_structural_zeros():
    rng = np.random.default_rng(4)
    m = zero_model(rng)
    qs, obs = beliefs(rng, m), [int(rng.integers(o)) for o in m.num_obs]
    prior = [np.where(p == 0, 1.0, p) for p in m.pA]  # positive where the counts are structural zeros
    for to_zero in (None, prior):
        new = update_A(m.pA, obs, qs, forgetting=0.5, prior=to_zero, A_dependencies=m.A_dependencies)
        assert all(np.all(n[p == 0] == 0) and np.all(n[p > 0] > 0) for n, p in zip(new, m.pA, strict=True))
    agent = aif.Agent(m, learning=aif.Learning(forgetting=0.7, learn_D=True))
    for _ in range(3):
        agent.step([int(rng.integers(o)) for o in m.num_obs])
    agent.reset()
    for new, old in zip(agent.model.pA + agent.model.pB + agent.model.pD, m.pA + m.pB + m.pD, strict=True):
        np.testing.assert_array_equal(new == 0, old == 0)


def test_unmasked_learning_setting_and_io_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    m = zero_model(rng)
    aif.save_model(tmp_path / "m.npz", m)
    loaded = aif.load_model(tmp_path / "m.npz")
    for a, b in zip(m.pA + m.pB + m.pD + m.A, loaded.pA + loaded.pB + loaded.pD + loaded.A, strict=True):
        np.testing.assert_array_equal(a, b)
    agent = aif.Agent(m, learning=aif.Learning(mask_zeros=False))
    obs = [0] * m.num_modalities
    agent.step(obs)
    expected = update_A(m.pA, obs, agent.qs, A_dependencies=m.A_dependencies, mask_zeros=False)
    assert max_diff(agent.model.pA, expected) == 0
    assert any((new[old == 0] > 0).any() for new, old in zip(expected, m.pA, strict=True))  # zeros got evidence
    aif.save_agent(tmp_path / "a.npz", agent)
    assert aif.load_agent(tmp_path / "a.npz").learning == aif.Learning(mask_zeros=False)


def test_model_reduction_with_zeros():
    q, p = np.array([3.0, 2.0, 0.0]), np.array([1.0, 1.0, 0.0])
    # A structural zero of all three is left out of every Beta function (SPM12's spm_betaln).
    F, s = reduce_dirichlet(q, p, np.array([2.0, 1.0, 0.0]))
    F2, s2 = reduce_dirichlet(q[:2], p[:2], np.array([2.0, 1.0]))
    assert F == pytest.approx(F2, abs=TOL) and np.array_equal(s[:2], s2) and s[2] == 0
    # The result is the limit of small counts in place of the zeros.
    for r in (np.array([2.0, 1.0, 0.0]), np.array([2.0, 1.0, 1.0]), np.array([2.0, 0.0, 0.0])):
        q1 = np.array([3.0, 1.0, 0.0])
        eps = np.array([0.0, 0.0, 1e-9])
        F = reduce_dirichlet(q1, p, r)[0]
        assert np.isfinite(F)
        assert F == pytest.approx(reduce_dirichlet(q1 + eps, p + eps, np.where(r == 0, 1e-9, r))[0], abs=1e-6)
    # A reduced prior that forbids an outcome the data contain has no evidence.
    assert reduce_dirichlet(q, p, np.array([1.0, 0.0, 0.0]))[0] == np.inf
    with pytest.raises(ModelError, match=r"q_dir is 1\.0 and p_dir is 0\.0 at index \(2,\)"):
        reduce_dirichlet(np.array([3.0, 2.0, 1.0]), p, np.ones(3))


def test_negative_counts_and_columns_of_zeros_are_refused():
    m = zero_model(np.random.default_rng(6), random_config(np.random.default_rng(6), max_factors=1))
    pB = [b.copy() for b in m.pB]
    pB[0][:, 1, 0] = 0.0
    with pytest.raises(ModelError, match=r"Dirichlet counts pB\[0\] sum to 0\.0 in the column at index \(1, 0\)"):
        m.replace(pB=pB, B=None)
    pB[0][:, 1, 0] = -1.0
    with pytest.raises(ModelError, match=r"pB\[0\] has a negative entry -1\.0 at index \(0, 1, 0\)"):
        m.replace(pB=pB, B=None)
    with pytest.raises(ModelError, match=r"Dirichlet counts pD\[0\] sum to 0\.0: a Dirichlet needs a positive"):
        update_D([np.zeros(2)], [np.array([0.5, 0.5])])
    with pytest.raises(ModelError, match=r"Dirichlet counts q_dir sum to inf in the column at index \(0,\)"):
        reduce_dirichlet(1e308, np.ones((3, 2)), np.ones((3, 2)))  # a total that overflows
    with pytest.raises(ModelError, match=r"Dirichlet counts pA\[0\] sum to 0\.0 in the column at index \(1,\)"):
        update_A([np.array([[1.0, 0.0], [1.0, 0.0]])], [0], [np.array([0.5, 0.5])])
    with pytest.raises(ModelError, match=r"r_dir sum to 0\.0"):
        reduce_dirichlet(np.ones(2), np.ones(2), np.zeros(2))
