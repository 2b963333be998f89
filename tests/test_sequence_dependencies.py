"""Inference over time with interacting transitions (sparse B_dependencies) and without actions.

MMP with ``B_dependencies``: its fixed point against pymdp 1.0's ``run_mmp`` (a Jacobi scheme with expected
log-likelihoods and the same half-weighted messages, so only the fixed points can agree), and every iterate
against the update written from its equations on the joint state space.
"""

import itertools

import numpy as np
import pytest

import aif
from aif.envs.pomdp import POMDPEnv
from aif.errors import PolicyError
from aif.sequence import MarginalMessagePassing, VariationalMessagePassing, infer_sequence

REF_TOL = 1e-10


def _random_deps(rng, nf, self_loop=False):
    """Random B_dependencies: a non-empty set of parents per factor (with itself when ``self_loop``)."""
    return [sorted(({f} if self_loop else set()) | set(rng.choice(nf, int(rng.integers(1, nf + 1)),
                                                                   replace=False).tolist())) for f in range(nf)]


def test_mmp_fixed_point_matches_pymdp_run_mmp_with_B_dependencies():
    """4 x 8 random models and windows of 2 to 4 observations, 1 to 3 factors whose transitions read other
    factors (one that does not read itself, one that no transition reads), to 1e-10.

    The two share their fixed point, ``ln q = lnA + (fwd + bwd) / 2`` inside the window (``lnA + fwd`` at its
    end), where their ``lnA`` agree: each modality read by one factor (ln E[A] and E[ln A] then differ by a
    constant), and no policy horizon (pymdp's run_mmp has none). Both run to convergence; one jitted,
    vmapped pymdp call per model shape, in float64.
    """
    jax = pytest.importorskip("jax")
    from _reference import jax64

    jax64()
    import jax.numpy as jnp
    from pymdp.algos import run_mmp

    rng = np.random.default_rng(15)
    # sizes, outcomes, controls, A_dependencies, B_dependencies, window
    shapes = [([4], [3, 2], [2], [[0], [0]], [[0]], 4),
              ([3, 2], [3, 2], [2, 1], [[0], [1]], [[1], [0]], 3),
              ([2, 3], [4], [2, 2], [[1]], [[0], [0, 1]], 2),
              ([2, 3, 2], [3, 2, 2], [2, 1, 2], [[0], [2], [1]], [[0, 2], [0, 1, 2], [2]], 4)]
    method = MarginalMessagePassing(num_iter=150, tau=0.5)
    for ns, no, nu, A_deps, B_deps, W in shapes:
        nf, stack = len(ns), lambda xs: jnp.asarray(np.stack(xs))  # noqa: E731
        models = [aif.random_model(rng, ns, no, nu, A_dependencies=A_deps, B_dependencies=B_deps)
                  for _ in range(8)]
        obs = [[[int(rng.integers(o)) for o in no] for _ in range(W)] for _ in models]
        actions = [np.stack([rng.integers(u, size=W - 1) for u in nu], -1) for _ in models]
        priors = [[rng.dirichlet(np.ones(s)) for s in ns] for _ in models]
        A = [stack([m.A[i] for m in models]) for i in range(len(no))]
        B = [stack([np.moveaxis(m.B[f], -1, 0)[a[:, f]] for m, a in zip(models, actions, strict=True)])
             for f in range(nf)]
        o = [stack([np.eye(n)[[ob[t][i] for t in range(W)]] for ob in obs]) for i, n in enumerate(no)]
        p = [stack([pr[f] for pr in priors]) for f in range(nf)]
        ref = jax.jit(jax.vmap(lambda A, B, o, p: run_mmp(A, B, o, p, A_deps, B_deps, num_iter=300,
                                                          tau=0.5)))(A, B, o, p)
        dev = 0.0
        for k, model in enumerate(models):
            _, _, trace = infer_sequence(model, obs[k], actions[k], np.zeros((1, 0, nf), int), priors[k],
                                         method, return_trace=True)
            assert max(np.abs(q[-1] - q[-2]).max() for q in trace.qs) < 1e-12    # converged
            dev = max(dev, max(np.abs(np.asarray(ref[f][k]) - trace.qs[f][-1, 0]).max() for f in range(nf)))
        assert dev <= REF_TOL, f"{ns}, {B_deps}: max deviation {dev:.3g}"


