"""Imitation without reward: the losses against their formulas written out, demonstrations from aif.rollout, and
behaviour cloning and IQ-Learn imitating a soft-optimal expert on a small grid."""

import importlib.util
import pathlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import aif  # noqa: E402
from aif.errors import ParameterError, PolicyError  # noqa: E402
from aif_deep import QFunction  # noqa: E402
from aif_deep.imitation import (  # noqa: E402
    Demonstrations,
    ImitationSettings,
    behaviour_cloning,
    cloning_loss,
    inverse_soft_q,
    iq_loss,
)


def test_losses_are_their_formulas():
    net = QFunction([4], [3], temperature=0.7, hidden=8, seed=0).double()
    g = torch.Generator().manual_seed(0)
    x, x1 = torch.rand(6, 4, generator=g, dtype=torch.float64), torch.rand(6, 4, generator=g, dtype=torch.float64)
    a, done = torch.tensor([0, 2, 1, 1, 0, 2]), torch.tensor([0.0, 0, 1, 0, 0, 1], dtype=torch.float64)
    with torch.no_grad():
        G, G1 = net(x).numpy(), net(x1).numpy()
        T, gamma, chi2 = 0.7, 0.9, 0.5
        soft_value = lambda G: T * np.log(np.exp(-G / T).sum(-1))  # noqa: E731  (V of Q = -G)
        Q = -G[np.arange(6), a.numpy()]
        future = gamma * (1 - done.numpy()) * soft_value(G1)
        r = Q - future
        want = -r.mean() + (soft_value(G) - future).mean() + (r ** 2).mean() / (4 * chi2)
        assert float(iq_loss(net, x, a, x1, done, gamma, chi2)) == pytest.approx(want, abs=1e-12)
        log_pi = -G / T - np.log(np.exp(-G / T).sum(-1, keepdims=True))
        assert float(cloning_loss(net, x, a)) == pytest.approx(-log_pi[np.arange(6), a.numpy()].mean(), abs=1e-12)


def grid_demonstrations(episodes, seed=0):
    env = aif.envs.GridWorld((3, 3))
    model = env.generative_model(preference="goal")
    rng = np.random.default_rng(seed)
    expert = aif.planning.SoftQPlanner(horizon=6)
    trajectories = []
    for _ in range(episodes):
        start = int(rng.integers(0, 8))  # every cell but the goal (8)
        agent = aif.Agent(model, planner=expert, gamma=1.0, alpha=1.0, selection=aif.Selection("stochastic"),
                          rng=np.random.default_rng(rng.integers(1 << 30)))
        trajectories.append(aif.rollout(agent, env, 8, seed=int(rng.integers(1 << 30)),
                                        options={"D": [np.eye(9)[start]]}))
    return model, expert, trajectories


def test_demonstrations_from_trajectories():
    model, _, trajectories = grid_demonstrations(4)
    demos = Demonstrations.from_trajectories(trajectories, model.num_controls)
    ended = [t for t in trajectories if t.terminated]
    assert len(ended) == 4
    assert demos.x.shape == (sum(len(t.actions) for t in trajectories), 9)
    assert float(demos.done.sum()) == len(ended)
    first = trajectories[0]
    np.testing.assert_array_equal(demos.x[: len(first.actions)].numpy(), first.qs[0])
    np.testing.assert_array_equal(demos.actions[: len(first.actions)].numpy(), first.actions[:, 0])
    np.testing.assert_array_equal(demos.x_next[: len(first.actions) - 1].numpy(), first.qs[0][1:])


def test_cloning_and_inverse_soft_q_imitate_the_expert():
    """Trained on 40 expert episodes, each learner's most probable action is one of the expert's likely ones (at
    least half as probable as its most probable: two shortest paths are nearly tied) at every cell but the goal."""
    model, expert, trajectories = grid_demonstrations(40)
    demos = Demonstrations.from_trajectories(trajectories, model.num_controls)
    cells = torch.eye(9)[:8]
    expert_pi = np.stack([aif.policy_posterior(expert.plan(model, [np.eye(9)[s]]).G, gamma=1.0) for s in range(8)])
    likely = expert_pi >= 0.5 * expert_pi.max(axis=1, keepdims=True)
    settings = ImitationSettings(steps=300, batch_size=64, lr=3e-3)
    for fit in (behaviour_cloning, inverse_soft_q):
        net = QFunction([9], [5], hidden=32, seed=0)
        losses = fit(net, demos, settings)
        assert np.mean(losses[-50:]) < np.mean(losses[:50])
        with torch.no_grad():
            chosen = (-net(cells)).argmax(-1).numpy()
        assert likely[np.arange(8), chosen].all(), (fit.__name__, chosen)


def test_bad_input_is_refused():
    x = torch.zeros(3, 4)
    with pytest.raises(ParameterError, match="expected"):
        Demonstrations(x, torch.zeros(2, dtype=torch.long), x, torch.zeros(3))
    with pytest.raises(PolicyError, match="long"):
        Demonstrations(x, torch.zeros(3), x, torch.zeros(3))
    demos = Demonstrations(x, torch.tensor([0, 1, 4]), x, torch.zeros(3))
    with pytest.raises(ParameterError, match="network takes 4 inputs and 3 actions"):
        behaviour_cloning(QFunction([4], [3], hidden=4), demos, ImitationSettings(steps=1))
    with pytest.raises(ParameterError, match="discount"):
        ImitationSettings(discount=1.0)
    with pytest.raises(ParameterError, match="chi2"):
        ImitationSettings(chi2=0.0)


def test_example_runs_quick():
    path = pathlib.Path(__file__).parents[2] / "examples" / "inverse_preferences.py"
    spec = importlib.util.spec_from_file_location("inverse_preferences", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(["--quick"])
    assert min(results["inverse"][3]) > 0.9
    assert set(results["imitation"][3, 0]) == {"expert", "cloning", "inverse soft-Q"}
