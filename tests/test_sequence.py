"""Inference over time (aif.sequence): SPM's files, pymdp.legacy's run_mmp, pymdp 1.0's run_vmp, and
independent formulas (Bayes' rule, the mean-field VFE summed over every state sequence)."""

import contextlib
import io
import itertools
from dataclasses import replace

import numpy as np
import pytest
from scipy.special import softmax

import aif
from aif.errors import BeliefError, ObservationError, ParameterError, PolicyError
from aif.sequence import MarginalMessagePassing, VariationalMessagePassing, infer_sequence

SPM_TOL = 1e-8
REF_TOL = 1e-10
METHODS = [MarginalMessagePassing(), VariationalMessagePassing()]


def _cells(x):
    return [np.array(a, dtype=float) for a in x[0]]


# --------------------------------------------------------------------------------------------------------
# SPM: mmp_a .. mmp_d (one window each)


@pytest.mark.parametrize("stem", ["mmp_a", "mmp_b", "mmp_c", "mmp_d"])
def test_mmp_reproduces_spm_files(spm_file, stem):
    """The window's last belief after 5 iterations of SPM's MMP (the file's ``qs``), to 1e-8.

    The generating scripts (pymdp's test/matlab_crossval/generation/mmp_matlab_test_*.m) use the window
    ``t - t_horizon .. t`` (``t_horizon + 1`` observations), one future step under ``policy`` (none at the
    trial's last step, mmp_d), and reset beliefs to uniform before each step, so the prior at a window that
    does not start the trial is ``B(u) @ uniform``. ``qs`` is the belief at the window's *last* step (the
    future one in a to c).
    """
    m = spm_file(stem)
    A, B = _cells(m["A"]), _cells(m["B"])
    model = aif.GenerativeModel(A, B)
    nf = model.num_factors
    obs = m["obs_idx"].astype(int) - 1                                  # (modalities, time)
    t = int(m["t"][0, 0]) - 1
    start = max(0, t - int(m["t_horizon"][0, 0]))
    # every transition of the trial so far, then the policy's: (t + 1, factors)
    actions = np.vstack([m["previous_actions"].astype(int).reshape(-1, nf),
                         m["policy"].astype(int).reshape(1, nf)]) - 1
    last_step = stem == "mmp_d"
    if start == 0:
        prior = None                                                    # D, uniform in these files
    else:
        prior = [B[f][:, :, actions[start - 1, f]].mean(axis=1) for f in range(nf)]
    horizon = 0 if last_step else 1
    qs, F = infer_sequence(model, [list(obs[:, k]) for k in range(start, t + 1)], actions[start:t],
                           actions[None, t : t + horizon], prior=prior,
                           method=MarginalMessagePassing(num_iter=5))
    expected = _cells(m["qs"])
    dev = max(np.abs(qs[f][0, -1] - expected[f].ravel()).max() for f in range(nf))
    assert dev <= SPM_TOL, f"{stem}: max deviation {dev:.3g}"
    assert np.isfinite(F).all()


# --------------------------------------------------------------------------------------------------------
# SPM: a whole trial (vbx_test_1a)


def _spm_MDP_G(A, x):
    """SPM's spm_MDP_G for one modality: H[A x] - E_x H[A(:, s)], dropping states below exp(-16)."""
    keep = x > np.exp(-16)
    po = A[:, keep]
    qo = po @ x[keep]
    return x[keep] @ (po * np.log(po + 1e-16)).sum(0) - qo @ np.log(qo + 1e-16)