def _mmp_by_the_equations(model, obs, actions, policy, prior, method):
    """MarginalMessagePassing's update (its docstring) for one policy, on the joint state space, with loops."""
    nf, S, W = model.num_factors, model.num_states, len(obs)
    seq = np.concatenate([actions, policy]).astype(int)
    L = W + len(policy)
    joint_states = list(itertools.product(*[range(s) for s in S]))
    log = lambda x: np.log(x + 1e-16)  # noqa: E731
    lik = np.zeros((W, *S))                                             # p(o_t | s), every modality
    trans = [np.zeros((L - 1, S[f], *S)) for f in range(nf)]            # p(s_f,t+1 | s_t), all parents
    for s in joint_states:
        for t in range(W):
            lik[(t, *s)] = np.prod([A_m[(obs[t][m], *[s[g] for g in deps])]
                                    for m, (A_m, deps) in enumerate(zip(model.A, model.A_dependencies, strict=True))])
        for f, deps in enumerate(model.B_dependencies):
            for t in range(L - 1):
                trans[f][(t, slice(None), *s)] = model.B[f][(slice(None), *[s[g] for g in deps], seq[t, f])]
    readers = [[i for i, deps in enumerate(model.B_dependencies) if f in deps] for f in range(nf)]

    def average(T, q, t, skip):
        """Contract the joint-state axes of T with q[g][t] for every factor g but ``skip``."""
        for g in reversed(range(nf)):
            T = T @ q[g][t] if g != skip else np.moveaxis(T, -1, 0)
        return np.moveaxis(T, 0, -1) if skip is not None else T

    q = [np.full((L, s), 1.0 / s) for s in S]
    cutoff, correction = max(L - 2, W - 1), (nf - 1) / nf
    for _ in range(method.num_iter):
        F = 0.0
        for t in range(L):
            for f in range(nf):
                lnA = log(average(lik[t], q, t, f)) if t < W else np.zeros(S[f])
                fwd = log(prior[f]) if t == 0 else log(average(trans[f][t - 1], q, t - 1, None))
                bwd, c = 0.0, 1.0
                if t < cutoff:
                    c = 2.0
                    for i in readers[f]:
                        b = average(trans[i][t], q, t, f) + 1e-16               # (S_i, S_f)
                        bwd = bwd + log((b / b.sum(1, keepdims=True)).T @ q[i][t + 1])
                err = c * lnA + fwd + bwd - c * log(q[f][t])
                F -= q[f][t] @ (0.5 * err - (0.0 if t in (0, L - 1) else correction * lnA))
                new = log(q[f][t]) + method.tau * err if method.grad_descent else lnA + fwd + bwd
                q[f][t] = np.exp(new - new.max()) / np.exp(new - new.max()).sum()
    return q, F


