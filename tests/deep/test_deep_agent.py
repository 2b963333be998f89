"""aif_deep.Agent against aif.Agent, batched rollouts, gradients, and parameter recovery with aif_deep.fit."""


import gymnasium as gym
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.envs import AgentWrapper, TMaze  # noqa: E402
from aif.rollout import rollout as aif_rollout  # noqa: E402

TOL = 1e-10


def test_unbatched_agent_is_a_drop_in_for_aif_agent():
    """The same aif.rollout loop, only the lines that build the model and agent changed."""
    model = TMaze().generative_model()
    ref = aif_rollout(aif.Agent(model, policy_horizon=2), TMaze(), 6, seed=3)
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), policy_horizon=2)
    got = aif_rollout(agent, TMaze(), 6, seed=3)
    assert (ref.actions == got.actions).all()
    assert ref.actions[0, 0] == 3  # the cue first
    assert np.abs(ref.q_pi - got.q_pi).max() < TOL
    assert np.abs(ref.G - got.G).max() < TOL
    assert np.abs(ref.terms["state_info_gain"] - got.terms["state_info_gain"]).max() < TOL


@pytest.mark.parametrize("preset", ["pymdp_legacy", "pymdp"])
def test_presets_match_aif_presets(preset):
    model = TMaze().generative_model()
    ref = aif_rollout(getattr(aif.Agent, preset)(model, policy_horizon=2), TMaze(), 4, seed=1)
    agent = getattr(aif_deep.Agent, preset)(aif_deep.TabularModel.from_aif(model, device="cpu"), policy_horizon=2)
    got = aif_rollout(agent, TMaze(), 4, seed=1)
    assert (ref.actions == got.actions).all() and np.abs(ref.q_pi - got.q_pi).max() < TOL


def test_batched_rollout_equals_one_aif_agent_per_environment():
    model = TMaze().generative_model()
    N = 5
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), policy_horizon=2, batch_shape=(N,))
    run = aif_deep.rollout(agent, [TMaze() for _ in range(N)], 4, seed=10)
    assert run.actions.shape == (N, 4, 2) and run.observations.shape == (N, 5, 3)
    for i in range(N):
        ref = aif_rollout(aif.Agent(model, policy_horizon=2), TMaze(), 4, seed=10 + i)
        assert (ref.actions == run.actions[i]).all() and (ref.observations == run.observations[i]).all()
        assert np.abs(ref.q_pi - run.q_pi[i]).max() < TOL
    # A Gymnasium vector environment built by the caller gives the same episodes.
    envs = gym.vector.SyncVectorEnv([lambda: AgentWrapper.for_model(TMaze(), model) for _ in range(N)])
    again = aif_deep.rollout(agent, envs, 4, seed=10)
    assert (again.actions == run.actions).all()


def test_agents_with_their_own_parameters_and_stochastic_selection():
    env = TMaze()
    models = [env.generative_model(reward_preference=r, loss_preference=-r) for r in (1.0, 2.0, 4.0)]
    tm = aif_deep.TabularModel.from_aif(models, device="cpu")
    gen = torch.Generator().manual_seed(0)
    agent = aif_deep.Agent(tm, gamma=torch.tensor([1.0, 4.0, 16.0]), alpha=1.0,
                           selection=aif.Selection("stochastic", "full"), rng=gen)
    run = aif_deep.rollout(agent, [TMaze() for _ in range(3)], 3, seed=0)
    assert run.q_pi.shape == (3, 3, 4)
    for i, model in enumerate(models):  # every agent's q(pi) is its own aif agent's at the same history
        ref = aif.Agent(model, gamma=[1.0, 4.0, 16.0][i])
        for t in range(3):
            ref.infer_states(list(run.observations[i, t]))
            q_pi, _ = ref.infer_policies()
            assert np.abs(q_pi - run.q_pi[i, t]).max() < TOL
            ref.prior = aif.predict(model, ref.qs, run.actions[i, t])