def _run_vbx_trial(m, f_sign):
    """Replay vbx_test_1a's trial: MMP over the window, SPM's EFE, q(pi), the most probable action.

    ``f_sign`` is the sign of F in the policy posterior: +1 is SPM's spm_MDP_VB_X (``softmax(-gamma G - F)``
    with F the free energy), -1 the generating script's ``softmax(w Q - F_script)`` with F_script SPM's
    negative free energy, i.e. ``softmax(-gamma G + F)``, "copied how we do it in pymdp".
    """
    A, B = _cells(m["A"]), _cells(m["B"])
    C = np.array(m["C"][0][0], dtype=float)
    model = aif.GenerativeModel(A, B)
    obs = m["obs"].astype(int)[0] - 1
    window = int(m["t_horizon"][0, 0])
    T, U = len(obs), model.num_controls[0]
    policies = np.arange(U).reshape(U, 1, 1)
    ln_C = np.log(softmax(C, axis=0) + 1e-16)                           # lnC = spm_log(spm_softmax(C))
    actions, prior, traces, windows = [], None, [], []
    for t in range(T):
        start = max(0, t - window + 1)
        horizon = 1 if t < T - 1 else 0                                 # no future at the trial's last step
        qs, F, trace = infer_sequence(model, [[o] for o in obs[start : t + 1]],
                                      np.array(actions[start:t], dtype=int).reshape(-1, 1),
                                      policies[:, :horizon], prior=prior,
                                      method=MarginalMessagePassing(num_iter=10), return_trace=True)
        traces.append(trace)
        windows.append(start)
        # SPM's Q sums the Bayesian surprise and utility from the present to the horizon
        neg_G = np.array([sum(_spm_MDP_G(A[0], qs[0][k, j]) + (A[0] @ qs[0][k, j]) @ ln_C[:, start + j]
                              for j in range(t - start, qs[0].shape[1])) for k in range(U)])
        q_pi = softmax(16.0 * neg_G - f_sign * F)
        if t < T - 1:
            actions.append(int(np.argmax(q_pi)))                        # SPM's find(Pu == max(Pu), 1)
        if t >= window - 1:
            # the script's policy-separated prior: the first belief of this window, used as is (no B) as
            # the prior of the next window, which starts one step later
            prior = [qs[0][:, 0]]
    return actions, traces, windows


def test_vbx_test_1a_whole_trial(spm_file):
    """Every iteration, window step, time step and policy of SPM's xn (and vn) to 1e-8, and the actions.

    xn has shape (iterations 10, states 3, time 10, time step 10, policies 3); at step t it is filled for
    the window max(0, t-2) .. t+1 (t .. T-1 at the last step) and zero elsewhere, so comparing the window
    and checking the rest is zero covers the whole array.
    """
    m = spm_file("vbx_test_1a")
    xn, vn = m["xn"][0][0], m["vn"][0][0]
    actions, traces, windows = _run_vbx_trial(m, f_sign=+1)
    covered = np.zeros(xn.shape, dtype=bool)
    dev_x = dev_v = 0.0
    for t, (trace, start) in enumerate(zip(traces, windows, strict=False)):
        steps = trace.qs[0].shape[2]
        # ours: (iteration, policy, step, state); SPM's: (iteration, state, step, time, policy)
        ref_x = xn[:, :, start : start + steps, t, :].transpose(0, 3, 2, 1)
        ref_v = vn[:, :, start : start + steps, t, :].transpose(0, 3, 2, 1)
        dev_x = max(dev_x, np.abs(trace.qs[0] - ref_x).max())
        dev_v = max(dev_v, np.abs(trace.err[0] - ref_v).max())
        covered[:, :, start : start + steps, t, :] = True
    assert dev_x <= SPM_TOL, f"xn: max deviation {dev_x:.3g}"
    assert dev_v <= SPM_TOL, f"vn: max deviation {dev_v:.3g}"
    assert not xn[~covered].any() and not vn[~covered].any()
    assert covered.sum() == 10 * 3 * 3 * (2 + 3 + 4 * 7 + 3)            # 36 (step, time) cells
    assert actions == list(m["actions"].astype(int)[0] - 1)


def test_vbx_test_1a_actions_do_not_depend_on_the_sign_of_F(spm_file):
    """The script scores policies with pymdp's sign of F; on this trial SPM's sign picks the same actions
    (F varies by less than 1e-3 across these policies, far below 16 * the spread of G)."""
    m = spm_file("vbx_test_1a")
    assert _run_vbx_trial(m, f_sign=-1)[0] == _run_vbx_trial(m, f_sign=+1)[0]


# --------------------------------------------------------------------------------------------------------
# pymdp.legacy run_mmp on 200 random models and windows


def _objarr(xs):
    out = np.empty(len(xs), dtype=object)
    for i, x in enumerate(xs):
        out[i] = x
    return out


