"""Dirichlet learning, parameter information gain, spm_wnorm and Bayesian model reduction.

References: pymdp.legacy (NumPy, one random model at a time), pymdp 1.0 (JAX; models of one structure are
stacked and vmapped so that each structure compiles once), SPM's reference files, and independent formulas
(the exact mutual information of a Dirichlet column, by enumeration).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import digamma, gammaln

import aif
from aif.efe import pA_info_gain, pB_info_gain
from aif.errors import BeliefError, ModelError, ObservationError, ParameterError, PolicyError
from aif.learning import WNORM_EXACT, WNORM_LEGACY, WNORM_SPM, reduce_dirichlet, spm_wnorm, update_A, update_B, update_D

UPDATE_TOL = 1e-10
INFO_GAIN_TOL = 1e-8
SPM_WNORM_TOL = 1e-10
BMR_TOL = 1e-8


def obj(arrays):
    """A pymdp.legacy object array."""
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def random_structure(rng):
    """Sizes and dependencies: 1-3 factors, 1-3 modalities, 2-6 states, 1-4 controls, sparse A and B deps."""
    nf, nm = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    S = [int(s) for s in rng.integers(2, 7, size=nf)]
    O = [int(o) for o in rng.integers(2, 7, size=nm)]
    U = [int(u) for u in rng.integers(1, 5, size=nf)]
    if rng.random() < 0.5:
        A_deps = [list(range(nf)) for _ in range(nm)]
    else:
        A_deps = [sorted(rng.choice(nf, size=rng.integers(1, nf + 1), replace=False).tolist()) for _ in range(nm)]
    if rng.random() < 0.5:
        B_deps = [[f] for f in range(nf)]
    else:
        B_deps = [sorted({f, *rng.choice(nf, size=rng.integers(0, nf + 1), replace=False).tolist()})
                  for f in range(nf)]
    return S, O, U, A_deps, B_deps


def random_case(rng, structure, T=4, P=5, H=3):
    """A random model with counts, a belief/observation/action sequence and a batch of policies."""
    S, O, U, A_deps, B_deps = structure
    model = aif.random_model(rng, S, O, U, A_dependencies=A_deps, B_dependencies=B_deps, dirichlet=True)
    return dict(
        model=model,
        qs_seq=[rng.dirichlet(np.ones(s), size=T) for s in S],  # qs_seq[f]: (T, S_f)
        obs_seq=[rng.integers(o, size=T) for o in O],  # obs_seq[m]: (T,)
        obs_prob=[rng.dirichlet(np.ones(o)) for o in O],
        actions=np.stack([rng.integers(u, size=T - 1) for u in U], axis=-1),  # (T-1, F)
        policies=np.stack([rng.integers(u, size=(P, H)) for u in U], axis=-1),  # (P, H, F)
        lr=float(rng.uniform(0.1, 3.0)),
    )


# ----------------------------------------------------------------------------------------------------------
# Learning against pymdp.legacy


def test_updates_match_pymdp_legacy():
    from pymdp.legacy import learning as legacy

    rng = np.random.default_rng(11)
    worst = {"A": 0.0, "A_prob": 0.0, "B": 0.0, "D": 0.0}
    for _ in range(200):
        c = random_case(rng, random_structure(rng))
        m = c["model"]
        A_deps, B_deps, lr = m.A_dependencies, m.B_dependencies, c["lr"]
        qs, qs_prev = [q[1] for q in c["qs_seq"]], [q[0] for q in c["qs_seq"]]
        obs = [int(o[1]) for o in c["obs_seq"]]

        ours = update_A(m.pA, obs, qs, lr=lr, A_dependencies=A_deps)
        ref = legacy.update_obs_likelihood_dirichlet_factorized(obj(m.pA), obj(m.A), obs, obj(qs), A_deps, lr=lr)
        worst["A"] = max(worst["A"], max(np.abs(a - b).max() for a, b in zip(ours, ref, strict=False)))

        ours = update_A(m.pA, c["obs_prob"], qs, lr=lr, A_dependencies=A_deps)
        ref = legacy.update_obs_likelihood_dirichlet_factorized(obj(m.pA), obj(m.A), obj(c["obs_prob"]), obj(qs),
                                                                A_deps, lr=lr)
        worst["A_prob"] = max(worst["A_prob"], max(np.abs(a - b).max() for a, b in zip(ours, ref, strict=False)))

        action = c["actions"][0]
        ours = update_B(m.pB, qs, qs_prev, action, lr=lr, B_dependencies=B_deps)
        ref = legacy.update_state_likelihood_dirichlet_interactions(obj(m.pB), obj(m.B), action, obj(qs),
                                                                    obj(qs_prev), B_deps, lr=lr)
        worst["B"] = max(worst["B"], max(np.abs(a - b).max() for a, b in zip(ours, ref, strict=False)))

        ours = update_D(m.pD, qs, lr=lr)
        ref = legacy.update_state_prior_dirichlet(obj(m.pD), obj(qs), lr=lr)
        worst["D"] = max(worst["D"], max(np.abs(a - b).max() for a, b in zip(ours, ref, strict=False)))
    print("pymdp.legacy updates, max |diff|:", worst)
    assert max(worst.values()) < UPDATE_TOL, worst


def test_forgetting_discounts_the_old_counts_before_the_update():
    # Neither pymdp forgets: the update with forgetting is pymdp.legacy's update applied to forgetting * counts.
    from pymdp.legacy import learning as legacy

    rng = np.random.default_rng(12)
    for _ in range(20):
        c = random_case(rng, random_structure(rng))
        m, fr, lr = c["model"], float(rng.uniform(0.05, 1.0)), c["lr"]
        qs, qs_prev = [q[1] for q in c["qs_seq"]], [q[0] for q in c["qs_seq"]]
        obs = [int(o[0]) for o in c["obs_seq"]]
        ours = update_A(m.pA, obs, qs, lr=lr, forgetting=fr, A_dependencies=m.A_dependencies)
        ref = legacy.update_obs_likelihood_dirichlet_factorized(obj([fr * p for p in m.pA]), obj(m.A), obs, obj(qs),
                                                                m.A_dependencies, lr=lr)
        assert max(np.abs(a - b).max() for a, b in zip(ours, ref, strict=False)) < UPDATE_TOL
        action = c["actions"][0]
        ours = update_B(m.pB, qs, qs_prev, action, lr=lr, forgetting=fr, B_dependencies=m.B_dependencies)
        ref = legacy.update_state_likelihood_dirichlet_interactions(obj([fr * p for p in m.pB]), obj(m.B), action,
                                                                    obj(qs), obj(qs_prev), m.B_dependencies, lr=lr)
        assert max(np.abs(a - b).max() for a, b in zip(ours, ref, strict=False)) < UPDATE_TOL
        ours = update_D(m.pD, qs, lr=lr, forgetting=fr)
        assert max(np.abs(a - (fr * p + lr * q)).max() for a, p, q in zip(ours, m.pD, qs, strict=False)) < UPDATE_TOL


def test_factor_and_modality_selection_leaves_the_others_unchanged():
    rng = np.random.default_rng(13)
    m = aif.random_model(rng, [3, 4], [2, 5], [2, 3], dirichlet=True)
    qs = [np.full(3, 1 / 3), np.full(4, 1 / 4)]
    new = update_A(m.pA, [1, 4], qs, modalities=[1], forgetting=0.5)
    assert np.array_equal(new[0], m.pA[0]) and not np.allclose(new[1], m.pA[1])
    new = update_B(m.pB, qs, qs, np.array([1, 2]), factors=[0])
    assert np.array_equal(new[1], m.pB[1]) and not np.allclose(new[0], m.pB[0])


def test_update_B_touches_only_the_taken_action_and_handles_uncontrolled_factors():
    rng = np.random.default_rng(14)
    m = aif.random_model(rng, [3, 2], [2], [4, 1], B_dependencies=[[0, 1], [1]], dirichlet=True)
    qs = [rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(2))]
    qs_prev = [rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(2))]
    new = update_B(m.pB, qs, qs_prev, np.array([2, 0]), lr=2.0, B_dependencies=m.B_dependencies)
    delta0 = new[0] - m.pB[0]
    assert np.allclose(delta0[..., 2], 2.0 * np.einsum("a,b,c->abc", qs[0], qs_prev[0], qs_prev[1]))
    assert np.all(delta0[..., [0, 1, 3]] == 0)
    assert np.allclose(new[1][..., 0] - m.pB[1][..., 0], 2.0 * np.outer(qs[1], qs_prev[1]))
    with pytest.raises(PolicyError, match="factor 1 with 1 controls"):
        update_B(m.pB, qs, qs_prev, np.array([0, 1]), B_dependencies=m.B_dependencies)


# ----------------------------------------------------------------------------------------------------------
# Learning and information gain against pymdp 1.0 (JAX)


# Each structure costs pymdp 1.0 one compilation, so a few hand-picked ones cover the cases: one factor,
# an uncontrolled factor, sparse A dependencies, B dependencies, 3 factors and 3 modalities.
PYMDP_1_STRUCTURES = [  # (num_states, num_obs, num_controls, A_dependencies, B_dependencies)
    ([4], [3], [3], [[0]], [[0]]),
    ([2, 5], [3, 6], [2, 1], [[0], [0, 1]], [[0], [1]]),
    ([3, 2, 4], [2, 5, 3], [4, 1, 2], [[0, 2], [1], [0, 1, 2]], [[0, 1], [1], [0, 2]]),
    ([6, 3], [4], [3, 4], [[1]], [[0, 1], [0, 1]]),
    ([2, 2, 3], [2, 3], [2, 3, 1], [[0, 1, 2], [2]], [[0], [1, 2], [2]]),
]


def test_updates_and_info_gain_match_pymdp_1():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from pymdp import control as control1
    from pymdp import learning as learning1

    rng = np.random.default_rng(21)
    per_structure, T, P = 34, 4, 5
    worst = {"A": 0.0, "B": 0.0, "pA_gain": 0.0, "pB_gain": 0.0}
    for structure in PYMDP_1_STRUCTURES + [random_structure(rng)]:
        S, O, U, A_deps, B_deps = structure
        cases = [random_case(rng, structure, T=T, P=P, H=1) for _ in range(per_structure)]
        beliefs = [dict(qs=[rng.dirichlet(np.ones(s), size=P) for s in S],
                        qs_prev=[rng.dirichlet(np.ones(s), size=P) for s in S]) for _ in cases]

        def one_model(pA, A, pB, B, obs_seq, qs_seq, actions, lr, qs_t, qs_prev, actions_t):
            qA, _ = learning1.update_obs_likelihood_dirichlet(pA, A, obs_seq, qs_seq, A_dependencies=A_deps,
                                                              categorical_obs=False, num_obs=O, lr=lr)
            joint = [[qs_seq[f][1:]] + [qs_seq[g][:-1] for g in B_deps[f]] for f in range(len(S))]
            qB, _ = learning1.update_state_transition_dirichlet(pB, B, joint, actions, num_controls=U, lr=lr)

            def per_policy(qs_p, qs_prev_p, action_p):
                qo = control1.compute_expected_obs(qs_p, A, A_deps)
                return (control1.calc_negative_pA_info_gain(pA, qo, qs_p, A_deps),
                        control1.calc_negative_pB_info_gain(pB, qs_p, qs_prev_p, B_deps, action_p))

            neg_gain_A, neg_gain_B = jax.vmap(per_policy)(qs_t, qs_prev, actions_t)
            return qA, qB, neg_gain_A, neg_gain_B

        def stack(get):
            return jax.tree_util.tree_map(lambda *xs: jnp.asarray(np.stack(xs)), *[get(c, b) for c, b in
                                                                                     zip(cases, beliefs, strict=False)])

        # One compilation per structure: the models of a structure are stacked and vmapped.
        qA, qB, neg_gain_A, neg_gain_B = jax.jit(jax.vmap(one_model))(
            stack(lambda c, b: c["model"].pA), stack(lambda c, b: c["model"].A),
            stack(lambda c, b: c["model"].pB), stack(lambda c, b: c["model"].B),
            stack(lambda c, b: c["obs_seq"]), stack(lambda c, b: c["qs_seq"]),
            stack(lambda c, b: c["actions"]), stack(lambda c, b: c["lr"]),
            stack(lambda c, b: b["qs"]), stack(lambda c, b: b["qs_prev"]),
            stack(lambda c, b: c["policies"][:, 0]))

        for i, (c, b) in enumerate(zip(cases, beliefs, strict=False)):
            m, lr = c["model"], c["lr"]
            pA, pB = m.pA, m.pB
            for t in range(T):  # pymdp 1.0 sums the outer products over time; here one update per step
                pA = update_A(pA, [o[t] for o in c["obs_seq"]], [q[t] for q in c["qs_seq"]], lr=lr,
                              A_dependencies=A_deps)
            for t in range(1, T):
                pB = update_B(pB, [q[t] for q in c["qs_seq"]], [q[t - 1] for q in c["qs_seq"]],
                              c["actions"][t - 1], lr=lr, B_dependencies=B_deps)
            worst["A"] = max(worst["A"], max(np.abs(np.asarray(x[i]) - y).max() for x, y in zip(qA, pA, strict=False)))
            worst["B"] = max(worst["B"], max(np.abs(np.asarray(x[i]) - y).max() for x, y in zip(qB, pB, strict=False)))
            gain_A = pA_info_gain(m.pA, b["qs"], A_deps, wnorm=WNORM_EXACT)
            gain_B = pB_info_gain(m.pB, b["qs"], b["qs_prev"], c["policies"][:, 0], B_deps, wnorm=WNORM_EXACT)
            worst["pA_gain"] = max(worst["pA_gain"], np.abs(gain_A + np.asarray(neg_gain_A[i])).max())
            worst["pB_gain"] = max(worst["pB_gain"], np.abs(gain_B + np.asarray(neg_gain_B[i])).max())
    print("pymdp 1.0 updates and exact info gain, max |diff|:", worst)
    assert worst["A"] < UPDATE_TOL and worst["B"] < UPDATE_TOL, worst
    assert worst["pA_gain"] < INFO_GAIN_TOL and worst["pB_gain"] < INFO_GAIN_TOL, worst


# ----------------------------------------------------------------------------------------------------------
# Information gain against pymdp.legacy, an exact formula, and a behaviour


def stepwise_beliefs(c):
    """pymdp.legacy's predicted beliefs under each policy, as batched (P, S_f) arrays per step."""
    from pymdp.legacy import control as legacy_control

    m = c["model"]
    qs0 = [q[0] for q in c["qs_seq"]]
    per_policy = [legacy_control.get_expected_states_interactions(obj(qs0), obj(m.B), m.B_dependencies, pol)
                  for pol in c["policies"]]
    H = c["policies"].shape[1]
    qs_t = [[np.stack([qs_pi[t][f] for qs_pi in per_policy]) for f in range(m.num_factors)] for t in range(H)]
    qs_before = [[np.tile(q, (len(per_policy), 1)) for q in qs0]] + qs_t[:-1]
    return qs0, per_policy, qs_t, qs_before


