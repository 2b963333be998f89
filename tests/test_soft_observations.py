"""Soft (probability-vector) observations: ``soft_obs="mixture"`` equals pymdp.legacy, ``"expected_log"`` equals
pymdp 1.0 (``distr_obs=True``), in aif and aif_deep, on random models (1-3 factors and modalities, sparse
A dependencies); one-hot vectors give the posteriors of outcome indices under both rules."""

from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from _reference import jax64, markov_blanket, obj, random_case, random_config

import aif
from aif import Exact, FixedPoint
from aif.errors import ParameterError

pytest.importorskip("pymdp")
TOL = 1e-10
N_CONFIGS, PER_CONFIG = 10, 20  # 200 random models per reference


def soft(rng, n):
    """A random distribution over ``n`` outcomes, some of them with probability 0."""
    o = rng.dirichlet(np.full(n, rng.choice([0.3, 1.0, 5.0])))
    o[rng.random(n) < 0.2] = 0.0
    return o / o.sum() if o.sum() > 0 else np.eye(n)[0]


def cases(seed):
    """(config, [(model, soft obs, prior)] * PER_CONFIG) for N_CONFIGS configurations."""
    rng = np.random.default_rng(seed)
    for i in range(N_CONFIGS):
        config = random_config(rng, sparse=bool(i % 2))
        out = []
        for _ in range(PER_CONFIG):
            model, _, prior = random_case(rng, config, concentration=float(rng.choice([0.3, 1.0])))
            out.append((model, [soft(rng, n) for n in model.num_obs], prior))
        yield config, out


def deep_posterior(model, obs, prior, method):
    torch = pytest.importorskip("torch")
    import aif_deep

    t64 = partial(torch.as_tensor, dtype=torch.float64)
    qs = aif_deep.infer_states(aif_deep.TabularModel.from_aif(model, device="cpu"),
                               [o if isinstance(o, int) else t64(o) for o in obs],
                               [t64(p) for p in prior], method)
    return [q.numpy() for q in qs]


def dev(a, b):
    return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a, b, strict=True))


def test_mixture_equals_pymdp_legacy_in_aif_and_aif_deep():
    from pymdp.legacy import inference

    method = FixedPoint.pymdp_legacy()
    assert method.soft_obs == "mixture" == FixedPoint().soft_obs
    worst = {"aif": 0.0, "aif_deep": 0.0}
    for _, batch in cases(0):
        for model, obs, prior in batch:
            ref = inference.update_posterior_states_factorized(
                obj(model.A), obj(obs), model.num_obs, model.num_states, markov_blanket(model), obj(prior),
                num_iter=10, dF=1.0, dF_tol=0.001)
            worst["aif"] = max(worst["aif"], dev(aif.infer_states(model, obs, prior, method), ref))
            worst["aif_deep"] = max(worst["aif_deep"], dev(deep_posterior(model, obs, prior, method), ref))
    assert max(worst.values()) < TOL, worst


def test_expected_log_equals_pymdp_1_0_in_aif_and_aif_deep():
    jax = jax64()
    import jax.numpy as jnp
    from pymdp import algos

    method = FixedPoint.pymdp()
    assert method.soft_obs == "expected_log"
    worst = {"aif": 0.0, "aif_deep": 0.0}
    for _, batch in cases(1):
        models = [c[0] for c in batch]
        stack = [[jnp.asarray(np.stack([pick(c)[k] for c in batch])) for k in range(len(pick(batch[0])))]
                 for pick in (lambda c: c[0].A, lambda c: c[1], lambda c: c[2])]
        run = jax.jit(jax.vmap(partial(algos.run_factorized_fpi, A_dependencies=models[0].A_dependencies, num_iter=16,
                                       distr_obs=True)))
        ref = run(*stack)
        for i, (model, obs, prior) in enumerate(batch):
            ref_i = [r[i] for r in ref]
            worst["aif"] = max(worst["aif"], dev(aif.infer_states(model, obs, prior, method), ref_i))
            worst["aif_deep"] = max(worst["aif_deep"], dev(deep_posterior(model, obs, prior, method), ref_i))
    assert max(worst.values()) < TOL, worst


@pytest.mark.parametrize("rule", ["mixture", "expected_log"])
def test_rules_agree_between_packages_and_on_one_hot_observations(rule):
    methods = [replace(FixedPoint(), soft_obs=rule), replace(FixedPoint.pymdp(), soft_obs=rule),
               replace(FixedPoint.pymdp_legacy(), soft_obs=rule), Exact(soft_obs=rule)]
    for _, batch in cases(2):
        for model, obs, prior in batch[:3]:
            index = [int(np.argmax(o)) for o in obs]
            one_hot = [np.eye(n)[o] for n, o in zip(model.num_obs, index, strict=True)]
            for method in methods:
                assert dev(aif.infer_states(model, obs, prior, method), deep_posterior(model, obs, prior, method)) < TOL
                for run in (aif.infer_states, deep_posterior):  # bit for bit, in each package
                    assert all(np.array_equal(a, b) for a, b in zip(run(model, one_hot, prior, method),
                                                                    run(model, index, prior, method), strict=True))

def test_rules_differ_on_soft_observations_and_bad_values_are_refused():
    model, obs, prior = next(cases(3))[1][0]
    a, b = (aif.infer_states(model, obs, prior, FixedPoint(soft_obs=r)) for r in ("mixture", "expected_log"))
    assert dev(a, b) > 1e-6
    for bad in ("Mixture", "expected log", None, 1):
        with pytest.raises(ParameterError, match="soft_obs"):
            FixedPoint(soft_obs=bad)
        with pytest.raises(ParameterError, match="soft_obs"):
            Exact(soft_obs=bad)
        with pytest.raises(ParameterError, match="soft_obs"):
            aif.inference.log_likelihood(model, obs, aif.maths.CLIP, bad)


@pytest.mark.parametrize("method", [aif.FixedPoint.pymdp(), aif.FixedPoint.pymdp_legacy()])
def test_agent_infers_soft_observations_by_its_method_rule(method):
    rng = np.random.default_rng(7)
    model, _, _ = random_case(rng, random_config(rng))
    obs = [rng.dirichlet(np.ones(o)) for o in model.num_obs]
    agent = aif.Agent(model, inference=method)
    np.testing.assert_allclose(np.concatenate(agent.infer_states(obs)),
                               np.concatenate(aif.infer_states(model, obs, model.D, method)), atol=1e-14)