def _full_A(model):
    """A with every modality spread over all factors (legacy's run_mmp takes no A_dependencies)."""
    out = []
    for A_m, deps in zip(model.A, model.A_dependencies, strict=False):
        shape = [A_m.shape[0]] + [1] * model.num_factors
        for f in deps:
            shape[1 + f] = model.num_states[f]
        A_m = np.transpose(A_m, [0] + [1 + i for i in np.argsort(deps)]).reshape(shape)
        out.append(np.broadcast_to(A_m, (A_m.shape[0], *model.num_states)).copy())
    return out


def _random_window(rng):
    nf, nm = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    ns, no = list(rng.integers(2, 5, size=nf)), list(rng.integers(2, 5, size=nm))
    nu = list(rng.integers(1, 4, size=nf))
    deps = None
    if nf > 1 and rng.random() < 0.5:
        deps = [sorted(rng.choice(nf, size=int(rng.integers(1, nf + 1)), replace=False).tolist()) for _ in no]
    model = aif.random_model(rng, ns, no, nu, A_dependencies=deps,
                             concentration=float(rng.choice([0.3, 1.0, 3.0])))
    W, H, P = int(rng.integers(1, 5)), int(rng.integers(0, 4)), int(rng.integers(1, 5))
    obs = [[int(rng.integers(o)) for o in no] for _ in range(W)]
    actions = np.stack([rng.integers(u, size=W - 1) for u in nu], axis=-1).reshape(W - 1, nf)
    policies = np.stack([rng.integers(u, size=(P, H)) for u in nu], axis=-1).reshape(P, H, nf)
    return model, obs, actions, policies


def test_mmp_matches_legacy_run_mmp_on_200_random_windows():
    """Posteriors at every step and policy, and F (with legacy's F convention), to 1e-10.

    Models with 1 to 3 factors, 1 or 2 modalities (sparse A_dependencies in half of the multi-factor
    ones), windows of 1 to 4 observations, horizons 0 to 3 (0 is legacy's ``last_timestep=True``), 1 to 4
    policies, shared or policy-separated priors, 1 to 10 iterations, random tau, gradient or fixed-point
    updates. Legacy runs one policy at a time; we run them all at once.
    """
    from pymdp.legacy.algos.mmp import run_mmp
    from pymdp.legacy.maths import get_joint_likelihood_seq

    rng = np.random.default_rng(2024)
    dev_q = dev_F = dev_F_spm = 0.0
    multi_factor_F_gap = []
    for _ in range(200):
        model, obs, actions, policies = _random_window(rng)
        nf, (P, H, _) = model.num_factors, policies.shape
        W = len(obs)
        separated = rng.random() < 0.5
        prior = [rng.dirichlet(np.ones(s), size=P if separated else None) for s in model.num_states]
        method = MarginalMessagePassing(num_iter=int(rng.integers(1, 11)), tau=float(rng.uniform(0.1, 1.0)),
                                        grad_descent=bool(rng.random() < 0.8), legacy_vfe=True)
        qs, F = infer_sequence(model, obs, actions, policies, prior=prior, method=method)
        qs_spm, F_spm = infer_sequence(model, obs, actions, policies, prior=prior,
                                       method=replace(method, legacy_vfe=False))
        one_hot = [_objarr([np.eye(n)[o] for n, o in zip(model.num_obs, ob, strict=False)]) for ob in obs]
        lh = get_joint_likelihood_seq(_objarr(_full_A(model)), one_hot, model.num_states)
        for p in range(P):
            with contextlib.redirect_stdout(io.StringIO()):            # legacy's run_mmp prints every lnA
                q_leg, F_leg = run_mmp(lh, _objarr(model.B), policies[p] if H else np.zeros((1, nf), int),
                                       prev_actions=actions if W > 1 else None,
                                       prior=_objarr([pr[p] if separated else pr for pr in prior]),
                                       num_iter=method.num_iter, grad_descent=method.grad_descent,
                                       tau=method.tau, last_timestep=H == 0)
            assert len(q_leg) == W + H
            dev_q = max(dev_q, max(np.abs(q_leg[t][f] - qs[f][p, t]).max()
                                   for t in range(W + H) for f in range(nf)))
            if method.grad_descent:                                     # legacy's F is the negative free energy
                dev_F = max(dev_F, abs(-F_leg - F[p]))
                if nf == 1:
                    dev_F_spm = max(dev_F_spm, abs(-F_leg - F_spm[p]))
                else:
                    multi_factor_F_gap.append(abs(F_leg + F_spm[p]))
        for f in range(nf):
            np.testing.assert_array_equal(qs_spm[f], qs[f])             # legacy_vfe changes F only
    assert dev_q <= REF_TOL, f"posteriors: max deviation {dev_q:.3g}"
    assert dev_F <= REF_TOL, f"F: max deviation {dev_F:.3g}"
    assert dev_F_spm <= REF_TOL                                         # one factor: SPM's F is legacy's
    assert max(multi_factor_F_gap) > 1e-3                               # several: they differ (legacy_vfe)