def test_info_gain_matches_pymdp_legacy():
    from pymdp.legacy import control as legacy_control

    rng = np.random.default_rng(31)
    worst_A = worst_B = worst_A_given_qo = 0.0
    for _ in range(200):
        c = random_case(rng, random_structure(rng), P=6, H=int(rng.integers(1, 4)))
        m = c["model"]
        qs0, per_policy, qs_t, qs_before = stepwise_beliefs(c)
        ref_A, ref_B, qo_pi_all = [], [], []
        for pol, qs_pi in zip(c["policies"], per_policy, strict=False):
            qo_pi = legacy_control.get_expected_obs_factorized(qs_pi, obj(m.A), m.A_dependencies)
            qo_pi_all.append(qo_pi)
            ref_A.append(legacy_control.calc_pA_info_gain_factorized(obj(m.pA), qo_pi, qs_pi, m.A_dependencies))
            ref_B.append(legacy_control.calc_pB_info_gain_interactions(obj(m.pB), qs_pi, obj(qs0),
                                                                       m.B_dependencies, pol))
        H = c["policies"].shape[1]
        ours_A = sum(pA_info_gain(m.pA, qs_t[t], m.A_dependencies) for t in range(H))
        ours_A_given_qo = sum(pA_info_gain(m.pA, qs_t[t], m.A_dependencies,
                                           qo_t=[np.stack([qo[t][g] for qo in qo_pi_all]) for g in range(len(m.A))])
                              for t in range(H))
        ours_B = sum(pB_info_gain(m.pB, qs_t[t], qs_before[t], c["policies"][:, t], m.B_dependencies)
                     for t in range(H))
        worst_A = max(worst_A, np.abs(ours_A - np.ravel(ref_A)).max())
        worst_A_given_qo = max(worst_A_given_qo, np.abs(ours_A_given_qo - np.ravel(ref_A)).max())
        worst_B = max(worst_B, np.abs(ours_B - np.ravel(ref_B)).max())
    print("pymdp.legacy info gain, max |diff| (pA, pA given qo, pB):", worst_A, worst_A_given_qo, worst_B)
    assert max(worst_A, worst_A_given_qo, worst_B) < INFO_GAIN_TOL, (worst_A, worst_A_given_qo, worst_B)