def test_gradients_reach_A_B_C_D_gamma_and_alpha():
    rng = np.random.default_rng(0)
    model = aif.random_model(rng, [3, 2], [3, 2], [3, 2])
    base = aif_deep.TabularModel.from_aif(model, device="cpu")
    policies = aif.enumerate_policies(model.num_controls, 2)
    obs = [[1, 0], [2, 1]]
    actions = torch.tensor([[1, 0], [2, 1]])
    method = aif.FixedPoint(num_iter=6, tol=None)  # a fixed number of sweeps: a smooth function

    def log_likelihood(A0, B0, C1, D0, raw_gamma, raw_alpha):
        tm = base.replace(A=[torch.softmax(A0, 0), base.A[1]], B=[torch.softmax(B0, 0), base.B[1]],
                          C=[base.C[0], C1], D=[torch.softmax(D0, 0), base.D[1]])
        gamma, alpha = torch.nn.functional.softplus(raw_gamma), torch.nn.functional.softplus(raw_alpha)
        prior, total = tm.prior(), 0.0
        for o, u in zip(obs, actions, strict=True):
            qs = aif_deep.infer_states(tm, o, prior, method)
            G, _ = aif_deep.expected_free_energy(tm, qs, policies)
            q_pi = aif_deep.policy_posterior(G, gamma=gamma)
            total = total + aif_deep.action_log_probability(q_pi, policies, u, alpha, "marginal")
            prior = aif_deep.predict(tm, qs, u)
        return total

    inputs = [torch.log(base.A[0]), torch.log(base.B[0]), base.C[1].clone(), torch.log(base.D[0]),
              torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64)]
    inputs = [x.detach().requires_grad_() for x in inputs]
    grads = torch.autograd.grad(log_likelihood(*inputs), inputs)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    # Against finite differences (along random directions: fast_mode keeps the check to a few evaluations).
    assert torch.autograd.gradcheck(log_likelihood, inputs, eps=1e-6, atol=1e-6, fast_mode=True)


def simulate_tmaze(gamma, strength, trials, steps, alpha, reward_prob, seed, inference=aif.FixedPoint()):
    """All trials of all agents as one batch of agent copies: observations (N, K, T + 1, M), actions (N, K, T, F)."""
    env = TMaze(reward_prob)
    N = len(gamma)
    models = [env.generative_model(reward_preference=r, loss_preference=-r) for r in strength]
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(models * trials, device="cpu"),
                           gamma=torch.tensor(np.tile(gamma, trials)), alpha=alpha, inference=inference,
                           selection=aif.Selection("stochastic", "full"), rng=torch.Generator().manual_seed(seed))
    run = aif_deep.rollout(agent, [TMaze(reward_prob) for _ in range(N * trials)], steps, seed=seed)
    per_agent = lambda x: x.reshape(trials, N, *x.shape[1:]).swapaxes(0, 1)  # noqa: E731
    return models[0], per_agent(run.observations), per_agent(run.actions)