# --------------------------------------------------------------------------------------------------------
# pymdp 1.0 run_vmp


def test_vmp_matches_pymdp_run_vmp():
    """Posteriors over a past window (no policy horizon: run_vmp has none) on 2 x 40 random models, one
    with sparse A and B dependencies, to 1e-10.

    One jitted, vmapped pymdp call per model shape, in float64.
    """
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp
    from pymdp.algos import run_vmp

    rng = np.random.default_rng(7)
    # sizes, outcomes, controls, A_dependencies, B_dependencies, window, iterations, tau
    shapes = [([3], [4], [3], None, None, 4, 16, 1.0),
              ([2, 3], [3, 2], [2, 2], [[0], [0, 1]], [[0], [0, 1]], 3, 7, 0.5)]
    with jax.enable_x64(True):
        for ns, no, nu, deps, B_deps, W, num_iter, tau in shapes:
            models = [aif.random_model(rng, ns, no, nu, A_dependencies=deps, B_dependencies=B_deps,
                                       concentration=float(c)) for c in rng.choice([0.3, 1.0], size=40)]
            obs = [[[int(rng.integers(o)) for o in no] for _ in range(W)] for _ in models]
            actions = [np.stack([rng.integers(u, size=W - 1) for u in nu], -1) for _ in models]
            priors = [[rng.dirichlet(np.ones(s)) for s in ns] for _ in models]
            stack = lambda xs: jnp.asarray(np.stack(xs))  # noqa: E731
            A = [stack([m.A[i] for m in models]) for i in range(len(no))]
            B = [stack([np.moveaxis(m.B[f], -1, 0)[a[:, f]] for m, a in zip(models, actions, strict=False)])
                 for f in range(len(ns))]
            o = [stack([np.eye(n)[[ob[t][i] for t in range(W)]] for ob in obs]) for i, n in enumerate(no)]
            p = [stack([pr[f] for pr in priors]) for f in range(len(ns))]
            A_deps, B_deps = models[0].A_dependencies, models[0].B_dependencies
            ref = jax.jit(jax.vmap(lambda A, B, o, p: run_vmp(A, B, o, p, A_deps, B_deps, num_iter=num_iter,
                                                              tau=tau)))(A, B, o, p)
            method = VariationalMessagePassing(num_iter=num_iter, tau=tau)
            dev = 0.0
            for k, model in enumerate(models):
                qs, _ = infer_sequence(model, obs[k], actions[k], np.zeros((1, 0, len(ns)), int),
                                       prior=priors[k], method=method)
                dev = max(dev, max(np.abs(np.asarray(ref[f][k]) - qs[f][0]).max() for f in range(len(ns))))
            assert dev <= REF_TOL, f"{ns}: max deviation {dev:.3g}"


# --------------------------------------------------------------------------------------------------------
# Independent formulas


def _bayes(model, obs, prior):
    post = prior * model.A[0][obs]
    return post / post.sum()


@pytest.mark.parametrize("method", [MarginalMessagePassing(num_iter=1, grad_descent=False),
                                    MarginalMessagePassing(num_iter=300),
                                    VariationalMessagePassing(num_iter=1)],
                         ids=["mmp-fixed-point", "mmp-gradient", "vmp"])
