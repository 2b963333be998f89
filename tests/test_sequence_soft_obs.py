"""Soft (probability-vector) observations over time: ``soft_obs="mixture"`` equals pymdp.legacy's ``run_mmp``,
``"expected_log"`` pymdp 1.0's ``run_vmp`` and (at the fixed point) ``run_mmp`` with ``distr_obs=True``, on random
models and windows of 2-3 steps, to 1e-10; one-hot vectors give bit-identical beliefs and F under both rules."""

import contextlib
import io
from dataclasses import replace

import numpy as np
import pytest
from test_sequence import _full_A, _objarr

import aif
from aif.errors import ParameterError
from aif.sequence import MarginalMessagePassing, VariationalMessagePassing, infer_sequence

pytest.importorskip("pymdp")
REF_TOL = 1e-10


def soft(rng, n):
    """A random distribution over ``n`` outcomes, some of them with probability 0."""
    o = rng.dirichlet(np.full(n, rng.choice([0.3, 1.0, 5.0])))
    o[rng.random(n) < 0.2] = 0.0
    return o / o.sum() if o.sum() > 0 else np.eye(n)[0]


def window(rng, no, nu, W, H=0, P=1):
    """Soft observations (W steps), the actions between them and P random policies of H steps."""
    obs = [[soft(rng, n) for n in no] for _ in range(W)]
    actions = np.stack([rng.integers(u, size=W - 1) for u in nu], -1).reshape(W - 1, len(nu))
    policies = np.stack([rng.integers(u, size=(P, H)) for u in nu], -1).reshape(P, H, len(nu))
    return obs, actions, policies


def test_mixture_matches_legacy_run_mmp():
    """60 random models (1-3 factors, 1-2 modalities, sparse A_dependencies in half), windows of 2-3 soft
    observations, horizons 0-2, 1-3 policies, gradient or fixed-point updates: beliefs and F to 1e-10."""
    from pymdp.legacy.algos.mmp import run_mmp
    from pymdp.legacy.maths import get_joint_likelihood_seq

    rng = np.random.default_rng(11)
    dev_q = dev_F = 0.0
    for _ in range(60):
        nf, nm = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        ns, no, nu = [int(x) for x in rng.integers(2, 5, nf)], [int(x) for x in rng.integers(2, 5, nm)], \
            [int(x) for x in rng.integers(1, 4, nf)]
        deps = [sorted(rng.choice(nf, int(rng.integers(1, nf + 1)), replace=False).tolist()) for _ in no] \
            if nf > 1 and rng.random() < 0.5 else None
        model = aif.random_model(rng, ns, no, nu, A_dependencies=deps, concentration=float(rng.choice([0.3, 1.0])))
        W, H = int(rng.integers(2, 4)), int(rng.integers(0, 3))
        obs, actions, policies = window(rng, no, nu, W, H, int(rng.integers(1, 4)))
        prior = [rng.dirichlet(np.ones(s)) for s in ns]
        method = MarginalMessagePassing(num_iter=int(rng.integers(1, 11)), tau=float(rng.uniform(0.1, 1.0)),
                                        grad_descent=bool(rng.random() < 0.8), legacy_vfe=True)
        assert method.soft_obs == "mixture"
        qs, F = infer_sequence(model, obs, actions, policies, prior=prior, method=method)
        lh = get_joint_likelihood_seq(_objarr(_full_A(model)), [_objarr(o) for o in obs], model.num_states)
        for p in range(len(policies)):
            with contextlib.redirect_stdout(io.StringIO()):            # legacy's run_mmp prints every lnA
                q_leg, F_leg = run_mmp(lh, _objarr(model.B), policies[p] if H else np.zeros((1, nf), int),
                                       prev_actions=actions, prior=_objarr(prior), num_iter=method.num_iter,
                                       grad_descent=method.grad_descent, tau=method.tau, last_timestep=H == 0)
            dev_q = max(dev_q, max(np.abs(q_leg[t][f] - qs[f][p, t]).max() for t in range(W + H) for f in range(nf)))
            if method.grad_descent:                                     # legacy's F is the negative free energy
                dev_F = max(dev_F, abs(-F_leg - F[p]))
    assert dev_q <= REF_TOL, f"posteriors: max deviation {dev_q:.3g}"
    assert dev_F <= REF_TOL, f"F: max deviation {dev_F:.3g}"


def _pymdp_batch(algo, models, obs, actions, priors, **kwargs):
    """pymdp 1.0's ``algo`` on a batch of same-shaped models, one jitted, vmapped call in float64."""
    import jax
    import jax.numpy as jnp
    from _reference import jax64

    jax64()
    ns, no = models[0].num_states, models[0].num_obs
    stack = lambda xs: jnp.asarray(np.stack(xs))  # noqa: E731
    A = [stack([m.A[i] for m in models]) for i in range(len(no))]
    B = [stack([np.moveaxis(m.B[f], -1, 0)[a[:, f]] for m, a in zip(models, actions, strict=True)])
         for f in range(len(ns))]
    o = [stack([[ob_t[i] for ob_t in ob] for ob in obs]) for i in range(len(no))]   # (batch, W, num_obs[i])
    p = [stack([pr[f] for pr in priors]) for f in range(len(ns))]
    A_deps, B_deps = models[0].A_dependencies, models[0].B_dependencies
    run = jax.jit(jax.vmap(lambda A, B, o, p: algo(A, B, o, p, A_deps, B_deps, distr_obs=True, **kwargs)))
    return run(A, B, o, p)