def dirichlet_kl(b, a):
    """KL[Dir(b) || Dir(a)] for vectors."""
    return (gammaln(b.sum()) - gammaln(b).sum() - gammaln(a.sum()) + gammaln(a).sum()
            + ((b - a) * (digamma(b) - digamma(b.sum()))).sum())


def test_exact_weights_give_the_mutual_information_of_a_column():
    # With the state known and qo the column's mean, the exact info gain is E_o KL[Dir(a + e_o) || Dir(a)].
    rng = np.random.default_rng(32)
    for _ in range(20):
        pA = rng.uniform(0.05, 20.0, size=(4, 3))
        s = int(rng.integers(3))
        a = pA[:, s]
        exact = sum(a[o] / a.sum() * dirichlet_kl(a + np.eye(4)[o], a) for o in range(4))
        gain = pA_info_gain([pA], [np.eye(3)[s][None]], wnorm=WNORM_EXACT)
        assert gain.shape == (1,)
        assert abs(gain[0] - exact) < 1e-10
        # The heuristic is about twice the exact value for well-counted columns, never smaller.
        assert pA_info_gain([pA], [np.eye(3)[s][None]])[0] >= gain[0]
    big = np.full((3, 1), 500.0)
    ratio = pA_info_gain([big], [np.ones((1, 1))])[0] / pA_info_gain([big], [np.ones((1, 1))], wnorm=WNORM_EXACT)[0]
    assert abs(ratio - 2.0) < 1e-2