def test_one_step_one_factor_is_the_exact_posterior(method):
    """A window of one observation, one factor, no horizon: Bayes' rule, and aif.infer_states(Exact())."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        model = aif.random_model(rng, [4], [5], [2])
        obs, prior = int(rng.integers(5)), rng.dirichlet(np.ones(4))
        qs, _ = infer_sequence(model, [[obs]], None, np.zeros((1, 0, 1), int), prior=[prior], method=method)
        np.testing.assert_allclose(qs[0][0, 0], _bayes(model, obs, prior), atol=1e-10)
        np.testing.assert_allclose(qs[0][0, 0], aif.infer_states(model, [obs], [prior], method=aif.Exact())[0],
                                   atol=1e-10)


def _enumerated(model, obs, actions, policy, prior, qs):
    """Sum over every joint state sequence s (all factors, all steps) of

    - q(s) (ln q(s) - ln p(o, s)), with q the product of the marginals ``qs[f][t]``: the mean-field VFE;
    - p(o, s) over the observed steps only: the evidence p(o_window).
    """
    nf, L, W = model.num_factors, qs[0].shape[0], len(obs)
    seq = np.concatenate([actions, policy]).astype(int)

    def ln_p(path):                                                     # path[t] = joint state at t
        out = sum(np.log(prior[f][path[0][f]]) for f in range(nf))
        for t in range(1, len(path)):
            for f, deps in enumerate(model.B_dependencies):
                out += np.log(model.B[f][(path[t][f], *[path[t - 1][g] for g in deps], seq[t - 1, f])])
        for t in range(min(W, len(path))):
            for m, deps in enumerate(model.A_dependencies):
                out += np.log(model.A[m][(obs[t][m], *[path[t][g] for g in deps])])
        return out

    joint_states = list(itertools.product(*[range(s) for s in model.num_states]))
    vfe = 0.0
    for path in itertools.product(joint_states, repeat=L):
        q = np.prod([qs[f][t, path[t][f]] for t in range(L) for f in range(nf)])
        vfe += q * (np.log(q) - ln_p(path))
    evidence = sum(np.exp(ln_p(path)) for path in itertools.product(joint_states, repeat=W))
    return vfe, evidence


@pytest.mark.parametrize("sizes, B_deps", [([3], None), ([2, 2], [[0, 1], [1]])], ids=["one-factor", "B-deps"])
def test_vmp_free_energy_is_the_mean_field_vfe_and_bounds_the_evidence(sizes, B_deps):
    """VMP's F equals the VFE summed over all state sequences, and F >= -ln p(o_window | actions)."""
    rng = np.random.default_rng(5)
    nf = len(sizes)
    for _ in range(6):
        model = aif.random_model(rng, sizes, [3, 2], [2] * nf, B_dependencies=B_deps)
        W, H = int(rng.integers(1, 4)), int(rng.integers(0, 2))
        obs = [[int(rng.integers(3)), int(rng.integers(2))] for _ in range(W)]
        actions, policy = rng.integers(2, size=(W - 1, nf)), rng.integers(2, size=(1, H, nf))
        prior = [rng.dirichlet(np.ones(s)) for s in sizes]
        qs, F = infer_sequence(model, obs, actions, policy, prior=prior, method=VariationalMessagePassing(64))
        vfe, evidence = _enumerated(model, obs, actions, policy[0], prior, [q[0] for q in qs])
        assert F[0] == pytest.approx(vfe, abs=1e-9)
        assert F[0] >= -np.log(evidence) - 1e-12


def test_mmp_last_future_step_is_the_prediction():
    """The last step gets no backward message and no observation, so a fixed-point update sets it to
    B(u) q_prev exactly, for every policy (the future under each policy's own actions)."""
    rng = np.random.default_rng(9)
    model = aif.random_model(rng, [3, 2], [3], [3, 2])
    policies = np.stack([rng.integers(3, size=(6, 2)), rng.integers(2, size=(6, 2))], axis=-1)  # (6, 2, 2)
    qs, _ = infer_sequence(model, [[0], [2]], [[1, 0]], policies,
                           method=MarginalMessagePassing(num_iter=3, grad_descent=False))
    for f in range(2):
        B_u = model.B[f][:, :, policies[:, -1, f]].transpose(2, 0, 1)  # (P, S, S)
        np.testing.assert_allclose(qs[f][:, -1], np.einsum("pij,pj->pi", B_u, qs[f][:, -2]), atol=1e-12)


# --------------------------------------------------------------------------------------------------------
# Contract over both methods


