"""aif_deep.online on CartPole-v1: the online agent is an aif_deep.Agent configuration (observed state, learned Q
planner, TD learning); it learns, the epistemic term is a non-negative information gain that shrinks where the
transition model has learned, settings and wrong combinations of strategies are refused, runs are determined by
the seed, and the example runs with its quick settings."""

import importlib.util
import pathlib
import sys
from dataclasses import replace

import numpy as np
import pytest
import scipy.special

torch = pytest.importorskip("torch")
gym = pytest.importorskip("gymnasium")

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.errors import ParameterError, StrategyError  # noqa: E402
from aif_deep.online import (  # noqa: E402
    Ensemble,
    EnsembleInfoGain,
    EpistemicCap,
    EpsilonGreedy,
    LearnedQ,
    ObservedState,
    RewardRisk,
    Softmax,
    StateVectorModel,
    TDLearning,
)

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _example():
    spec = importlib.util.spec_from_file_location("cartpole_example", ROOT / "examples" / "cartpole.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


# The example's settings bundle and the Agent it builds from them (its strategies written out).
_EX = _example()
OnlineSettings, dqn_settings, online_agent = _EX.Settings, _EX.dqn_settings, _EX.build_agent


def train_online(env, settings, episodes, seed=0, tricks=(), **kwargs):
    """aif_deep.train_online of the example's agent for ``settings``."""
    agent = online_agent(int(env.observation_space.shape[0]), int(env.action_space.n), settings, tricks, seed)
    return _EX.train_online(env, agent, episodes, seed, **kwargs)

# Small and fast: the learning test needs a few thousand updates, not a solved CartPole.
QUICK = OnlineSettings(hidden=64, ensemble_size=3, model_hidden=32,
                       selection=Softmax(gamma=100.0, gamma_start=1.0, anneal_steps=2000),
                       td=TDLearning(lr=2e-3, learning_starts=300, train_every=1, tau=0.01))
CAP = (EpistemicCap(0.5),)


def _random_policy_mean_return(episodes=100, seed=0):
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    total = 0.0
    for _ in range(episodes):
        env.reset()
        done = False
        while not done:
            _, r, term, trunc, _ = env.step(env.action_space.sample())
            total += r
            done = term or trunc
    return total / episodes


def test_active_inference_agent_learns_cartpole_in_a_short_budget():
    res = train_online(gym.make("CartPole-v1"), QUICK, episodes=60, seed=0, progress=False, tricks=CAP)
    random_mean = _random_policy_mean_return()
    assert 15 < random_mean < 30  # the yardstick itself: a uniform policy lasts ~22 steps
    assert res.returns[-15:].mean() > 3 * random_mean, (res.returns[-15:].mean(), random_mean)
    assert np.isfinite(res.info_gain[-1]) and res.info_gain[-1] >= 0
    assert res.capped.shape == res.returns.shape and 0.0 <= res.capped[-1] <= 1.0
    # It did not collapse onto one action: both actions in every late episode.
    assert (res.action_entropy[-15:] > 0.5).all()


def test_information_gain_is_nonnegative_and_shrinks_where_the_model_has_learned():
    gen = torch.Generator().manual_seed(0)
    ens = Ensemble(4, 2, size=4, hidden=32, seed=0)
    x = torch.randn(256, 4, generator=gen)
    a = torch.randint(0, 2, (256,), generator=gen)
    target = 0.1 * torch.tanh(x) * (2 * a[:, None] - 1)  # a smooth change, as CartPole's
    ig0 = ens.info_gain(x, a, 0.01)
    assert ig0.shape == (256,) and (ig0 >= 0).all()
    # Independent formula: 1/2 sum_d ln(1 + Var_k / sigma^2) from the members' predictions.
    with torch.no_grad():
        pred = ens(x, a)
    ref = 0.5 * np.log1p(pred.numpy().var(0) / 0.01 ** 2).sum(-1)
    np.testing.assert_allclose(ig0.numpy(), ref, rtol=1e-5)
    opt = torch.optim.Adam(ens.parameters(), lr=3e-3)
    for _ in range(400):
        loss = ((ens(x, a) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    ig1 = ens.info_gain(x, a, 0.01)
    assert (ig1 >= 0).all() and ig1.mean() < 0.5 * ig0.mean()
    # Members agree where they were trained more than far outside the data.
    far = ens.info_gain(10 * x, a, 0.01)
    assert far.mean() > ig1.mean()


def test_epistemic_term_enters_the_td_target():
    td = online_agent(4, 2, QUICK, CAP, seed=0).td
    r = torch.ones(8)
    ig = torch.rand(8)
    np.testing.assert_allclose(td.one_step_efe(r, ig).numpy(), (-1.0 - QUICK.epistemic_weight * ig).numpy())
    assert td.ensemble is not None
    dqn = online_agent(4, 2, dqn_settings(QUICK), seed=0)
    assert dqn.td.ensemble is None and dqn.model.transition is None  # DQN: no model, no epistemic term


def test_epistemic_cap_bounds_the_epistemic_value_per_transition():
    ig = torch.tensor([0.0, 0.01, 0.04, 0.05, 0.2, 9.0])
    r = torch.ones(6)
    capped = online_agent(4, 2, replace(QUICK, epistemic_weight=10.0), (EpistemicCap(0.5),), seed=0).td
    free = online_agent(4, 2, replace(QUICK, epistemic_weight=10.0), seed=0).td
    # g = -r - min(w * ig, cap): unchanged below the cap, never more than cap nats of epistemic value.
    np.testing.assert_allclose(capped.one_step_efe(r, ig).numpy(), [-1.0, -1.1, -1.4, -1.5, -1.5, -1.5], rtol=1e-6)
    np.testing.assert_allclose(free.one_step_efe(r, ig).numpy(), (-1.0 - 10.0 * ig).numpy(), rtol=1e-6)


def test_epistemic_cap_makes_the_untrained_ensembles_disagreement_the_same_for_every_action():
    # The cause of the collapse at w = 10: before the ensemble is fitted its members disagree by their
    # initialisation (~9 nats per CartPole step), and with no bound that disagreement, differing between
    # actions, dominates g. Under the cap, g is the same for both actions at every state.
    gen = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(256, 4, generator=gen)  # CartPole's states are near 0
    s = replace(QUICK, epistemic_weight=10.0, ensemble_size=5, model_hidden=64, noise_sd=0.01)
    agent = online_agent(4, 2, s, CAP, seed=0).td
    r = torch.ones(256)
    ig = [agent.ensemble.info_gain(x, torch.full((256,), a), s.noise_sd) for a in (0, 1)]
    assert min(float(i.min()) for i in ig) > 0.5 / 10.0  # every transition is above the cap
    g_free = [-r - 10.0 * i for i in ig]
    assert float((g_free[0] - g_free[1]).abs().mean()) > 1.0  # more than one step's risk between the actions
    g = [agent.one_step_efe(r, i) for i in ig]
    torch.testing.assert_close(g[0], g[1])
    torch.testing.assert_close(g[0], torch.full((256,), -1.5))


def test_selection_rules():
    G = np.array([-10.0, -12.0])
    p = Softmax(gamma=0.5, gamma_start=None).probabilities(G, 0)
    np.testing.assert_allclose(p, scipy.special.softmax([5.0, 6.0]))  # softmax(-gamma G)
    rising = Softmax(gamma=100.0, gamma_start=1.0, anneal_steps=100)
    assert rising.precision(0) == 1.0 and rising.precision(50) == pytest.approx(10.0)
    assert rising.precision(100) == rising.precision(10_000) == pytest.approx(100.0)
    np.testing.assert_allclose(rising.probabilities(G, 0), scipy.special.softmax([10.0, 12.0]))
    e = EpsilonGreedy(start=1.0, end=0.1, decay_steps=100)
    np.testing.assert_allclose(e.probabilities(G, 0), [0.5, 0.5])
    np.testing.assert_allclose(e.probabilities(G, 1000), [0.05, 0.95])


@pytest.mark.parametrize("bad", [dict(temperature=0.0), dict(epistemic_weight=-1.0), dict(noise_sd=0.0),
                                 dict(ensemble_size=1), dict(reward_preference=float("nan")), dict(hidden=0)])
def test_bad_settings_raise_when_the_strategies_are_built(bad):
    with pytest.raises(ParameterError):
        online_agent(4, 2, OnlineSettings(**bad))


@pytest.mark.parametrize("bad", [dict(lr=0.0), dict(discount=1.5), dict(tau=-0.1), dict(batch_size=0),
                                 dict(buffer_size=0), dict(learning_starts=-1), dict(max_grad_norm=float("inf"))])
def test_bad_td_settings_raise(bad):
    with pytest.raises(ParameterError, match=f"TDLearning.{next(iter(bad))} must be"):
        TDLearning(**bad)


def test_a_selection_given_as_a_string_is_refused():
    with pytest.raises(StrategyError, match="selection = SelectionRule"):
        online_agent(4, 2, OnlineSettings(selection="softmax"))


@pytest.mark.parametrize("cap", [0.0, -1.0, float("inf")])
def test_bad_epistemic_cap_raises(cap):
    with pytest.raises(ParameterError, match="EpistemicCap.cap must be positive and finite"):
        EpistemicCap(cap)


def test_bad_selection_and_env_raise():
    with pytest.raises(ParameterError):
        Softmax(gamma=0.0)
    with pytest.raises(ParameterError):
        EpsilonGreedy(end=1.5)
    with pytest.raises(ParameterError, match="num_actions must be at least 2"):
        online_agent(4, 1)
    with pytest.raises(ParameterError):
        _EX.train_online(gym.make("MountainCarContinuous-v0"), online_agent(2, 2, QUICK), episodes=1,
                              progress=False)


def test_runs_are_determined_by_the_seed():
    s = replace(QUICK, td=replace(QUICK.td, learning_starts=100))
    a = train_online(gym.make("CartPole-v1"), s, episodes=12, seed=3, progress=False, tricks=CAP)
    b = train_online(gym.make("CartPole-v1"), s, episodes=12, seed=3, progress=False, tricks=CAP)
    c = train_online(gym.make("CartPole-v1"), s, episodes=12, seed=4, progress=False, tricks=CAP)
    np.testing.assert_array_equal(a.returns, b.returns)
    np.testing.assert_array_equal(a.info_gain, b.info_gain)
    assert not np.array_equal(a.returns, c.returns)


def test_cartpole_example_quick(tmp_path, capsys):
    mod = _example()
    out = tmp_path / "curves.png"
    results = mod.main(["--quick", "--episodes", "15", "--out", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert "active inference" in text and "DQN" in text and "median" in text
    assert {r["name"] for r in results} == {"active inference", "DQN"}
    assert out.exists() and out.stat().st_size > 0


def test_cartpole_example_ablation_quick(capsys):
    mod = _example()
    results = mod.main(["--quick", "--ablation", "--weights", "0", "10", "--episodes", "12", "--no-progress"])
    text = capsys.readouterr().out
    assert "epistemic_cap 0.5" in text and "at the cap" in text
    w10 = [r for r in results if r["name"] == "w=10"][0]
    # With the quick run's untrained ensemble, w * info_gain is far above the cap: every replayed transition is at it.
    assert np.nanmax(w10["capped"]) == 1.0
    assert np.isnan([r for r in results if r["name"] == "w=0"][0]["capped"]).all()  # no ensemble, no cap


def _strategies(seed=0, **changes):
    """The CartPole configuration of aif_deep.Agent, written out."""
    parts = dict(model=StateVectorModel(4, 2, Ensemble(4, 2, size=3, hidden=16, seed=seed + 1)),
                 inference=ObservedState(), planner=LearnedQ(aif_deep.QFunction([4], [2], temperature=0.05, hidden=32,
                                                                              seed=seed)),
                 efe_terms=(RewardRisk(1.0), EnsembleInfoGain(0.1, 0.01)),
                 learning=TDLearning(learning_starts=20, batch_size=8, train_every=1, tricks=CAP),
                 selection=Softmax(30.0, 1.0, 100), rng=np.random.default_rng(seed))
    parts.update(changes)
    return aif_deep.Agent(**parts)


def test_the_online_agent_is_an_agent_configuration_whose_q_pi_is_the_selection_rule_on_G_phi():
    agent = _strategies()
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    reward, terminated, returns = None, False, []
    for _ in range(60):
        action = agent.step(obs, reward=reward, terminated=terminated)
        x = torch.as_tensor(obs, dtype=torch.float32)
        with torch.no_grad():
            G = agent.planner.qfunction.net(x).double()
        torch.testing.assert_close(agent.G, G)
        torch.testing.assert_close(agent.q_pi, torch.from_numpy(agent.selection.probabilities(G.numpy(),
                                                                                             agent.steps - 1)))
        assert action.shape == (1,) and int(action[0]) in (0, 1) and agent.policies.shape == (2, 1, 1)
        obs, reward, terminated, truncated, _ = env.step(int(action[0]))
        returns.append(reward)
        if terminated or truncated:
            agent.infer_states(obs, reward=reward, terminated=terminated)
            agent.reset()
            obs, _ = env.reset()
            reward, terminated = None, False
    if agent.qs is not None:
        agent.infer_states(obs, reward=reward, terminated=terminated)  # the last action's outcome
    # Every transition reached the buffer (the last of an episode through infer_states) and TD updates ran.
    assert agent.td.steps == agent.td.size == 60
    assert np.isfinite(agent.td.last_info_gain) and agent.steps == 60


def test_the_online_agent_refuses_a_missing_reward_and_a_bad_observation():
    agent = _strategies()
    agent.step(np.zeros(4))
    with pytest.raises(ParameterError, match="reward"):
        agent.step(np.zeros(4))
    with pytest.raises(ParameterError, match=r"shape \(4,\)"):
        agent.step(np.zeros(3), reward=1.0)
    with pytest.raises(ParameterError, match="finite"):
        agent.step(np.array([0.0, np.nan, 0.0, 0.0]), reward=1.0)


@pytest.mark.parametrize("change, match", [
    (dict(selection=aif.Selection()), "selection = SelectionRule"),
    (dict(rng=torch.Generator()), "rng = Generator"),
    (dict(inference=aif.FixedPoint()), "inference = ObservedState"),
    (dict(planner=aif.planning.PolicyEnumeration()), "planner = LearnedQ"),
    (dict(learning=aif.Learning()), "TDLearning"),
    (dict(batch_shape=(2,)), "one agent"),
    (dict(efe_terms=(aif.Utility(),)), "RewardRisk"),
    (dict(model=StateVectorModel(4, 2)), "transition ensemble"),
])
def test_wrong_strategies_for_an_observed_state_are_refused_when_the_agent_is_built(change, match):
    with pytest.raises(StrategyError, match=match):
        _strategies(**change)


def test_observed_state_strategies_are_refused_on_a_tabular_model():
    model = aif_deep.TabularModel.from_aif(aif.envs.TMaze().generative_model())
    with pytest.raises(StrategyError, match="model = StateVectorModel"):
        aif_deep.Agent(model, planner=LearnedQ(aif_deep.QFunction([4], [2])))
    with pytest.raises(StrategyError, match="select from a LearnedQ planner"):
        aif_deep.Agent(model, selection=Softmax())
    with pytest.raises(StrategyError, match="observed"):
        StateVectorModel(4, 2).log_likelihood([0], None)


def test_train_online_refuses_an_agent_for_another_environment():
    with pytest.raises(ParameterError, match="StateVectorModel"):
        _EX.train_online(gym.make("CartPole-v1"), online_agent(3, 2, QUICK), episodes=1, progress=False)
    with pytest.raises(ParameterError, match="StateVectorModel"):
        _EX.train_online(gym.make("CartPole-v1"), _strategies(learning=None), episodes=1, progress=False)



def test_cartpole_example_passes_the_td_options_to_the_critic():
    results = _example().main(["--quick", "--agent", "actor-critic", "--no-dqn", "--episodes", "12", "--no-progress",
                               "--twin", "--n-step", "3", "--critic-lr", "2e-3", "--lr-end", "1e-4",
                               "--lr-decay-steps", "10"])
    assert len(results) == 1 and len(results[0]["returns"]) == 12
    td = results[0]["settings"].td
    assert (td.twin, td.n_step, td.lr, td.lr_end, td.lr_decay_steps) == (True, 3, 2e-3, 1e-4, 10)
    assert td.learning_starts == 200  # --quick's, kept
    # Without flags: the actor-critic's critic has twin heads and 3-step targets, DQN beside it TDLearning's defaults.
    mod = _example()
    default = mod.main(["--quick", "--agent", "actor-critic", "--episodes", "2", "--no-progress"])
    by_name = {r["name"]: r["settings"] for r in default}
    assert by_name["actor-critic"].td == replace(OnlineSettings.td, learning_starts=200, twin=True, n_step=3)
    assert by_name["DQN"].td == replace(OnlineSettings.td, learning_starts=200, hard_min=True)
    assert by_name["actor-critic"] == mod.actor_critic_settings(replace(
        mod.Settings(), hidden=64, ensemble_size=3, model_hidden=32), learning_starts=200)
    efe = _example().main(["--quick", "--no-dqn", "--episodes", "2", "--no-progress"])
    assert efe[0]["settings"].td == replace(OnlineSettings.td, learning_starts=200)  # the efe-q agent: unchanged
    old = _example().main(["--quick", "--agent", "actor-critic", "--no-dqn", "--episodes", "2", "--no-progress",
                           "--no-twin", "--n-step", "1"])
    assert old[0]["settings"].td == replace(OnlineSettings.td, learning_starts=200)


def test_cartpole_example_saves_the_returns_of_every_run(tmp_path):
    path = tmp_path / "returns.npz"
    results = _example().main(["--quick", "--no-dqn", "--episodes", "3", "--no-progress", "--save", str(path)])
    saved = np.load(path)
    assert list(saved.keys()) == ["active_inference_0"]
    np.testing.assert_array_equal(saved["active_inference_0"], results[0]["returns"])
