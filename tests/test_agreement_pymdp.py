"""Agreement with pymdp.legacy (NumPy) and pymdp 1.0 (JAX) on random models.

Each comparison runs at least 200 random models: 1-3 factors, 1-3 modalities, 2-6 states and outcomes,
1-4 controls, horizons 1-3, with and without sparse A dependencies. pymdp 1.0 is compiled once per
configuration and run on a batch of 20 models of that configuration with ``vmap``.
"""

from functools import partial

import numpy as np
import pytest
from _reference import jax64, markov_blanket, obj, random_case, random_config
from scipy.special import logsumexp

import aif
from aif import EFEOptions, FixedPoint

pytest.importorskip("pymdp")
N_CONFIGS, PER_CONFIG = 10, 20  # 200 models for the batched pymdp 1.0 comparisons
N_LEGACY = 200


def _legacy_cases(seed):
    rng = np.random.default_rng(seed)
    for _ in range(N_LEGACY):
        config = random_config(rng)
        model, obs, prior = random_case(rng, config)
        yield rng, model, obs, prior


def _batched_cases(seed):
    """(config, horizon, [(model, obs, prior)] * PER_CONFIG) for N_CONFIGS configurations."""
    rng = np.random.default_rng(seed)
    configs = [random_config(rng, sparse=bool(i % 2)) for i in range(N_CONFIGS)]
    configs[0] = dict(num_states=[3, 4], num_obs=[3, 2], num_controls=[2, 3], A_dependencies=None)
    for i, config in enumerate(configs):
        cases = [random_case(rng, config) for _ in range(PER_CONFIG)]
        yield config, 1 + i % 3, cases


def _horizon(num_controls, wanted, max_policies=64):
    """``wanted`` (1-3), shortened until there are at most ``max_policies`` policies (legacy loops over them)."""
    joint = int(np.prod(num_controls))
    while wanted > 1 and joint ** wanted > max_policies:
        wanted -= 1
    return wanted


def _stack(cases, pick):
    return [np.stack([pick(c)[k] for c in cases]) for k in range(len(pick(cases[0])))]


def test_fixed_point_matches_pymdp_legacy():
    from pymdp.legacy import inference

    worst = 0.0
    for _, model, obs, prior in _legacy_cases(1):
        ref = inference.update_posterior_states_factorized(
            obj(model.A), tuple(obs), model.num_obs, model.num_states, markov_blanket(model), obj(prior),
            num_iter=10, dF=1.0, dF_tol=0.001)
        ours = aif.infer_states(model, obs, prior, FixedPoint.pymdp_legacy())
        worst = max(worst, max(np.abs(a - b).max() for a, b in zip(ours, ref, strict=False)))
    assert worst < 1e-8


def test_fixed_point_matches_pymdp_1_0():
    jax = jax64()
    import jax.numpy as jnp
    from pymdp import algos

    worst = 0.0
    for config, _, cases in _batched_cases(2):
        models = [c[0] for c in cases]
        A = _stack(models, lambda m: m.A)
        onehot = _stack(cases, lambda c: [np.eye(n)[o] for n, o in zip(c[0].num_obs, c[1], strict=False)])
        prior = _stack(cases, lambda c: c[2])
        run = jax.jit(jax.vmap(partial(algos.run_factorized_fpi, A_dependencies=models[0].A_dependencies,
                                       num_iter=16)))
        ref = run([jnp.asarray(a) for a in A], [jnp.asarray(o) for o in onehot], [jnp.asarray(p) for p in prior])
        for i, (model, obs, pri) in enumerate(cases):
            ours = aif.infer_states(model, obs, pri, FixedPoint.pymdp())
            worst = max(worst, max(np.abs(q - np.asarray(r[i])).max() for q, r in zip(ours, ref, strict=False)))
    assert worst < 1e-8


def test_efe_matches_pymdp_legacy():
    from pymdp.legacy import control

    worst_legacy = worst_default = worst_qpi = 0.0
    for rng, model, obs, prior in _legacy_cases(3):
        policies = aif.enumerate_policies(model.num_controls, _horizon(model.num_controls, int(rng.integers(1, 4))))
        qs = aif.infer_states(model, obs, prior)
        q_ref, neg_efe = control.update_posterior_policies_factorized(
            obj(qs), obj(model.A), obj(model.B), obj(model.C), model.A_dependencies, model.B_dependencies,
            list(policies), gamma=16.0)
        G, _ = aif.expected_free_energy(model, qs, policies, options=EFEOptions.pymdp_legacy())
        G_default, _ = aif.expected_free_energy(model, qs, policies)
        worst_legacy = max(worst_legacy, np.abs(G + neg_efe).max())
        worst_default = max(worst_default, np.abs(G_default + neg_efe).max())
        worst_qpi = max(worst_qpi, np.abs(aif.policy_posterior(G, gamma=16.0) - q_ref).max())
    assert worst_legacy < 1e-8
    assert worst_qpi < 1e-8
    assert worst_default < 1e-5