@pytest.mark.parametrize("method", METHODS, ids=["mmp", "vmp"])
def test_contract(method):
    """Shapes, normalised beliefs, finite F, policies that agree give identical rows, the trace."""
    rng = np.random.default_rng(3)
    model = aif.random_model(rng, [3, 2], [4, 3], [3, 2], A_dependencies=[[1, 0], [1]])
    policies = np.array([[[0, 1], [2, 0]], [[1, 1], [0, 0]], [[0, 1], [2, 0]]])
    obs = [[0, 2], [3, 1], [np.array([0.5, 0.5, 0, 0]), 0]]
    qs, F, trace = infer_sequence(model, obs, [[1, 0], [2, 1]], policies, method=method, return_trace=True)
    assert [q.shape for q in qs] == [(3, 5, 3), (3, 5, 2)]
    assert F.shape == (3,) and np.isfinite(F).all()
    for q in qs:
        np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-12)
        assert (q >= 0).all()
        np.testing.assert_array_equal(q[0], q[2])
    assert F[0] == F[2]
    assert [t.shape for t in trace.qs] == [(method.num_iter, 3, 5, 3), (method.num_iter, 3, 5, 2)]
    for q, t in zip(qs, trace.qs, strict=False):
        np.testing.assert_array_equal(t[-1], q)


@pytest.mark.parametrize("method", METHODS, ids=["mmp", "vmp"])
def test_policy_separated_prior(method):
    """A (P, S_f) prior gives each policy its own first-step prior: equal to running them one by one."""
    rng = np.random.default_rng(8)
    model = aif.random_model(rng, [3], [3], [2])
    policies = np.array([[[0]], [[1]]])
    prior = rng.dirichlet(np.ones(3), size=2)
    qs, F = infer_sequence(model, [[0], [2]], [[1]], policies, prior=[prior], method=method)
    for p in range(2):
        q1, F1 = infer_sequence(model, [[0], [2]], [[1]], policies[p : p + 1], prior=[prior[p]], method=method)
        np.testing.assert_allclose(qs[0][p], q1[0][0], atol=1e-14)
        assert F[p] == pytest.approx(F1[0], abs=1e-12)


# --------------------------------------------------------------------------------------------------------
# Bad input


def _small():
    return aif.random_model(np.random.default_rng(0), [3, 2], [4], [3, 2])


NO_POLICY = np.zeros((1, 1, 2), int)


@pytest.mark.parametrize("call, error, words", [
    (lambda m: infer_sequence(m, [[4]], None, NO_POLICY), ObservationError, ["obs_window[0]", "out of range"]),
    (lambda m: infer_sequence(m, [], None, NO_POLICY), ObservationError, ["obs_window", "empty"]),
    (lambda m: infer_sequence(m, [[0], [1]], None, NO_POLICY), PolicyError, ["actions_window", "(1, 2)"]),
    (lambda m: infer_sequence(m, [[0], [1]], [[3, 0]], NO_POLICY), PolicyError, ["actions_window[0, 0]", "3"]),
    (lambda m: infer_sequence(m, [[0]], None, np.zeros((1, 2), int)), PolicyError, ["policies", "shape"]),
    (lambda m: infer_sequence(m, [[0]], None, np.array([[[0, 2]]])), PolicyError,
     ["policy 0 takes action 2", "factor 1"]),
    (lambda m: infer_sequence(m, [[0]], None, np.zeros((2, 1, 2), int), prior=[np.ones((3, 3)) / 3, [0.5, 0.5]]),
     BeliefError, ["prior[0]", "(2, 3)"]),
    (lambda m: infer_sequence(m, [[0]], None, NO_POLICY, prior=[np.ones(3), [0.5, 0.5]]),
     BeliefError, ["prior[0]", "sums to 3"]),
])
def test_bad_input(call, error, words):
    with pytest.raises(error) as info:
        call(_small())
    for w in words:
        assert w in str(info.value)


def test_bad_settings_and_unsupported_models():
    with pytest.raises(ParameterError, match="num_iter"):
        MarginalMessagePassing(num_iter=0)
    with pytest.raises(ParameterError, match="tau"):
        VariationalMessagePassing(tau=-1.0)
    rng = np.random.default_rng(0)
    model = aif.random_model(rng, [2, 2], [2], [2, 2], B_dependencies=[[0, 1], [1]])
    for method in METHODS:  # MMP with B_dependencies: tests/test_sequence_dependencies.py
        infer_sequence(model, [[0]], None, np.zeros((1, 1, 2), int), method=method)