@pytest.mark.parametrize("wnorm", [WNORM_LEGACY, WNORM_SPM, WNORM_EXACT])
def test_policies_toward_rarely_counted_states_gain_more(wnorm):
    # One factor, two states; action u moves to state u. State 0's columns are well counted, state 1's are not.
    pA = [np.array([[90.0, 1.0], [10.0, 1.0]])]
    pB = [np.stack([np.array([[50.0, 50.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [50.0, 50.0]])], axis=-1)]
    pB_sparse = [np.stack([np.array([[50.0, 1.0], [1.0, 1.0]]), np.array([[1.0, 1.0], [50.0, 1.0]])], axis=-1)]
    to_0, to_1 = np.eye(2)[[0]], np.eye(2)[[1]]
    qs_t = [np.concatenate([to_0, to_1])]  # policy 0 predicts state 0, policy 1 state 1: (P=2, S=2)
    gain_A = pA_info_gain(pA, qs_t, wnorm=wnorm)
    assert gain_A.shape == (2,) and 0 < gain_A[0] < gain_A[1]
    # Transitions out of state 1 are rarely counted: going 1 -> 1 teaches more than 0 -> 0.
    qs_prev = [np.concatenate([to_0, to_1])]
    gain_B = pB_info_gain(pB_sparse, qs_t, qs_prev, np.array([[0], [1]]), wnorm=wnorm)
    assert 0 < gain_B[0] < gain_B[1]
    # With equally counted columns the two policies gain the same.
    gain_B_even = pB_info_gain(pB, qs_t, qs_prev, np.array([[0], [1]]), wnorm=wnorm)
    assert gain_B_even[0] == pytest.approx(gain_B_even[1], rel=1e-12)


def test_zero_counts_carry_no_novelty():
    pA = np.array([[5.0, 0.0], [5.0, 2.0]])
    gain = pA_info_gain([pA], [np.array([[0.0, 1.0]])])
    # Column 1 is [0, 2]: the zero is masked and a single-outcome column has nothing left to learn.
    assert np.isfinite(gain).all() and gain[0] == pytest.approx(0.0, abs=1e-12)


# ----------------------------------------------------------------------------------------------------------
# SPM reference files


def test_spm_wnorm_matches_spm(spm_file):
    data = spm_file("wnorm_a")
    assert np.abs(spm_wnorm(data["A"], WNORM_SPM) - data["result"]).max() < SPM_WNORM_TOL
    data = spm_file("wnorm_b")
    for i, key in enumerate(("result_1", "result_2")):
        assert np.abs(spm_wnorm(data["A"][0][i], WNORM_SPM) - data[key]).max() < SPM_WNORM_TOL
    # The conventions differ measurably at small counts: pymdp.legacy's 1e-16 is not SPM's exp(-16).
    small = spm_file("wnorm_a")
    assert np.abs(spm_wnorm(small["A"], WNORM_LEGACY) - small["result"]).max() > 1.0


def test_reduce_dirichlet_matches_spm_grid(spm_file):
    data = spm_file("bmr_test_a")
    x = np.linspace(1, 32, 128)
    q = np.stack(np.meshgrid(x, x, indexing="ij"))  # (2, 128, 128): F[i, j] is for q = [x_i, x_j]
    F, s = reduce_dirichlet(q, np.ones((2, 1, 1)), np.array([1.0, 8.0])[:, None, None])
    assert F.shape == (128, 128)
    assert np.abs(F - data["F"]).max() < BMR_TOL
    assert np.allclose(s[1], q[1] + 7.0)


def test_reduce_dirichlet_matches_spm_candidates(spm_file):
    data = spm_file("bmr_test_b")
    F, s = reduce_dirichlet(data["q_dir"], data["p_dir"], data["r_dir"])  # (8, 1), (8, 1), (8, 3)
    assert F.shape == (3,)
    assert np.abs(F - data["F"].ravel()).max() < BMR_TOL
    assert np.abs(s - data["s_dir"]).max() < BMR_TOL


def test_reduce_dirichlet_equals_the_log_evidence_difference():
    # F = ln p(o | full) - ln p(o | reduced), each evidence a ratio of multivariate beta functions.
    rng = np.random.default_rng(41)
    p, r = rng.uniform(0.5, 3.0, size=5), rng.uniform(0.5, 3.0, size=5)
    counts = rng.integers(0, 6, size=5).astype(float)
    def ln_beta(a):
        return gammaln(a).sum() - gammaln(a.sum())

    F, s = reduce_dirichlet(p + counts, p, r)
    assert np.allclose(s, r + counts)
    assert F == pytest.approx((ln_beta(p + counts) - ln_beta(p)) - (ln_beta(r + counts) - ln_beta(r)), abs=1e-12)
    assert reduce_dirichlet(p + counts, p, p)[0] == pytest.approx(0.0, abs=1e-12)


def test_reduce_dirichlet_rejects_a_reduction_that_removes_data():
    with pytest.raises(ModelError, match="s_dir"):
        reduce_dirichlet(np.array([1.5, 1.0]), np.array([3.0, 1.0]), np.array([1.0, 1.0]))


# ----------------------------------------------------------------------------------------------------------
# Properties and input checks


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lr1=st.floats(0.0, 10.0), lr2=st.floats(0.0, 10.0),
       forgetting=st.floats(1e-3, 1.0))
