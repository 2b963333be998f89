"""``MarginalMessagePassing.pymdp()`` against pymdp 1.0's ``run_mmp``, iterate for iterate.

pymdp 1.0's Agent (``inference_algo="mmp"``) calls ``run_mmp`` on the past window only: the observations so far,
``B`` conditioned on the past actions, ``D`` as the prior. ``infer_sequence`` with a policy horizon adds steps
without observations; ``run_mmp`` gives the same beliefs when those steps' observations are all-zero vectors
(``distr_obs=True``: their log-likelihood is ``0 * ln A = 0``) and ``B`` is conditioned on the policy's actions.
"""

import numpy as np
import pytest

import aif
from aif.errors import ParameterError
from aif.sequence import MarginalMessagePassing, infer_sequence

REF_TOL = 1e-10


# sizes, outcomes, controls, A_dependencies, B_dependencies, window W, policy horizon H, soft observations,
# iterations, step: one compiled pymdp call per shape (about 2 s each), random models within it
CONFIGS = [([3], [3, 2], [2], [[0], [0]], [[0]], 1, 2, True, 16, 1.0),
           ([3, 2], [3, 2], [2, 1], [[0, 1], [1]], [[1], [1]], 4, 0, False, 16, 1.0),
           ([2, 3, 2], [3, 2, 2], [2, 1, 2], [[0, 2], [2], [0, 1, 2]], [[0, 2], [0, 1, 2], [2]], 3, 2, False, 9, 0.8)]


def test_pymdp_preset_matches_run_mmp():
    """3 shapes x 4 models x 2 policies: 1-3 factors and modalities, sparse A and B dependencies (modalities and
    transitions that read several factors, a factor that no transition reads), windows of 1-4 observations (one-hot
    or soft), policy horizons 0-2, 9-16 iterations, steps 0.8 and 1: every belief to 1e-10 (float64)."""
    jax = pytest.importorskip("jax")
    from _reference import jax64

    jax64()
    import jax.numpy as jnp
    from pymdp.algos import run_mmp

    rng = np.random.default_rng(1515)
    dev, num_models, P = 0.0, 4, 2
    for ns, no, nu, A_deps, B_deps, W, H, soft, num_iter, tau in CONFIGS:
        nf, L = len(ns), W + H
        method = MarginalMessagePassing.pymdp(num_iter=num_iter, tau=tau)
        models = [aif.random_model(rng, ns, no, nu, A_dependencies=A_deps, B_dependencies=B_deps)
                  for _ in range(num_models)]
        if soft:
            obs = [[[rng.dirichlet(np.ones(o)) for o in no] for _ in range(W)] for _ in models]
        else:
            obs = [[[np.eye(o)[rng.integers(o)] for o in no] for _ in range(W)] for _ in models]
        actions = [np.stack([rng.integers(u, size=W - 1) for u in nu], -1).reshape(W - 1, nf) for _ in models]
        policies = [np.stack([rng.integers(u, size=(P, H)) for u in nu], -1).reshape(P, H, nf) for _ in models]
        priors = [[rng.dirichlet(np.ones(s)) for s in ns] for _ in models]
        # one run_mmp call per (model, policy): B for the whole sequence, zero observations after the present
        cases = [(k, p) for k in range(num_models) for p in range(P)]
        seq = {(k, p): np.concatenate([actions[k], policies[k][p]]).astype(int) for k, p in cases}
        stack = lambda xs: jnp.asarray(np.stack(xs))  # noqa: E731
        A = [stack([models[k].A[m] for k, _ in cases]) for m in range(len(no))]
        B = [stack([np.moveaxis(models[k].B[f], -1, 0)[seq[k, p][:, f]] for k, p in cases]) for f in range(nf)]
        o = [stack([np.concatenate([np.stack([ob[m] for ob in obs[k]]), np.zeros((H, n))]) for k, _ in cases])
             for m, n in enumerate(no)]
        D = [stack([priors[k][f] for k, _ in cases]) for f in range(nf)]
        ref = jax.jit(jax.vmap(lambda A, B, o, D: run_mmp(A, B, o, D, A_deps, B_deps,  # noqa: B023
                                                          num_iter=num_iter, tau=tau)))(A, B, o, D)
        for k in range(num_models):
            qs, _ = infer_sequence(models[k], obs[k], actions[k], policies[k], priors[k], method)
            for p in range(P):
                row = cases.index((k, p))
                dev = max(dev, max(np.abs(np.asarray(ref[f][row]) - qs[f][p]).max() for f in range(nf)))
            assert all(q.shape == (P, L, s) for q, s in zip(qs, ns, strict=True))
    assert dev <= REF_TOL, f"max deviation {dev:.3g}"


def test_pymdp_preset_differs_from_spm_scheme_but_shares_its_fixed_point():
    """A modality that reads two factors: one pymdp iteration and one SPM-style iteration give different beliefs
    (parallel, expected log-likelihood, half steps); converged with each modality read by one factor, they agree."""
    rng = np.random.default_rng(16)
    model = aif.random_model(rng, [3, 2], [3], [2, 1], A_dependencies=[[0, 1]])
    obs, actions, none = [[0], [2], [1]], np.array([[1, 0], [0, 0]]), np.zeros((1, 0, 2), int)
    ours, _ = infer_sequence(model, obs, actions, none, method=MarginalMessagePassing.pymdp(num_iter=4))
    spm, _ = infer_sequence(model, obs, actions, none, method=MarginalMessagePassing(num_iter=4, tau=1.0))
    assert max(np.abs(a - b).max() for a, b in zip(ours, spm, strict=True)) > 1e-3
    model = aif.random_model(rng, [3, 2], [3, 2], [2, 1], A_dependencies=[[0], [1]])
    obs = [[0, 1], [2, 0], [1, 1]]
    fast, _ = infer_sequence(model, obs, actions, none, method=MarginalMessagePassing.pymdp(num_iter=400, tau=0.5))
    slow, _ = infer_sequence(model, obs, actions, none,
                             method=MarginalMessagePassing(num_iter=400, tau=0.25, future_cutoff=False,
                                                           guard=MarginalMessagePassing.pymdp().guard))
    assert max(np.abs(a - b).max() for a, b in zip(fast, slow, strict=True)) < 1e-10


@pytest.mark.parametrize("field", ["parallel", "expected_log_lik", "mean_messages"])
def test_new_settings_must_be_booleans(field):
    with pytest.raises(ParameterError, match=f"MarginalMessagePassing.{field} must be True or False"):
        MarginalMessagePassing(**{field: 1})
