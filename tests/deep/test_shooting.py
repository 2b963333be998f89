"""aif_deep.shooting: the EFE of an action sequence through the learned model equals a per-step hand computation,
the cross-entropy planner's plan equals the enumeration of all sequences where it can draw them all, it goes to a
known end with w = 0 and toward the members' disagreement with w > 0, persistent draws find long runs of one
action and a warm start scores the previous plan's best sequence again, the model learns from its buffer (the ends
oversampled), bad settings are refused, and the MountainCar example runs the planner with its quick settings."""

import dataclasses
import importlib.util
import itertools
import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gymnasium")

from aif.errors import ParameterError, PolicyError, StrategyError  # noqa: E402
from aif_deep.online import Ensemble, EnsembleInfoGain, EpistemicCap, RewardRisk, StateVectorModel  # noqa: E402
from aif_deep.shooting import (  # noqa: E402
    CrossEntropyShooting,
    ModelLearning,
    ModelRun,
    RewardModel,
    RewardStateModel,
    sequence_efe,
)

torch.set_num_threads(1)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def _random_model(D=2, K=3, seed=0):
    return RewardStateModel(D, K, transition=Ensemble(D, K, 4, 16, seed), outcome=RewardModel(D, K, 16, seed + 1))


def _line_model(K=2, disagree=0.0):
    """A hand-made model on a line: action 1 moves x[0] by +0.1, action 0 by -0.1 (every member); the reward is -1
    and the episode ends (logit 40 (x'[0] - 0.5)) past 0.5. ``disagree``: the members' predictions for action 1
    spread by this much (for action 0 they agree)."""
    D, H = 1, 4
    ens = Ensemble(D, K, 3, H, 0)
    with torch.no_grad():
        for w in (*ens.weights, *ens.biases):
            w.zero_()
        ens.weights[0][:, 1, 0] = 1.0  # one-hot a = 0 -> hidden 0
        ens.weights[0][:, 2, 1] = 1.0  # one-hot a = 1 -> hidden 1 (ELU(1) = 1)
        ens.weights[1][:, 0, 0] = ens.weights[1][:, 1, 1] = 1.0
        ens.weights[2][:, 0, 0] = -0.1
        ens.weights[2][:, 1, 0] = 0.1 + disagree * torch.tensor([-1.0, 0.0, 1.0])
    out = RewardModel(D, K, 4, 0)
    with torch.no_grad():
        for m in out.net:
            if isinstance(m, torch.nn.Linear):
                m.weight.zero_()
                m.bias.zero_()
        first, second, last = out.net[0], out.net[2], out.net[4]
        first.weight[0, D + K] = 1.0  # x'[0] ...
        first.bias[0] = 10.0  # ... + 10 > 0: ELU is the identity
        second.weight[0, 0] = 1.0
        last.bias[0] = -1.0  # reward -1
        last.weight[1, 0], last.bias[1] = 40.0, -40.0 * 10.5  # logit 40 (x'[0] - 0.5)
    return RewardStateModel(D, K, transition=ens, outcome=out)


def _hand_efe(model, x, seq, w, noise_sd, cap=None, discount=1.0):
    """One sequence, step by step, each member's prediction separately: the module docstring's equation."""
    ens, out = model.transition, model.outcome
    G, alive, x = 0.0, 1.0, x.clone()[None]
    with torch.no_grad():
        for t, a in enumerate(seq):
            a_t = torch.tensor([a])
            preds = torch.stack([ens(x, a_t)[k] for k in range(ens.weights[0].shape[0])])  # (K, 1, D)
            var = ((preds - preds.mean(0)) ** 2).mean(0)[0]
            ig = 0.5 * float(torch.log(1 + var / noise_sd ** 2).sum())
            value = w * ig if cap is None else min(w * ig, cap)
            x1 = x + preds.mean(0)
            r, logit = out(x, a_t, x1)
            G += discount ** t * alive * (-float(r[0]) - value)
            alive *= 1 - float(torch.sigmoid(logit[0]))
            x = x1
    return G