def test_mmp_with_B_dependencies_follows_its_equations():
    """Every belief and F on 60 random windows (sparse A and B dependencies, 1 to 3 factors, 2 to 4
    observations, horizons 0 to 2, several policies, gradient or fixed-point updates) to 1e-10."""
    rng = np.random.default_rng(16)
    dev_q = dev_F = 0.0
    for _ in range(60):
        nf, nm = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        ns, no = [int(s) for s in rng.integers(2, 4, nf)], [int(o) for o in rng.integers(2, 4, nm)]
        nu = [int(u) for u in rng.integers(1, 3, nf)]
        A_deps = [sorted(rng.choice(nf, int(rng.integers(1, nf + 1)), replace=False).tolist()) for _ in no]
        model = aif.random_model(rng, ns, no, nu, A_dependencies=A_deps, B_dependencies=_random_deps(rng, nf),
                                 concentration=float(rng.choice([0.3, 1.0])))
        W, H, P = int(rng.integers(2, 5)), int(rng.integers(0, 3)), int(rng.integers(1, 4))
        obs = [[int(rng.integers(o)) for o in no] for _ in range(W)]
        actions = np.stack([rng.integers(u, size=W - 1) for u in nu], -1)
        policies = np.stack([rng.integers(u, size=(P, H)) for u in nu], -1).reshape(P, H, nf)
        prior = [rng.dirichlet(np.ones(s)) for s in ns]
        method = MarginalMessagePassing(num_iter=int(rng.integers(1, 8)), tau=float(rng.uniform(0.1, 1.0)),
                                        grad_descent=bool(rng.random() < 0.7))
        qs, F = infer_sequence(model, obs, actions, policies, prior, method)
        for p in range(P):
            q_ref, F_ref = _mmp_by_the_equations(model, obs, actions, policies[p], prior, method)
            dev_q = max(dev_q, max(np.abs(q_ref[f] - qs[f][p]).max() for f in range(nf)))
            dev_F = max(dev_F, abs(F_ref - F[p]))
    assert dev_q <= REF_TOL, f"posteriors: max deviation {dev_q:.3g}"
    assert dev_F <= REF_TOL, f"F: max deviation {dev_F:.3g}"


@pytest.mark.parametrize("method", [MarginalMessagePassing(), VariationalMessagePassing()], ids=["MMP", "VMP"])
def test_actions_may_be_omitted_when_no_factor_has_a_choice(method):
    rng = np.random.default_rng(17)
    model = aif.random_model(rng, [3, 2], [3, 2], [1, 1], B_dependencies=[[0, 1], [1]])
    obs, policies = [[0, 1], [2, 0], [1, 1]], np.zeros((1, 2, 2), int)
    qs, F = infer_sequence(model, obs, None, policies, method=method)
    qs0, F0 = infer_sequence(model, obs, np.zeros((2, 2), int), policies, method=method)
    for q, q0 in zip(qs, qs0, strict=True):
        np.testing.assert_array_equal(q, q0)
    np.testing.assert_array_equal(F, F0)
    chooser = aif.random_model(rng, [3, 2], [3, 2], [1, 2])
    with pytest.raises(PolicyError, match=r"actions_window is missing: 3 observations .* shape \(2, 2\)"):
        infer_sequence(chooser, obs, None, policies, method=method)


@pytest.mark.parametrize("controls", [[2, 1], [1, 1]], ids=["controllable", "uncontrolled"])
def test_agent_with_mmp_and_interacting_transitions_runs_in_its_environment(controls):
    """Rollouts of an MMP agent whose second factor moves with the first; each step is an infer_sequence call."""
    rng = np.random.default_rng(18)
    model = aif.random_model(rng, [3, 2], [3, 2], controls, B_dependencies=[[0], [0, 1]])
    env = POMDPEnv(model.A, model.B, model.D, B_dependencies=model.B_dependencies)
    agent = aif.Agent(model, inference=MarginalMessagePassing(), inference_horizon=2, policy_horizon=2)
    trajectory = aif.rollout(agent, env, 5, seed=0)
    assert trajectory.actions.shape == (5, 2) and not trajectory.actions[:, 1].any()
    assert all(np.isfinite(q).all() for q in trajectory.qs)
    agent.reset()
    for o in [[0, 1], [2, 0], [1, 1], [0, 0]]:
        prior = agent.prior
        agent.infer_states(o)
        actions = np.array(agent.actions_window, dtype=int).reshape(-1, 2)
        qs, F = infer_sequence(model, agent.obs_window, None if controls == [1, 1] else actions, agent.policies,
                               prior, agent.inference)
        np.testing.assert_array_equal(F, agent.F)
        for q, q_agent in zip(qs, agent.qs_seq, strict=True):
            np.testing.assert_array_equal(q, q_agent)
        agent.infer_policies()
        agent.sample_action()
