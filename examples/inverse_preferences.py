"""Inverse active inference and imitation on grid worlds: recover C from demonstrations; clone and inverse-soft-Q an
expert.

    python examples/inverse_preferences.py                 # 5x5 and 7x7 grids, seeds 0-4 (inverse), 0-2 (imitation)
    python examples/inverse_preferences.py --quick         # small settings, as in the tests

Part 1, inverse (``aif.planning.fit_preferences``). Each cell of an n x n grid gets a random log-preference
``C ~ N(0, 1)`` (the location modality, A the identity). The demonstrator re-plans one step ahead before every
action with the soft-optimal policy ``pi(a | s) ∝ exp(E[C(s') | s, a])``: exactly ``aif.Agent(model,
planner=SoftQPlanner(horizon=1), gamma=1, alpha=1, selection=Selection("stochastic"))``, whose q(pi) is that
policy; its trajectories are drawn with ``sample_demonstrations`` (same distribution, faster). From 50
demonstrations of ``--demo-steps`` steps, each from a uniformly drawn cell, C is recovered by maximum-entropy inverse
RL (``IRLSettings(plan_horizon=1)``, a unit Gaussian prior on C); the figure of merit is the correlation of the
recovered C with the true one over all cells (C is identified up to a constant, which the correlation ignores).

Part 2, imitation (``aif_deep.imitation``). The grid's goal is its bottom-right corner (the episode ends there);
the expert is ``aif.Agent`` with ``SoftQPlanner(horizon=2 (n - 1))`` at unit precision, sampling its actions, on
the model with ``C = 4`` at the goal. 50 episodes of the expert from uniformly drawn cells are the demonstrations
(``Demonstrations.from_trajectories``). Behaviour cloning and IQ-Learn each fit a ``QFunction`` on the beliefs
(no reward is given to either); the learned policy ``softmax(-G(qs, .))`` then drives an ``aif.Agent`` through
``aif.rollout``'s ``policy_search`` hook (stochastic selection at unit precision, as the expert). The figure of merit
is each learner's goal-reach rate (within 3 (n - 1) steps, over the same start cells) divided by the expert's.

The recorded results of the default command: benchmarks/results/inverse_preferences.md.
"""

import argparse
import time

import numpy as np
import torch

import aif
from aif.planning import (
    IRLSettings,
    SoftQPlanner,
    fit_preferences,
    joint_transitions,
    maxent_policy,
    outcome_features,
    sample_demonstrations,
)
from aif_deep import QFunction
from aif_deep.imitation import Demonstrations, ImitationSettings, behaviour_cloning, inverse_soft_q


def inverse(size, seed, demos, demo_steps):
    """Correlation of the recovered C with a random true C on a size x size grid, and the fit's wall time."""
    rng = np.random.default_rng(seed)
    model = aif.envs.GridWorld((size, size)).generative_model()
    S = size * size
    C_true = rng.normal(size=S)
    B, phi = joint_transitions(model), outcome_features(model)
    pi = maxent_policy(B, phi, C_true, 1).policy  # (1, S, U): the one-step soft-optimal policy
    states, actions = sample_demonstrations(B, np.broadcast_to(pi, (demo_steps, *pi.shape[1:])), np.full(S, 1 / S),
                                            demos, rng)
    start = time.perf_counter()
    fit = fit_preferences(model, states, actions, IRLSettings(plan_horizon=1))
    return float(np.corrcoef(fit.C[0], C_true)[0, 1]), time.perf_counter() - start, fit.converged


def episodes(model, env, starts, steps, rng, planner=None, net=None):
    """One aif.rollout per start cell: the expert's (``planner``) or a learned policy's (``net``); reached flags."""
    S = model.num_states[0]

    def learned(agent, qs, _rng):  # q(a | qs) = softmax(-G(qs, .)) from the network, in place of planning
        with torch.no_grad():
            q = torch.softmax(-net(torch.as_tensor(np.concatenate(qs))) / net.temperature, -1)
        return q.double().numpy(), None, {}

    out = []
    for s0 in starts:
        agent = aif.Agent(model, planner=planner, gamma=1.0, alpha=1.0, selection=aif.Selection("stochastic"),
                          rng=np.random.default_rng(rng.integers(1 << 30)))
        traj = aif.rollout(agent, env, steps, seed=int(rng.integers(1 << 30)), options={"D": [np.eye(S)[s0]]},
                           policy_search=None if net is None else learned)
        out.append(traj)
    return out


def imitation(size, seed, demos, evaluations, train_steps, hidden):
    """Goal-reach rates of the expert, behaviour cloning and inverse soft-Q on a size x size grid."""
    rng = np.random.default_rng(seed)
    env = aif.envs.GridWorld((size, size))
    model = env.generative_model(preference="goal", goal_preference=4.0, start="uniform")
    S, goal, steps = size * size, env.index(env.goals[0]), 3 * (size - 1)
    cells = np.array([s for s in range(S) if s != goal])
    expert = SoftQPlanner(horizon=2 * (size - 1))
    shown = episodes(model, env, rng.choice(cells, demos), steps, rng, planner=expert)
    data = Demonstrations.from_trajectories(shown, model.num_controls)
    tests = rng.choice(cells, evaluations)
    rates = {"expert": np.mean([t.terminated for t in episodes(model, env, tests, steps, rng, planner=expert)])}
    settings = ImitationSettings(steps=train_steps, batch_size=128, lr=1e-3, seed=seed)
    for name, fit in (("cloning", behaviour_cloning), ("inverse soft-Q", inverse_soft_q)):
        net = QFunction([S], [5], hidden=hidden, seed=seed)
        fit(net, data, settings)
        rates[name] = np.mean([t.terminated for t in episodes(model, env, tests, steps, rng, net=net)])
    return rates, len(data.actions)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small settings (the tests run this)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 7])
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the inverse part")
    parser.add_argument("--imitation-seeds", type=int, default=3)
    parser.add_argument("--demos", type=int, default=50)
    parser.add_argument("--demo-steps", type=int, default=100)
    parser.add_argument("--evaluations", type=int, default=200, help="evaluation episodes per learner")
    parser.add_argument("--train-steps", type=int, default=2000)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.seeds, args.imitation_seeds = [3], 1, 1
        args.demos, args.demo_steps, args.evaluations, args.train_steps = 12, 100, 6, 30
    torch.set_num_threads(1)
    results = {"inverse": {}, "imitation": {}}
    print("inverse: correlation of the recovered C with the true C")
    for size in args.sizes:
        runs = [inverse(size, seed, args.demos, args.demo_steps) for seed in range(args.seeds)]
        r = [x[0] for x in runs]
        results["inverse"][size] = r
        print(f"  {size}x{size}: r = {', '.join(f'{x:.3f}' for x in r)} (min {min(r):.3f}); fit "
              f"{np.mean([x[1] for x in runs]):.2f} s each; converged {all(x[2] for x in runs)}")
    print("imitation: goal-reach rate (and as a fraction of the expert's)")
    for size in args.sizes:
        for seed in range(args.imitation_seeds):
            rates, n = imitation(size, seed, args.demos, args.evaluations, args.train_steps, 64)
            results["imitation"][size, seed] = rates
            print(f"  {size}x{size} seed {seed} ({n} transitions): " + ", ".join(
                f"{k} {v:.3f} ({v / max(rates['expert'], 1e-12):.3f})" for k, v in rates.items()))
    return results


if __name__ == "__main__":
    main()