def test_updates_keep_counts_positive_and_are_linear_in_lr(seed, lr1, lr2, forgetting):
    rng = np.random.default_rng(seed)
    c = random_case(rng, random_structure(rng))
    m = c["model"]
    qs, qs_prev = [q[1] for q in c["qs_seq"]], [q[0] for q in c["qs_seq"]]
    obs, action = [int(o[0]) for o in c["obs_seq"]], c["actions"][0]
    updates = {
        "A": lambda lr, p: update_A(p, obs, qs, lr, forgetting, A_dependencies=m.A_dependencies),
        "B": lambda lr, p: update_B(p, qs, qs_prev, action, lr, forgetting, B_dependencies=m.B_dependencies),
        "D": lambda lr, p: update_D(p, qs, lr, forgetting),
    }
    for name, update in updates.items():
        counts = getattr(m, "p" + name)
        decayed = update(0.0, counts)
        both, one, two = update(lr1 + lr2, counts), update(lr1, counts), update(lr2, counts)
        for p, d, b, x, y in zip(counts, decayed, both, one, two, strict=False):
            assert (b > 0).all() and np.isfinite(b).all()
            assert np.allclose(d, forgetting * p, rtol=1e-12, atol=0)
            assert np.allclose(b - d, (x - d) + (y - d), rtol=1e-9, atol=1e-9)