def test_efe_matches_pymdp_1_0_up_to_the_constant_of_unnormalised_C():
    jax = jax64()
    import jax.numpy as jnp
    from pymdp import control

    worst = {"pymdp preset": 0.0, "default minus constant": 0.0, "q_pi": 0.0}
    for config, horizon, cases in _batched_cases(4):
        models = [c[0] for c in cases]
        m0 = models[0]
        horizon = _horizon(m0.num_controls, horizon)
        policies = aif.enumerate_policies(m0.num_controls, horizon)
        qs = [aif.infer_states(m, obs, prior) for m, obs, prior in cases]
        E = np.full(len(policies), 1.0 / len(policies))

        def ref(q, A, B, C):
            return control.update_posterior_policies(
                jnp.asarray(policies), q, A, B, C, jnp.asarray(E), None, None,
                m0.A_dependencies, m0.B_dependencies, gamma=16.0)

        args = [[jnp.asarray(x) for x in _stack(qs, lambda q: q)]]
        args += [[jnp.asarray(x) for x in _stack(models, lambda m, k=k: getattr(m, k))] for k in "ABC"]
        q_ref, neg_efe = jax.jit(jax.vmap(ref))(*args)
        for i, (model, q) in enumerate(zip(models, qs, strict=False)):
            G_pymdp, _ = aif.expected_free_energy(model, q, policies, options=EFEOptions.pymdp())
            G, _ = aif.expected_free_energy(model, q, policies)
            # pymdp 1.0 scores raw C; the log-softmax we apply subtracts logsumexp(C_m) per step and modality.
            constant = horizon * sum(logsumexp(c) for c in model.C)
            worst["pymdp preset"] = max(worst["pymdp preset"], np.abs(G_pymdp + np.asarray(neg_efe[i])).max())
            worst["default minus constant"] = max(worst["default minus constant"],
                                                 np.abs(G - constant + np.asarray(neg_efe[i])).max())
            worst["q_pi"] = max(worst["q_pi"], np.abs(aif.policy_posterior(G) - np.asarray(q_ref[i])).max())
    assert max(worst.values()) < 1e-8, worst


@pytest.mark.parametrize("sampling", ["marginal", "full"])
def test_action_probabilities_and_deterministic_actions_match_pymdp(sampling):
    jax64()
    import jax.numpy as jnp
    from pymdp import control as control_1
    from pymdp.legacy import control as legacy

    rng = np.random.default_rng(5)
    for _ in range(50):
        num_controls = [int(u) for u in rng.integers(1, 5, rng.integers(1, 4))]
        policies = aif.enumerate_policies(num_controls, int(rng.integers(1, 4)))
        q_pi = rng.dirichlet(np.ones(len(policies)) * 0.5)
        ours = aif.action_probabilities(q_pi, policies, sampling=sampling)
        action = aif.select_action(q_pi, policies, sampling=sampling)
        if sampling == "marginal":
            _, p_ref = legacy._sample_action_test(q_pi, list(policies), num_controls)
            for f in range(len(num_controls)):
                np.testing.assert_allclose(ours[f], p_ref[f], atol=1e-12)
            ref_1 = control_1.sample_action(jnp.asarray(policies), num_controls, jnp.asarray(q_pi))
        else:
            _, p_ref = legacy._sample_policy_test(q_pi, list(policies), num_controls)
            np.testing.assert_allclose(ours, p_ref, atol=1e-12)
            ref_1 = control_1.sample_policy(jnp.asarray(policies), jnp.asarray(q_pi))
        np.testing.assert_array_equal(action, np.asarray(ref_1))


def test_policy_order_matches_pymdp():
    from pymdp.legacy import control

    for num_controls, horizon in [([3], 2), ([2, 1, 3], 2), ([4, 2], 3)]:
        ref = np.stack(control.construct_policies([5] * len(num_controls), num_controls, horizon))
        np.testing.assert_array_equal(aif.enumerate_policies(num_controls, horizon), ref)


