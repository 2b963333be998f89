"""Predicted states q(s_t | pi) and outcomes q(o_t | pi) per policy and step, against pymdp's two implementations."""

import numpy as np
import pytest
import torch

import aif
import aif_deep
from aif.errors import BeliefError, PolicyError
from tests._reference import jax64, obj, random_config

CASES = 24


def _cases(seed, n=CASES):
    """Random models (1-3 factors and modalities, sparse A and B dependencies half the time), beliefs and
    8 random policies of horizon 1-3 (unsorted, repeats allowed)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        config = random_config(rng)
        nf = len(config["num_states"])
        B_deps = None
        if rng.random() < 0.5:
            B_deps = [sorted({f, *(int(g) for g in rng.choice(nf, rng.integers(0, nf + 1)))}) for f in range(nf)]
        model = aif.random_model(rng, config["num_states"], config["num_obs"], config["num_controls"],
                                 A_dependencies=config["A_dependencies"], B_dependencies=B_deps)
        qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
        H = int(rng.integers(1, 4))
        policies = np.stack([rng.integers(0, u, (8, H)) for u in model.num_controls], -1)
        yield model, qs, policies


def test_matches_pymdp_legacy():
    from pymdp.legacy import control

    worst = 0.0
    for model, qs, policies in _cases(0):
        states, outcomes = aif.expected_states(model, qs, policies), aif.expected_outcomes(model, qs, policies)
        for p, policy in enumerate(policies):
            qs_pi = control.get_expected_states_interactions(obj(qs), obj(model.B), model.B_dependencies, policy)
            qo_pi = control.get_expected_obs_factorized(qs_pi, obj(model.A), model.A_dependencies)
            for t in range(policies.shape[1]):
                worst = max(worst, *(np.abs(s[p, t] - r).max() for s, r in zip(states, qs_pi[t], strict=True)),
                            *(np.abs(o[p, t] - r).max() for o, r in zip(outcomes, qo_pi[t], strict=True)))
    assert worst < 1e-12


def test_matches_pymdp():
    jax64()
    import jax.numpy as jnp
    from pymdp import control

    worst = 0.0
    for model, qs, policies in _cases(1, 12):
        states, outcomes = aif.expected_states(model, qs, policies), aif.expected_outcomes(model, qs, policies)
        B, A = [jnp.asarray(b) for b in model.B], [jnp.asarray(a) for a in model.A]
        for p, policy in enumerate(policies):
            q = [jnp.asarray(x) for x in qs]
            for t, u in enumerate(policy):
                q = control.compute_expected_state(q, B, u, model.B_dependencies)
                qo = control.compute_expected_obs(q, A, model.A_dependencies)
                worst = max(worst, *(np.abs(s[p, t] - np.asarray(r)).max() for s, r in zip(states, q, strict=True)),
                            *(np.abs(o[p, t] - np.asarray(r)).max() for o, r in zip(outcomes, qo, strict=True)))
    assert worst < 1e-12


def test_aif_deep_matches_aif():
    """A batch of 2 models (same sizes) and 3 beliefs each: (*batch, P, H, ...) equals aif entry by entry."""
    rng = np.random.default_rng(2)
    for model, qs, policies in _cases(2, 8):
        models = [model, aif.random_model(rng, model.num_states, model.num_obs, model.num_controls,
                                          A_dependencies=model.A_dependencies, B_dependencies=model.B_dependencies)]
        beliefs = [[rng.dirichlet(np.ones(s)) for s in model.num_states] for _ in range(3)]
        deep = aif_deep.TabularModel.from_aif(models, device="cpu")
        qs_batch = [torch.as_tensor(np.stack([[b[f]] * 2 for b in beliefs])) for f in range(model.num_factors)]
        states = aif_deep.expected_states(deep, qs_batch, policies)
        outcomes = aif_deep.expected_outcomes(deep, qs_batch, torch.as_tensor(policies))
        P, H, _ = policies.shape
        assert [tuple(s.shape) for s in states] == [(3, 2, P, H, S) for S in model.num_states]
        assert [tuple(o.shape) for o in outcomes] == [(3, 2, P, H, O) for O in model.num_obs]
        for i, b in enumerate(beliefs):
            for j, m in enumerate(models):
                for ours, ref in ((states, aif.expected_states(m, b, policies)),
                                  (outcomes, aif.expected_outcomes(m, b, policies))):
                    for x, r in zip(ours, ref, strict=True):
                        np.testing.assert_allclose(x[i, j].numpy(), r, atol=1e-12)


@pytest.mark.parametrize("package", [aif, aif_deep])
@pytest.mark.parametrize("name", ["expected_states", "expected_outcomes"])
def test_bad_input(package, name):
    model = aif.random_model(np.random.default_rng(3), [3, 2], [2], num_controls=[2, 1])
    fn, to = getattr(package, name), np.asarray if package is aif else torch.as_tensor
    if package is aif_deep:
        model = aif_deep.TabularModel.from_aif(model, device="cpu")
    qs, good = [to(np.full(3, 1 / 3)), to(np.full(2, 0.5))], np.zeros((4, 2, 2), dtype=int)
    with pytest.raises(BeliefError, match="1 vectors but the model has 2 factors"):
        fn(model, qs[:1], good)
    with pytest.raises(BeliefError, match="not a probability vector"):
        fn(model, [to(np.array([0.5, 0.5, 0.5])), qs[1]], good)
    with pytest.raises(PolicyError, match="factor 1, which has 1 controls"):
        fn(model, qs, np.ones((4, 2, 2), dtype=int))
    with pytest.raises(PolicyError, match="shape"):
        fn(model, qs, good[:, :, :1])