def test_updates_are_pure():
    rng = np.random.default_rng(51)
    m = aif.random_model(rng, [3, 2], [4], [2, 2], dirichlet=True)
    before = [p.copy() for p in m.pA + m.pB + m.pD]
    qs = [np.full(3, 1 / 3), np.full(2, 1 / 2)]
    update_A(m.pA, [2], qs, forgetting=0.3)
    update_B(m.pB, qs, qs, np.array([1, 0]), forgetting=0.3)
    update_D(m.pD, qs, forgetting=0.3)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.pA + m.pB + m.pD, strict=False))


def test_bad_input_is_named():
    rng = np.random.default_rng(52)
    m = aif.random_model(rng, [3], [4], [2], dirichlet=True)
    qs = [np.full(3, 1 / 3)]
    with pytest.raises(ParameterError, match="lr"):
        update_A(m.pA, [0], qs, lr=-0.1)
    with pytest.raises(ParameterError, match="forgetting"):
        update_D(m.pD, qs, forgetting=0.0)
    with pytest.raises(ParameterError, match="forgetting"):
        update_B(m.pB, qs, qs, np.array([0]), forgetting=1.5)
    with pytest.raises(ObservationError, match="observation 4 is out of range for modality 0 with 4"):
        update_A(m.pA, [4], qs)
    with pytest.raises(ObservationError, match="obs\\[0\\] is not a probability vector"):
        update_A(m.pA, [np.array([0.5, 0.5, 0.5, 0.0])], qs)
    with pytest.raises(BeliefError, match="qs\\[0\\] has shape"):
        update_A(m.pA, [1], [np.full(2, 0.5)])
    with pytest.raises(ModelError, match="pA\\[0\\] sum to 0\\.0 in the column at index \\(0,\\)"):
        update_A([np.zeros((4, 3))], [1], qs)
    with pytest.raises(PolicyError, match="action 2 is out of range for factor 0"):
        update_B(m.pB, qs, qs, np.array([2]))


def test_info_gain_checks_shapes_and_actions():
    pA, pB = [np.ones((2, 3))], [np.ones((3, 3, 2))]
    with pytest.raises(BeliefError, match="qs_t\\[0\\] has shape \\(4, 2\\), expected \\(4, 3\\)"):
        pA_info_gain(pA, [np.full((4, 2), 0.5)])
    with pytest.raises(ObservationError, match="qo_t\\[0\\]"):
        pA_info_gain(pA, [np.full((4, 3), 1 / 3)], qo_t=[np.full((4, 3), 1 / 3)])
    q = [np.full((4, 3), 1 / 3)]
    with pytest.raises(PolicyError, match="action 2 for factor 0 with 2 controls"):
        pB_info_gain(pB, q, q, np.array([[0], [1], [2], [0]]))
    assert pB_info_gain(pB, q, q, np.array([[0], [1], [1], [0]])).shape == (4,)