@pytest.mark.parametrize("w, cap, discount", [(0.0, None, 1.0), (0.7, None, 0.9), (2.0, EpistemicCap(0.05), 1.0)])
def test_sequence_efe_equals_a_step_by_step_hand_computation(w, cap, discount):
    model = _random_model()
    x = torch.tensor([0.2, -0.4])
    seqs = torch.tensor([[0, 1, 2, 2], [2, 2, 0, 1], [1, 1, 1, 1]])
    terms = (RewardRisk(1.0),) + ((EnsembleInfoGain(w, noise_sd=0.05),) if w else ())
    G, parts = sequence_efe(model, x, seqs, terms, () if cap is None else (cap,), discount)
    want = [_hand_efe(model, x, s.tolist(), w, 0.05, None if cap is None else cap.cap, discount) for s in seqs]
    np.testing.assert_allclose(G.numpy(), want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose((parts["risk"] - parts["info_gain"]).numpy(), G.numpy(), atol=1e-5)
    assert (parts["info_gain"] >= 0).all() and (w > 0) == bool((parts["info_gain"] > 0).all())


def test_plan_equals_the_best_of_all_sequences_when_every_sequence_is_drawn():
    model = _random_model(seed=3)
    x, K, H = torch.tensor([0.1, 0.3]), 3, 3
    terms = (RewardRisk(1.0), EnsembleInfoGain(0.5, noise_sd=0.05))
    plan = CrossEntropyShooting(horizon=H, samples=2000, elites=10, iterations=0, efe_terms=terms).plan(
        model, [x], np.random.default_rng(0))
    every = torch.tensor(list(itertools.product(range(K), repeat=H)))  # (27, 3)
    G, _ = sequence_efe(model, x, every, terms)
    want = [G[every[:, 0] == k].min().item() for k in range(K)]
    np.testing.assert_allclose(plan.G, want, rtol=1e-5)
    assert plan.policies.shape == (K, 1, 1) and set(plan.terms) == {"risk", "info_gain"}


def test_the_planner_goes_to_a_known_end_and_cem_refines():
    model = _line_model()
    plan = CrossEntropyShooting(horizon=6, samples=64, elites=8, iterations=3, efe_terms=(RewardRisk(1.0),)).plan(
        model, [torch.tensor([0.25])], np.random.default_rng(1))
    assert plan.G.argmin() == 1  # right, to the end past 0.5 in 3 steps: G about 3 against 6
    assert plan.G[1] == pytest.approx(3.0, abs=0.05) and plan.G[0] > plan.G[1] + 1.0


def _far_end(**settings):
    """A planner on the line model with a third action that stands still, 13 steps of action 1 from its end."""
    model, x = _line_model(K=3), [torch.tensor([-0.75])]  # action 2 -> hidden 2 (no weight): x unchanged
    return model, x, CrossEntropyShooting(horizon=14, efe_terms=(RewardRisk(1.0),), **settings)


def test_persistence_draws_the_long_runs_of_one_action_that_independent_draws_miss():
    model, x, _ = _far_end()
    for persistence, want in ((0.0, 14.0), (0.95, 13.0)):  # 14: no drawn sequence ends; 13: thirteen 1s, then the end
        _, _, planner = _far_end(samples=30, elites=3, iterations=0, persistence=persistence)
        plan = planner.plan(model, x, np.random.default_rng(0))
        assert plan.G[1] == pytest.approx(want, abs=0.05)  # independent: one in 3^13 draws; held: one in ~2


def test_warm_start_scores_the_previous_best_sequence_again_one_step_later():
    model, x, finder = _far_end(samples=30, elites=3, iterations=0, persistence=0.95, warm_start=0.5)
    assert finder.memory.sequence is None
    finder.plan(model, x, np.random.default_rng(0))
    assert finder.memory.p.shape == (14, 3) and finder.memory.sequence.tolist() == [1] * 14  # the run that ends
    # four draws (three of them the forced first actions): alone they do not find the end from one step on
    _, _, follower = _far_end(samples=4, elites=1, iterations=0, warm_start=0.5)
    x1, rng = [torch.tensor([-0.65])], np.random.default_rng(0)
    assert follower.plan(model, x1, rng).G[1] == pytest.approx(14.0, abs=0.05)
    follower.memory.p, follower.memory.sequence = finder.memory.p, finder.memory.sequence
    plan = follower.plan(model, x1, rng)
    assert plan.G[1] == pytest.approx(12.0, abs=0.05)  # the carried sequence, shifted: twelve 1s to the end
    np.testing.assert_allclose(follower.memory.p.sum(-1), 1.0)
    follower.reset()
    assert follower.memory.p is None and follower.memory.sequence is None
    assert dataclasses.replace(finder, samples=31).memory is not finder.memory  # each planner its own memory
    stateless = CrossEntropyShooting(horizon=3, samples=8, elites=2, efe_terms=(RewardRisk(1.0),))
    stateless.plan(model, x, np.random.default_rng(0))
    assert stateless.memory.p is None  # warm_start = 0 keeps nothing


def test_bounds_keep_the_predicted_path_inside_the_box():
    free, boxed = _line_model(), _line_model()
    boxed = RewardStateModel(1, 2, transition=boxed.transition, outcome=boxed.outcome, bounds=(-0.2, 0.2))
    seq, x = torch.tensor([[1, 1, 1, 1, 1, 1]]), torch.tensor([0.15])
    terms = (RewardRisk(1.0),)
    assert sequence_efe(free, x, seq, terms)[0].item() == pytest.approx(4.0, abs=0.05)  # ends past 0.5
    assert sequence_efe(boxed, x, seq, terms)[0].item() == pytest.approx(6.0, abs=1e-3)  # held at 0.2: never ends
    np.testing.assert_allclose(boxed.clip(torch.tensor([[-1.0], [0.1], [2.0]])).numpy(), [[-0.2], [0.1], [0.2]])


def test_the_information_gain_draws_the_planner_to_where_the_members_disagree():
    model = _line_model(disagree=0.05)  # action 1's outcome is uncertain, action 0's known; no end within reach
    x = [torch.tensor([-2.0])]
    informed = CrossEntropyShooting(horizon=2, samples=32, elites=4, iterations=1,
                                    efe_terms=(RewardRisk(1.0), EnsembleInfoGain(1.0, noise_sd=0.01)))
    plan = informed.plan(model, x, np.random.default_rng(0))
    ig = 0.5 * np.log(1 + np.var([-0.05, 0.0, 0.05]) / 0.01 ** 2)  # one step of action 1
    # action 1 first gains twice; action 0 first at best once (its continuation 1)
    np.testing.assert_allclose(plan.terms["info_gain"], [ig, 2 * ig], rtol=1e-4)
    assert plan.G.argmin() == 1
    blind = CrossEntropyShooting(horizon=2, samples=32, elites=4, iterations=1, efe_terms=(RewardRisk(1.0),))
    G0 = blind.plan(model, x, np.random.default_rng(0)).G
    np.testing.assert_allclose(G0, [2.0, 2.0], atol=1e-4)  # w = 0: nothing tells the actions apart


def test_model_learning_fits_the_transitions_and_the_rare_end():
    model = _random_model(D=2, K=2, seed=5)
    rng = np.random.default_rng(0)
    run = ModelRun(ModelLearning(lr=3e-3, learning_starts=32, updates=2), model, rng)
    x = torch.zeros(2)
    for t in range(600):  # x' = x + 0.1 (2a - 1) on the first feature; the episode ends past 0.5
        a = int(rng.integers(2))
        x1 = x + torch.tensor([0.1 * (2 * a - 1), 0.0])
        end = bool(x1[0] > 0.5)
        run.observe(x, a, -1.0, x1, end)
        x = torch.zeros(2) if end or abs(float(x1[0])) > 0.55 else x1
    assert run.ends and all(run.terminated[i] == 1 for i in run.ends)
    with torch.no_grad():
        xs, acts = torch.tensor([[0.0, 0.0], [0.2, 0.0], [0.45, 0.0]]), torch.tensor([1, 0, 1])
        err = (model.transition(xs, acts).mean(0) - torch.tensor([[0.1, 0.0], [-0.1, 0.0], [0.1, 0.0]])).abs()
        r, logit = model.outcome(xs, acts, xs + torch.tensor([[0.1, 0.0], [-0.1, 0.0], [0.1, 0.0]]))
    assert err.max() < 0.03 and (r + 1).abs().max() < 0.1
    p_end = torch.sigmoid(logit)
    assert p_end[2] > 0.5 > p_end[0] and p_end[1] < 0.5  # the end is one transition in ~10, oversampled to 1 in 8


@pytest.mark.parametrize("make, error, match", [
    (lambda: CrossEntropyShooting(samples=4, elites=8), PolicyError, "elites"),
    (lambda: CrossEntropyShooting(smoothing=1.0), ParameterError, "smoothing"),
    (lambda: CrossEntropyShooting(persistence=1.0), ParameterError, "persistence"),
    (lambda: CrossEntropyShooting(warm_start=-0.1), ParameterError, "warm_start"),
    (lambda: CrossEntropyShooting(horizon=0), ParameterError, "horizon"),
    (lambda: CrossEntropyShooting(efe_terms=(EnsembleInfoGain(1.0),)), StrategyError, "RewardRisk"),
    (lambda: CrossEntropyShooting(tricks=(0.5,)), StrategyError, "OnlineTrick"),
    (lambda: RewardStateModel(2, 3, transition=Ensemble(2, 3)), StrategyError, "outcome"),
    (lambda: RewardStateModel(2, 3, transition=Ensemble(2, 3), outcome=RewardModel(2, 3), bounds=(1.0, -1.0)),
     ParameterError, "low < high"),
    (lambda: CrossEntropyShooting().plan(StateVectorModel(2, 3), [torch.zeros(2)]), StrategyError,
     "RewardStateModel"),
    (lambda: CrossEntropyShooting(samples=2, elites=1).plan(_random_model(), [torch.zeros(2)]), PolicyError,
     "first actions"),
    (lambda: ModelLearning(end_fraction=1.5), ParameterError, "end_fraction"),
    (lambda: ModelRun(ModelLearning(), StateVectorModel(2, 3), np.random.default_rng(0)), StrategyError,
     "RewardStateModel"),
])
def test_bad_settings_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def _mountaincar():
    spec = importlib.util.spec_from_file_location("mountaincar_shooting", ROOT / "examples" / "mountaincar.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_mountaincar_defaults_are_the_settings_of_the_recorded_run():
    """benchmarks/results/mountaincar.md's top section was run with the example's defaults: these."""
    s = _mountaincar().PlannerSettings()
    assert (s.epistemic_weight, s.noise_sd, s.ensemble_size, s.model_hidden, s.repeat) == (1.0, 0.01, 5, 64, 5)
    p = s.planner
    assert (p.horizon, p.samples, p.elites, p.iterations, p.smoothing) == (25, 128, 16, 3, 0.1)
    assert (p.persistence, p.warm_start, p.discount, p.tricks) == (0.8, 0.5, 1.0, ())
    m = s.learning
    assert (m.learning_starts, m.updates, m.train_every, m.batch_size, m.lr, m.end_fraction) == (40, 32, 1, 64,
                                                                                                  1e-3, 0.125)
    assert (s.selection.gamma, s.selection.gamma_start) == (10.0, None)
    text = (ROOT / "benchmarks" / "results" / "mountaincar.md").read_text()
    assert "persistence 0.8, warm start 0.5" in text and "32 Adam steps per decision" in text


def test_mountaincar_example_runs_the_planner_quick(capsys):
    results = _mountaincar().main(["--quick", "--agent", "shooting", "--no-progress"])
    text = capsys.readouterr().out
    assert "flag first reached" in text and "s per episode" in text
    assert [r["name"] for r in results] == ["active inference (CEM)", "CEM without information gain", "DQN"]
    assert all(len(r["returns"]) == 2 and (r["returns"] < 0).all() and r["steps"] > 0 for r in results)


def test_mountaincar_horizon_option_reaches_the_planner(monkeypatch, capsys):
    mc = _mountaincar()
    seen = []

    def fake(name, s, seed, episodes, *args):
        seen.append((name, s.planner.horizon, s.planner.samples, s.epistemic_weight))
        return dict(name=name, seed=seed, returns=np.full(episodes, -200.0), flag=None, solved=None, reached=0,
                    steps=200 * episodes, seconds=1.0)

    monkeypatch.setattr(mc, "run_planner", fake)
    mc.main(["--agent", "shooting", "--only", "active inference (CEM)", "CEM without information gain",
             "--horizon", "7", "--seeds", "1", "--episodes", "2", "--no-progress"])
    assert seen == [("active inference (CEM)", 7, 128, 1.0), ("CEM without information gain", 7, 128, 0.0)]
    seen.clear()
    mc.main(["--agent", "shooting", "--only", "CEM without information gain", "--seeds", "1", "--episodes", "2",
             "--no-progress"])
    assert seen == [("CEM without information gain", 25, 128, 0.0)]  # the default is the settings'
    capsys.readouterr()