def test_parameter_recovery_small():
    """6 T-maze agents: gamma and preference strength fitted back from their choices (the settings and the full
    40-agent study are in examples/fit_tmaze_parameters.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensors of a few thousand numbers: a second thread only adds contention
    try:
        _recover()
    finally:
        torch.set_num_threads(threads)


def _recover():
    gamma = np.array([2.0, 4.5, 7.0, 10.0, 13.0, 16.0])
    strength = np.array([3.5, 1.0, 6.0, 2.0, 5.0, 3.0])
    alpha, reward_prob, exact = 0.25, 0.6, aif.Exact()  # the T-maze's posterior factorises: exact = FPI
    model, obs, act = simulate_tmaze(gamma, strength, trials=150, steps=4, alpha=alpha, reward_prob=reward_prob,
                                     seed=0, inference=exact)
    shape = torch.tensor([0.0, 1.0, -1.0])
    start_model = aif_deep.TabularModel.from_aif(model, device="cpu")
    result = aif_deep.fit(start_model, obs, act, params=("gamma",), gamma=4.0, alpha=alpha, inference=exact,
                          custom={"strength": (torch.full((6,), 2.0),
                                               lambda r, m: m.replace(C=[m.C[0], r[:, None] * shape, m.C[2]]))},
                          steps=150, lr=0.1, progress=False)
    assert np.corrcoef(gamma, result.gamma.numpy())[0, 1] >= 0.9
    assert np.corrcoef(strength, result.custom["strength"].numpy())[0, 1] >= 0.9
    assert result.history[-1] < result.history[0]


def test_fit_with_priors_and_bad_names():
    gamma = np.array([2.0, 8.0])
    model, obs, act = simulate_tmaze(gamma, np.array([3.0, 3.0]), trials=5, steps=2, alpha=1.0, reward_prob=0.9,
                                     seed=1)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    # A narrow prior (MAP) holds gamma near its mode whatever the data say.
    prior = torch.distributions.LogNormal(torch.tensor(np.log(5.0)), torch.tensor(0.01))
    result = aif_deep.fit(tm, obs, act, params=("gamma", "D[1]"), gamma=5.0, alpha=1.0, priors={"gamma": prior},
                          steps=30, lr=0.05, progress=False)
    assert np.abs(result.gamma.numpy() - 5.0).max() < 0.2
    assert torch.allclose(result.model.D[1].sum(-1), torch.ones(2, dtype=torch.float64))
    assert (result.log_prior < 0).all() or (result.log_prior > 0).all()
    with pytest.raises(aif.ParameterError, match="cannot fit 'beta'"):
        aif_deep.fit(tm, obs, act, params=("beta",), progress=False)
    with pytest.raises(aif.ParameterError, match="priors name"):
        aif_deep.fit(tm, obs, act, params=("gamma",), priors={"alpha": prior}, progress=False)


def _with_counts(model):
    """The model with Dirichlet counts A/B/D (scaled copies of its arrays), for the learning strategies."""
    return model.replace(pA=[4.0 * a + 0.5 for a in model.A], pB=[4.0 * b + 0.5 for b in model.B],
                         pD=[4.0 * d + 0.5 for d in model.D])


STRATEGIES = {
    "fixed_point": dict(inference=aif.FixedPoint()),
    "exact": dict(inference=aif.Exact()),
    "mmp": dict(inference=aif.MarginalMessagePassing(), inference_horizon=2, trial_length=4),
    "vmp": dict(inference=aif.VariationalMessagePassing(), inference_horizon=2, trial_length=4),
    "mmp_legacy": dict(inference=aif.MarginalMessagePassing(legacy_vfe=True), inference_horizon=2,
                       sequence=aif.SequenceOptions.pymdp_legacy(policy_sep_prior=True),
                       efe=aif.EFEOptions.pymdp_legacy()),
    "soft_q": dict(planner=aif.planning.SoftQPlanner(horizon=2)),
    "sophisticated": dict(planner=aif.planning.SophisticatedInference(depth=2)),
    "enumeration": dict(planner=aif.planning.PolicyEnumeration(horizon=2)),
    "learning_online": dict(learning=aif.Learning()),
    "learning_offline_D": dict(learning=aif.Learning(learn_D=True, online=False)),
}


def _random_model(seed):
    rng = np.random.default_rng(seed)
    return aif.random_model(rng, [3, 2], [3, 2], [2, 2], [[0, 1], [1]], [[0], [1]], concentration=0.5)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("world", ["tmaze", "random"])
def test_every_aif_strategy_gives_aif_agents_results(name, world):
    """aif_deep.Agent on TabularModel.from_aif(model) gives aif.Agent's beliefs, q(pi) and actions, step by step,
    with every strategy aif.Agent accepts (NumPy-only ones through the model's NumPy form)."""
    settings = STRATEGIES[name]
    model = TMaze().generative_model() if world == "tmaze" else _random_model(7)
    if "learning" in settings:
        model = _with_counts(model)
    ref = aif.Agent(model, policy_horizon=2, **settings)
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), policy_horizon=2, **settings)
    configured = agent.policies.copy()
    env = AgentWrapper.for_model(TMaze(), TMaze().generative_model())
    obs, rng = env.reset(seed=3)[0], np.random.default_rng(0)
    for t in range(4):
        if world == "random":
            obs = [int(rng.integers(n)) for n in model.num_obs]
        a_ref, a = ref.step(list(obs)), agent.step(list(obs))
        assert (np.asarray(a_ref) == a.numpy()).all()
        for q_ref, q in zip(ref.qs, agent.qs, strict=True):
            assert np.abs(q_ref - q.numpy()).max() < TOL
        assert np.abs(ref.q_pi - agent.q_pi.numpy()).max() < TOL
        if world == "tmaze":
            obs, *_ = env.step(np.asarray(a_ref))
    assert (agent.policies == configured).all()  # a planner never changes the configured policies
    if settings.get("learning") is not None and not settings["learning"].online:
        learned = ref.learn()
        got = agent.learn()
        for name_ in ("pA", "pB", "pD"):
            for x_ref, x in zip(getattr(learned, name_), getattr(got, name_), strict=True):
                assert np.abs(x_ref - x.numpy()).max() < TOL
        assert got is agent.model