@pytest.mark.parametrize("algo", ["vmp", "mmp"])
def test_expected_log_matches_pymdp(algo):
    """VMP: every iterate's rule, 2 shapes x 20 models (one with sparse A and B dependencies). MMP: the fixed
    point, 3 shapes x 8 models, each modality read by one factor (where ln E[A] and E[ln A] differ by a
    constant; see tests/test_sequence_dependencies.py). Windows of 2-3 soft observations, no policy horizon
    (pymdp's have none), to 1e-10."""
    pytest.importorskip("jax")
    from pymdp import algos

    rng = np.random.default_rng(23)
    if algo == "vmp":
        # sizes, outcomes, controls, A_dependencies, B_dependencies, window
        shapes = [([3], [4], [3], None, None, 3), ([2, 3], [3, 2], [2, 2], [[0], [0, 1]], [[0], [0, 1]], 2)]
        method, count, kwargs = VariationalMessagePassing(num_iter=7, tau=0.5, soft_obs="expected_log"), 20, \
            dict(num_iter=7, tau=0.5)
    else:
        shapes = [([4], [3, 2], [2], [[0], [0]], [[0]], 3), ([3, 2], [3, 2], [2, 1], [[0], [1]], [[1], [0]], 2),
                  ([2, 3], [4, 3], [2, 2], [[1], [0]], [[0], [0, 1]], 3)]
        method, count, kwargs = MarginalMessagePassing(num_iter=150, tau=0.5, soft_obs="expected_log"), 8, \
            dict(num_iter=300, tau=0.5)
    for ns, no, nu, deps, B_deps, W in shapes:
        models = [aif.random_model(rng, ns, no, nu, A_dependencies=deps, B_dependencies=B_deps,
                                   concentration=float(rng.choice([0.3, 1.0]))) for _ in range(count)]
        cases = [window(rng, no, nu, W) for _ in models]
        priors = [[rng.dirichlet(np.ones(s)) for s in ns] for _ in models]
        ref = _pymdp_batch(getattr(algos, f"run_{algo}"), models, [c[0] for c in cases], [c[1] for c in cases],
                           priors, **kwargs)
        dev = 0.0
        for k, (model, (obs, actions, policies)) in enumerate(zip(models, cases, strict=True)):
            _, _, trace = infer_sequence(model, obs, actions, policies, priors[k], method, return_trace=True)
            if algo == "mmp":
                assert max(np.abs(q[-1] - q[-2]).max() for q in trace.qs) < 1e-12    # converged
            dev = max(dev, max(np.abs(np.asarray(ref[f][k]) - trace.qs[f][-1, 0]).max() for f in range(len(ns))))
        assert dev <= REF_TOL, f"{algo} {ns}: max deviation {dev:.3g}"


@pytest.mark.parametrize("method", [MarginalMessagePassing(num_iter=5), MarginalMessagePassing(grad_descent=False),
                                    VariationalMessagePassing(num_iter=5)], ids=["mmp", "mmp-fixed-point", "vmp"])
def test_one_hot_is_bit_identical_under_both_rules(method):
    """One-hot vectors give the beliefs and F of outcome indices, bit for bit, under both rules (models with
    zeros in A: concentration 0.1)."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        model = aif.random_model(rng, [3, 2], [4, 3], [2, 2], A_dependencies=[[0, 1], [1]], concentration=0.1)
        index = [[int(rng.integers(n)) for n in model.num_obs] for _ in range(3)]
        one_hot = [[np.eye(n)[o] for n, o in zip(model.num_obs, ob, strict=True)] for ob in index]
        actions, policies = window(rng, model.num_obs, model.num_controls, 3, H=2, P=3)[1:]
        qs, F = infer_sequence(model, index, actions, policies, method=method)
        for rule in ("mixture", "expected_log"):
            for obs in (index, one_hot):
                qs_r, F_r = infer_sequence(model, obs, actions, policies, method=replace(method, soft_obs=rule))
                np.testing.assert_array_equal(F_r, F)
                for q_r, q in zip(qs_r, qs, strict=True):
                    np.testing.assert_array_equal(q_r, q)


@pytest.mark.parametrize("cls", [MarginalMessagePassing, VariationalMessagePassing])
@pytest.mark.parametrize("value", ["expected-log", "Mixture", None, 1, True])
def test_bad_soft_obs_is_refused(cls, value):
    with pytest.raises(ParameterError, match="soft_obs must be 'mixture' or 'expected_log'"):
        cls(soft_obs=value)


def test_agent_with_expected_log_mmp_steps_on_soft_observations():
    rng = np.random.default_rng(9)
    model = aif.random_model(rng, [3, 2], [3, 2], [2, 1], concentration=0.5)
    agent = aif.Agent(model, policy_horizon=2, inference=MarginalMessagePassing(soft_obs="expected_log"),
                      inference_horizon=3, rng=np.random.default_rng(0))
    for _ in range(5):
        agent.infer_states([soft(rng, n) for n in model.num_obs])
        agent.infer_policies()
        agent.sample_action()
        assert all(np.isfinite(q).all() and abs(q.sum() - 1) < 1e-12 for q in agent.qs)
        assert np.isfinite(agent.F).all() and np.isfinite(agent.q_pi).all()