def _legacy_tmaze():
    from pymdp.legacy.envs import TMazeEnv

    env = TMazeEnv(reward_probs=[0.98, 0.02])
    A = [a.copy() for a in env.get_likelihood_dist()]
    B = [b.copy() for b in env.get_transition_dist()]
    C = [np.zeros(4), np.array([0.0, 3.0, -3.0]), np.zeros(2)]
    D = [np.eye(4)[0], np.array([0.5, 0.5])]
    return env, A, B, C, D


def test_closed_loop_tmaze_actions_match_pymdp_legacy_agent():
    """50 steps, deterministic selection, legacy settings: the same action at every step."""
    from pymdp.legacy.agent import Agent as LegacyAgent

    for seed in range(4):
        env, A, B, C, D = _legacy_tmaze()
        reference = LegacyAgent(A=obj(A), B=obj(B), C=obj(C), D=obj(D), policy_len=2,
                                action_selection="deterministic", sampling_mode="marginal")
        agent = aif.Agent.pymdp_legacy(aif.GenerativeModel(A, B, C, D), policy_horizon=2, sampling="marginal")
        np.random.seed(seed)  # legacy's environment (and its random tie-breaking) use the global generator
        obs = env.reset()
        for t in range(50):
            reference.infer_states(obs)
            reference.infer_policies()
            ref_action = reference.sample_action()
            action = agent.step([int(o) for o in obs])
            np.testing.assert_array_equal(action, ref_action.astype(int), err_msg=f"seed {seed} step {t}")
            np.testing.assert_allclose(agent.q_pi, reference.q_pi, atol=1e-8)
            obs = env.step(ref_action)


def test_pymdp_preset_has_pymdp_1_0_agent_defaults():
    """Agent.pymdp with no settings gives the q(pi) of pymdp 1.0's Agent with none (gamma = alpha = 1 there)."""
    jax64()
    import jax.numpy as jnp
    from pymdp.agent import Agent as JaxAgent

    rng = np.random.default_rng(3)
    for _ in range(6):
        model, obs, _ = random_case(rng, random_config(rng))
        H = 1 if np.prod(model.num_controls) > 8 else 2
        reference = JaxAgent(A=[jnp.asarray(a)[None] for a in model.A], B=[jnp.asarray(b)[None] for b in model.B],
                             C=[jnp.asarray(c)[None] for c in model.C], D=[jnp.asarray(d)[None] for d in model.D],
                             A_dependencies=model.A_dependencies, B_dependencies=model.B_dependencies,
                             num_controls=model.num_controls, policy_len=H)
        q_pi, _ = reference.infer_policies(reference.infer_states([jnp.array([[o]]) for o in obs], reference.D))
        agent = aif.Agent.pymdp(model, policy_horizon=H)
        agent.infer_states(obs)
        np.testing.assert_allclose(agent.infer_policies()[0], np.asarray(q_pi)[0], atol=1e-12)
        assert (agent.gamma, agent.alpha) == (float(reference.gamma[0]), float(reference.alpha[0])) == (1.0, 1.0)


@pytest.mark.parametrize("sampling", ["marginal", "full"])
def test_alpha_zero_selects_uniformly_as_pymdp(sampling):
    """alpha = 0: stochastic selection from a uniform distribution (pymdp accepts it), in both packages."""
    torch = pytest.importorskip("torch")
    from pymdp.legacy import control as legacy

    import aif_deep

    rng = np.random.default_rng(2)
    policies = aif.enumerate_policies([3, 2], 2)
    q_pi = rng.dirichlet(np.ones(len(policies)))
    ours = aif.action_probabilities(q_pi, policies, "stochastic", alpha=0.0, sampling=sampling)
    deep = aif_deep.action_probabilities(torch.tensor(q_pi), policies, "stochastic", alpha=0.0, sampling=sampling)
    test = legacy._sample_action_test if sampling == "marginal" else legacy._sample_policy_test
    _, ref = test(q_pi, list(policies), [3, 2], action_selection="stochastic", alpha=0.0)
    for a, b, r in zip(*(x if sampling == "marginal" else [x] for x in (ours, deep, ref)), strict=True):
        np.testing.assert_allclose(a, np.asarray(r), atol=1e-12)
        np.testing.assert_allclose(b.numpy(), np.asarray(r), atol=1e-12)
        np.testing.assert_allclose(a, 1.0 / len(a))
    model = aif.random_model(rng, [3, 2], [3], [3, 2])
    for agent in (aif.Agent(model, alpha=0.0), aif_deep.Agent(aif_deep.TabularModel.from_aif(model), alpha=0.0)):
        assert float(agent.alpha) == 0.0