@pytest.mark.parametrize("bad, match", [
    (dict(planner=aif.planning.SophisticatedInference), "planner must be an instance"),
    (dict(planner="sophisticated"), "planner"),
    (dict(inference=aif.FixedPoint), "inference"),
    (dict(inference="fpi"), "inference"),
    (dict(learning=aif.FixedPoint()), "learning"),
])
def test_strategies_are_checked_when_the_agent_is_built(bad, match):
    with pytest.raises(aif.errors.StrategyError, match=match):
        aif_deep.Agent(aif_deep.TabularModel.from_aif(TMaze().generative_model(), device="cpu"), **bad)


def test_numpy_only_strategies_are_refused_for_neural_models():
    from aif_deep.neural import Categorical, NeuralModel

    model = NeuralModel([3], [2], [Categorical(3)], seed=0)
    for bad in (dict(planner=aif.planning.SophisticatedInference(depth=1)),
                dict(inference=aif.MarginalMessagePassing(), inference_horizon=2),
                dict(learning=aif.Learning(learn_A=False, learn_B=False, learn_D=True, online=False))):
        with pytest.raises(aif.errors.StrategyError, match="runs on NumPy only"):
            aif_deep.Agent(model, **bad)
    with pytest.raises(aif.errors.StrategyError, match="method must be a state inference strategy"):
        aif_deep.infer_states(aif_deep.TabularModel.from_aif(TMaze().generative_model(), device="cpu"), [0, 0, 0],
                              method=aif.MarginalMessagePassing())


def test_a_short_list_of_long_policies_is_scored_without_enumerating_the_horizon():
    # 2**40 policies of horizon 40 could not be enumerated: the agent compares a list with the enumeration only when
    # it has that many rows.
    model = aif_deep.TabularModel.from_aif(aif.random_model(np.random.default_rng(0), [3], [3], [2]), device="cpu")
    policies = np.stack([np.zeros((40, 1), int), np.ones((40, 1), int), np.arange(40)[:, None] % 2])
    agent = aif_deep.Agent(model, policies=policies)
    assert agent.step([0]).shape == (1,) and agent.G.shape == (3,)
    ref = aif.Agent(model.to_aif(), policies=policies)
    ref.step([0])
    assert np.abs(ref.G - agent.G.numpy()).max() < TOL


@pytest.mark.parametrize("preset", ["pymdp", "pymdp_legacy", "pymdp_legacy_mmp"])
def test_presets_match_aif(preset):
    model = TMaze().generative_model()
    ref = getattr(aif.Agent, preset)(model, 2)
    agent = getattr(aif_deep.Agent, preset)(aif_deep.TabularModel.from_aif(model, device="cpu"), 2)
    for obs in ([0, 0, 0], [1, 1, 0], [2, 2, 1]):
        assert (np.asarray(ref.step(obs)) == agent.step(obs).numpy()).all()
        assert np.abs(ref.q_pi - agent.q_pi.numpy()).max() < TOL


BAD_SETTINGS = dict(efe="pymdp", inference=aif.FixedPoint, planner="si", learning=True, policy_horizon=None,
                    efe_terms="utility", selection="stochastic", gamma="16", alpha=-1, policies=[[0]],
                    control_factors=[5], inference_horizon=0, trial_length=1.5, sequence="spm",
                    efe_terms_class=(aif.Utility,))


@pytest.mark.parametrize("name", sorted(BAD_SETTINGS))
def test_both_agents_refuse_a_bad_setting_when_built_with_the_same_error_and_message(name):
    model = TMaze().generative_model()
    setting = {name.replace("_class", ""): BAD_SETTINGS[name]}
    errors = []
    for Agent, m in ((aif.Agent, model), (aif_deep.Agent, aif_deep.TabularModel.from_aif(model, device="cpu"))):
        with pytest.raises(aif.errors.AifError) as info:
            Agent(m, **setting)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1]


def test_the_generator_of_the_wrong_package_is_refused_by_both():
    model = TMaze().generative_model()
    with pytest.raises(aif.errors.StrategyError, match="rng must be a np.random.Generator, got Generator"):
        aif.Agent(model, rng=torch.Generator())
    with pytest.raises(aif.errors.StrategyError, match="rng must be a torch.Generator, got Generator"):
        aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), rng=np.random.default_rng(0))
    with pytest.raises(aif.errors.ParameterError, match="batch_shape must be a tuple"):
        aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), batch_shape=4)
