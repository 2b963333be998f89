"""aif_deep.actor_critic: the soft actor-critic's losses against hand-computed values and independent formulas
(scipy's logsumexp, torch.distributions), the temperature's update direction, the agent that runs it, bad settings
refused, and the examples' quick settings."""

import importlib.util
import math
import pathlib
import sys

import numpy as np
import pytest
import scipy.special

torch = pytest.importorskip("torch")
gym = pytest.importorskip("gymnasium")

import aif_deep  # noqa: E402
from aif.errors import ParameterError, StrategyError  # noqa: E402
from aif_deep.actor_critic import (  # noqa: E402
    EntropyWeight,
    PolicyDrift,
    SoftActorCritic,
    entropy,
    policy_drift,
    soft_value,
    temperature_loss,
)
from aif_deep.online import (  # noqa: E402
    Ensemble,
    EnsembleInfoGain,
    LearnedQ,
    ObservedState,
    RewardRisk,
    Softmax,
    StateVectorModel,
    TDLearning,
)

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _example(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_soft_value_against_hand_computed_values():
    # q = (1/4, 3/4), G = (1, 2), alpha = 1/2: E_q G = 7/4, sum q ln q = 1/4 ln 1/4 + 3/4 ln 3/4.
    log_q = torch.log(torch.tensor([[0.25, 0.75]], dtype=torch.float64))
    G = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    expected = 1.75 + 0.5 * (0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    torch.testing.assert_close(soft_value(G, log_q, 0.5), torch.tensor([expected], dtype=torch.float64))
    torch.testing.assert_close(soft_value(G, log_q, 0.0), torch.tensor([1.75], dtype=torch.float64))
    # H[q] and the drift against torch.distributions.
    torch.testing.assert_close(entropy(log_q), torch.distributions.Categorical(logits=log_q).entropy())


def test_the_policy_objective_is_minimised_by_the_posterior_at_precision_one_over_alpha():
    # min_q E_q[G] - alpha H[q] = -alpha ln sum_a exp(-G(a) / alpha) at q = softmax(-G / alpha) (a Gibbs free energy).
    gen = torch.Generator().manual_seed(0)
    G = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    alpha = 0.3
    best = torch.log_softmax(-G / alpha, -1)
    reference = -alpha * scipy.special.logsumexp(-G.numpy() / alpha, axis=-1)
    np.testing.assert_allclose(soft_value(G, best, alpha).numpy(), reference, rtol=1e-12)
    others = torch.log_softmax(best + 0.5 * torch.randn(5, 3, generator=gen, dtype=torch.float64), -1)
    assert (soft_value(G, others, alpha) > soft_value(G, best, alpha)).all()
    # Its gradient in the logits vanishes there (a stationary point, the actor's fixed point).
    logits = best.clone().requires_grad_(True)
    soft_value(G, torch.log_softmax(logits, -1), alpha).sum().backward()
    assert logits.grad.abs().max() < 1e-12


def test_policy_drift_is_the_kl_divergence_of_torch_distributions():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(7, 4, generator=gen), torch.randn(7, 4, generator=gen)
    la, lb = torch.log_softmax(a, -1), torch.log_softmax(b, -1)
    Categorical = torch.distributions.Categorical
    torch.testing.assert_close(policy_drift(la, lb), torch.distributions.kl_divergence(Categorical(logits=a),
                                                                                        Categorical(logits=b)))
    torch.testing.assert_close(policy_drift(la, la), torch.zeros(7))


@pytest.mark.parametrize("H, target, direction", [(0.6, 0.3, -1), (0.1, 0.3, +1)])
def test_the_temperature_falls_while_the_policy_is_more_random_than_the_target(H, target, direction):
    log_alpha = torch.tensor(math.log(0.1), requires_grad=True)
    H = torch.full((8,), H)
    temperature_loss(log_alpha, H, target).backward()
    assert log_alpha.grad.item() == pytest.approx(H.mean().item() - target)  # d/d ln alpha of ln alpha (H - target)
    opt = torch.optim.SGD([log_alpha], lr=0.1)
    before = log_alpha.item()
    opt.step()
    assert np.sign(log_alpha.item() - before) == direction


def _agent(seed=0, learning=None, **changes):
    """A small CartPole actor-critic written out: the actor is the planner's QFunction, sampled at unit precision."""
    parts = dict(model=StateVectorModel(4, 2, Ensemble(4, 2, size=3, hidden=16, seed=seed + 1)),
                 inference=ObservedState(), planner=LearnedQ(aif_deep.QFunction([4], [2], hidden=16, seed=seed + 2)),
                 efe_terms=(RewardRisk(1.0), EnsembleInfoGain(0.1, 0.01)),
                 learning=learning or SoftActorCritic(
                     aif_deep.QFunction([4], [2], hidden=16, seed=seed),
                     td=TDLearning(learning_starts=20, batch_size=8, train_every=1),
                     policy_terms=(EntropyWeight(0.1, target=0.2, lr=0.05), PolicyDrift(1.0, tau=0.1)), lr=1e-2,
                     imagination=2),
                 selection=Softmax(1.0, gamma_start=None), rng=np.random.default_rng(seed))
    parts.update(changes)
    return aif_deep.Agent(**parts)


def test_the_agent_acts_from_the_actor_and_trains_it_against_the_critic():
    agent = _agent()
    actor, run = agent.planner.qfunction, agent.td
    before = [p.detach().clone() for p in actor.parameters()]
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    reward, terminated = None, False
    for _ in range(80):
        action = agent.step(obs, reward=reward, terminated=terminated)
        with torch.no_grad():  # q(a | x) is the actor's posterior softmax(-G_psi(x, .))
            q = torch.softmax(-actor.net(torch.as_tensor(obs, dtype=torch.float32)), -1).double()
        torch.testing.assert_close(agent.q_pi, q)
        obs, reward, terminated, truncated, _ = env.step(int(action[0]))
        if terminated or truncated:
            agent.infer_states(obs, reward=reward, terminated=terminated)
            agent.reset()
            obs, _ = env.reset()
            reward, terminated = None, False
    assert run.steps == 80 - (agent.qs is not None) and run.size == run.steps
    assert any(not torch.equal(a, b) for a, b in zip(before, actor.parameters(), strict=True))  # the actor learned
    # The entropy of a 2-action policy near uniform (ln 2 = 0.69) is above the target 0.2: alpha fell from 0.1.
    assert run.last_entropy > 0.2 and run.alpha < 0.1
    assert np.isfinite(run.last_drift) and run.last_drift >= 0
    # The critic bootstraps with the soft value under the policy, recomputed here from its parts.
    x1 = torch.randn(5, 4)
    with torch.no_grad():
        G1 = run.target.net(x1)
        q1 = torch.softmax(-actor.net(x1), -1)
        expected = (q1 * G1).sum(-1) + run.alpha * (q1 * q1.log()).sum(-1)
        torch.testing.assert_close(run.next_value(x1), expected)
    # Imagined states: the replayed ones, then two steps of the ensemble's predicted mean under the policy.
    x = torch.randn(6, 4)
    states = run.imagine(x)
    assert states.shape == (18, 4) and torch.equal(states[:6], x) and not torch.equal(states[6:12], x)


def test_without_policy_terms_the_actor_minimises_the_expected_efe():
    agent = _agent(learning=SoftActorCritic(aif_deep.QFunction([4], [2], hidden=16), policy_terms=()))
    assert agent.td.alpha == 0.0 and agent.td.prev is None and agent.td.alpha_opt is None
    fixed = _agent(learning=SoftActorCritic(aif_deep.QFunction([4], [2], hidden=16),
                                            policy_terms=(EntropyWeight(0.2),)))
    assert fixed.td.alpha == pytest.approx(0.2) and fixed.td.alpha_opt is None  # no target: alpha stays


@pytest.mark.parametrize("make, error, match", [
    (lambda: EntropyWeight(alpha=0.0), ParameterError, "EntropyWeight.alpha"),
    (lambda: EntropyWeight(target=-1.0), ParameterError, "EntropyWeight.target"),
    (lambda: PolicyDrift(tau=1.5), ParameterError, "PolicyDrift.tau"),
    (lambda: PolicyDrift(weight=0.0), ParameterError, "PolicyDrift.weight"),
    (lambda: SoftActorCritic(aif_deep.QFunction([4], [2]), imagination=-1), ParameterError, "imagination"),
    (lambda: SoftActorCritic(None), StrategyError, "critic must be an aif_deep.QFunction"),
    (lambda: SoftActorCritic(aif_deep.QFunction([4], [2]), td=TDLearning(hard_min=True)), StrategyError, "hard_min"),
    (lambda: SoftActorCritic(aif_deep.QFunction([4], [2]), policy_terms=(EntropyWeight(), EntropyWeight())),
     StrategyError, "at most one EntropyWeight"),
    (lambda: SoftActorCritic(aif_deep.QFunction([4], [2]), policy_terms=(RewardRisk(),)), StrategyError,
     "EntropyWeight and PolicyDrift"),
    (lambda: _agent(learning=SoftActorCritic(aif_deep.QFunction([4], [2]),
                                             policy_terms=(EntropyWeight(target=0.7),))), ParameterError, "below ln 2"),
    (lambda: _agent(learning=SoftActorCritic(aif_deep.QFunction([3], [2]))), ParameterError, "critic maps"),
    (lambda: _agent(learning=SoftActorCritic(aif_deep.QFunction([4], [2]), imagination=1),
                    model=StateVectorModel(4, 2), efe_terms=(RewardRisk(),)), StrategyError, "transition ensemble"),
])
def test_bad_settings_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_the_actor_must_not_be_the_critic():
    q = aif_deep.QFunction([4], [2], hidden=16)
    with pytest.raises(StrategyError, match="network of its own"):
        _agent(planner=LearnedQ(q), learning=SoftActorCritic(q))


def test_mountaincar_example_quick(capsys):
    results = _example("mountaincar").main(["--quick", "--agent", "actor-critic", "--no-progress"])
    text = capsys.readouterr().out
    assert "flag first reached" in text and "median" in text
    assert {r["name"] for r in results} == {"active inference", "no information gain", "DQN"}
    assert all(len(r["returns"]) == 2 and (r["returns"] < 0).all() for r in results)


def test_cartpole_example_runs_the_actor_critic(capsys):
    results = _example("cartpole").main(["--quick", "--agent", "actor-critic", "--episodes", "6", "--no-progress"])
    text = capsys.readouterr().out
    assert "actor-critic" in text and "median" in text
    assert {r["name"] for r in results} == {"actor-critic", "DQN"}


def test_cartpole_example_fixes_the_entropy_weight_unless_given_a_target_entropy():
    cp = _example("cartpole")
    fixed = cp.build_agent(4, 2, cp.Settings(actor_critic=True, hidden=16, ensemble_size=2, model_hidden=8))
    assert fixed.td.alpha == pytest.approx(1 / 30) and fixed.td.alpha_opt is None  # the efe-q agent's precision 30
    learned = cp.build_agent(4, 2, cp.Settings(actor_critic=True, hidden=16, ensemble_size=2, model_hidden=8,
                                               alpha=0.05, target_entropy=0.3, alpha_lr=1e-3, drift=0.5))
    assert learned.td.alpha == pytest.approx(0.05) and learned.td.target_entropy == 0.3
    assert learned.td.alpha_opt.param_groups[0]["lr"] == 1e-3 and learned.td.drift.weight == 0.5


def test_cartpole_actor_critic_trace_script_prints_each_block(capsys):
    spec = importlib.util.spec_from_file_location("cartpole_ac_trace", ROOT / "benchmarks" /
                                                  "cartpole_actor_critic_trace.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(["--episodes", "3", "--every", "1", "--alpha", "0.05", "--target-entropy", "0.2", "--train-every", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["episode 1", "episode 2", "episode 3"]
    assert all("alpha 0.0500" in line for line in lines)  # no update before learning_starts: alpha as given


def _filled_run(**td):
    """A TDRun on a 2-feature model with two episodes in its buffer of 8: 4 steps ending in a fall (terminated),
    then 3 steps of an episode still running (as after a truncation: no terminal transition)."""
    q = aif_deep.QFunction([2], [2], temperature=0.05, hidden=8, seed=0)
    run = aif_deep.TDRun(TDLearning(buffer_size=8, learning_starts=10**6, **td), q, StateVectorModel(2, 2),
                         (RewardRisk(1.0),), np.random.default_rng(0))
    xs = [torch.tensor([float(i), 0.0]) for i in range(5)]
    for t in range(4):
        run.observe(xs[t], t % 2, 1.0 + t, xs[t + 1], t == 3)
    ys = [torch.tensor([10.0 + i, 1.0]) for i in range(4)]
    for t in range(3):
        run.observe(ys[t], 0, 5.0, ys[t + 1], False)
    return run, xs, ys


def test_n_step_targets_equal_a_hand_computation_and_stop_at_ends():
    run, xs, ys = _filled_run(n_step=3, discount=0.5)
    pos, ok = run.n_step_indices(torch.arange(7))
    # Transition 2 reaches the terminal 3; the episode's last step (3) stops there; 6 is the newest transition.
    assert ok.int().tolist() == [[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0], [1, 0, 0]]
    V = run.next_value(torch.stack([xs[3], ys[3]]))  # the bootstrap states: x'_2 = xs[3] and the newest, ys[3]
    g = -torch.tensor([1.0, 2.0, 3.0, 4.0])  # g = -r (no information gain)
    expected = torch.stack([
        g[0] + 0.5 * g[1] + 0.25 * g[2] + 0.125 * V[0],  # three steps, then V(x'_2)
        g[1] + 0.5 * g[2] + 0.25 * g[3],                  # ends in the fall: no bootstrap
        g[2] + 0.5 * g[3],
        g[3],
        torch.tensor(-5.0 - 2.5 - 1.25) + 0.125 * V[1],    # the unfinished episode bootstraps from its newest x'
        torch.tensor(-5.0 - 2.5) + 0.25 * V[1],
        torch.tensor(-5.0) + 0.5 * V[1],
    ])
    torch.testing.assert_close(run.n_step_target(torch.arange(7), None), expected)
    # With n = 1 the target is the one-step one.
    one, _, _ = _filled_run(n_step=1, discount=0.5)
    pos1, ok1 = one.n_step_indices(torch.arange(7))
    assert ok1.all() and pos1[:, 0].tolist() == list(range(7))


def test_n_step_does_not_run_over_an_episode_boundary_without_a_terminal_transition():
    run, xs, ys = _filled_run(n_step=2, discount=0.5)
    run.terminated[3] = 0.0  # the first episode truncated instead of falling: still ends at its last transition
    _, ok = run.n_step_indices(torch.tensor([3]))
    assert ok.int().tolist() == [[1, 0]]
    V = run.next_value(xs[4][None])
    torch.testing.assert_close(run.n_step_target(torch.tensor([3]), None), -4.0 + 0.5 * V)  # and bootstraps


def test_twin_critics_bootstrap_with_the_max_of_two_heads():
    run, _, _ = _filled_run(twin=True)
    assert run.qf2 is not None and run.qf2 is not run.qf
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        G1, G2 = run.target.net(x), run.target2.net(x)
        assert not torch.allclose(G1, G2)  # the second head has weights of its own
        G = torch.maximum(G1, G2)
        T = run.qf.temperature
        torch.testing.assert_close(run.target_G(x), G)
        torch.testing.assert_close(run.next_value(x), -T * torch.logsumexp(-G / T, -1))
    # Both heads are trained and tracked by their targets.
    before = [p.detach().clone() for p in run.qf2.parameters()]
    run.update()
    assert any(not torch.equal(a, b) for a, b in zip(before, run.qf2.parameters(), strict=True))
    assert len(run._target_params) == 2 * len(list(run.qf.parameters()))


def test_the_actor_critic_with_twin_critics_uses_the_pessimistic_g():
    agent = _agent(learning=SoftActorCritic(aif_deep.QFunction([4], [2], hidden=16),
                                            td=TDLearning(twin=True, n_step=3, learning_starts=20, batch_size=8,
                                                          train_every=1), policy_terms=(EntropyWeight(0.1),)))
    run = agent.td
    x1 = torch.randn(5, 4)
    with torch.no_grad():
        G = torch.maximum(run.target.net(x1), run.target2.net(x1))
        log_q = torch.log_softmax(-agent.planner.qfunction.net(x1), -1)
        torch.testing.assert_close(run.next_value(x1), soft_value(G, log_q, 0.1))
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    reward, terminated = None, False
    for _ in range(40):  # it runs: 20 updates of both heads and the actor with 3-step targets
        action = agent.step(obs, reward=reward, terminated=terminated)
        obs, reward, terminated, truncated, _ = env.step(int(action[0]))
        if terminated or truncated:
            agent.infer_states(obs, reward=reward, terminated=terminated)
            agent.reset()
            obs, _ = env.reset()
            reward, terminated = None, False
    assert run.updates > 0 and np.isfinite(run.last_entropy)


def test_the_learning_rate_schedule_is_linear_then_flat():
    run, _, _ = _filled_run(lr=1e-3, lr_end=1e-4, lr_decay_steps=4)
    rates = []
    for _ in range(6):
        rates.append(run.learning_rate())
        run.update()
        assert run.opt.param_groups[0]["lr"] == pytest.approx(rates[-1])
    np.testing.assert_allclose(rates, [1e-3, 7.75e-4, 5.5e-4, 3.25e-4, 1e-4, 1e-4])
    fixed, _, _ = _filled_run(lr=1e-3)
    fixed.update()
    assert fixed.learning_rate() == 1e-3 and fixed.opt.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("bad", [dict(n_step=0), dict(lr_end=0.0), dict(lr_decay_steps=0)])
def test_bad_td_options_are_refused(bad):
    with pytest.raises(ParameterError):
        TDLearning(**bad)
