"""Goal-conditioned EFE Q-function Q(b, a, g) with hindsight relabelling, on a grid world.

    python examples/goal_conditioned.py            # 5x5 grid, 3 seeds (benchmarks/results/goal_conditioned.md)
    python examples/goal_conditioned.py --quick    # one seed, fewer episodes and steps (the tests run this)

Data: random-walk episodes (uniform actions, ``--length`` steps, from uniformly drawn start cells) in
``aif.envs.GridWorld`` with the goal switched off. Each episode is given a goal drawn from the training goals: every
cell but the held-out ones (``HELD_OUT``: the four corners and the centre), which are never an episode's goal.

Training (``aif_deep.goal_q``): temporal differences on the EFE to go toward the goal, the risk
``KL[q(s') || p_g]`` per step until the goal is reached, with and without HER's "future" relabelling
(``Future(0.8)``). The transitions and the network are the same; only the goals the TD targets are for differ.

Agents: ``aif.Agent(model, planner=GoalQPlanner(GoalValue(qf, g)))`` (one-step policies scored by Q(b, ., g),
deterministic selection) from every other cell, in a grid world whose one goal is g, for at most ``2 (n - 1)``
steps (the episode ends at the goal); and the same Q-function as a terminal value of enumerated two-step policies,
``efe_terms=(Risk(), aif.TerminalValue(GoalValue(qf, g), discount))`` with ``C = ln p_g`` (the risk of each
step to the goal distribution, then the learned EFE to go from the horizon). It prints the fraction of (start,
goal) pairs reached, for the held-out goals and for the training goals.
"""

import argparse
import time

import numpy as np
import torch

import aif
from aif.efe import Risk
from aif_deep import QFunction, ReplayBuffer, TabularModel
from aif_deep.goal_q import Future, GoalQPlanner, GoalQSettings, GoalValue, goal_transitions, train_goal_q


def held_out_cells(n):
    """The four corners and the centre of an n x n grid: goals no training episode is given."""
    return [(0, 0), (0, n - 1), (n - 1, 0), (n - 1, n - 1), (n // 2, n // 2)]


def random_walks(env, episodes, length, rng):
    """``episodes`` uniform random walks of ``length`` steps from uniformly drawn start cells, in a ReplayBuffer."""
    buffer, S = ReplayBuffer(), env.shape[0] * env.shape[1]
    for _ in range(episodes):
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)), options={"D": [np.eye(S)[rng.integers(S)]]})
        observations, actions = [obs], []
        for _ in range(length):
            a = int(rng.integers(env.action_space.n))
            obs, *_ = env.step(a)
            observations.append(obs)
            actions.append([a])
        buffer.add(list(np.stack(observations).T), np.array(actions))
    return buffer


def success(qf, n, goals, discount, smoothing, terminal_value=False):
    """The fraction of (start, goal) pairs from which the agent reaches the goal in 2 (n - 1) steps."""
    reached, total = 0, 0
    for cell in goals:
        env = aif.envs.GridWorld((n, n), goals=[cell])
        g = env.index(cell)
        p_g = np.full(n * n, smoothing / (n * n))
        p_g[g] += 1.0 - smoothing
        # C = ln p_g: with the identity likelihood, Risk is the Q-function's own step cost KL[q(s') || p_g]
        model, value = env.generative_model(start="uniform").replace(C=[np.log(p_g)]), GoalValue(qf, g)
        settings = (dict(policy_horizon=2, efe_terms=(Risk(), aif.TerminalValue(value, discount)))
                    if terminal_value else dict(planner=GoalQPlanner(value)))
        for start in range(n * n):
            if start == g:
                continue
            agent = aif.Agent(model, **settings)
            run = aif.rollout(agent, env, 2 * (n - 1), seed=0, options={"D": [np.eye(n * n)[start]]})
            reached += bool(run.terminated)
            total += 1
    return reached / total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 4x4 grid, one seed, 200 episodes, 800 steps")
    parser.add_argument("--size", type=int, default=5, help="the grid is size x size")
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--length", type=int, default=12, help="steps of each random walk")
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps of each training")
    parser.add_argument("--hidden", type=int, default=128, help="width of the Q-function's hidden layers")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.episodes, args.length, args.steps, args.hidden, args.seeds = 4, 200, 10, 800, 64, 1
    n, discount, smoothing = args.size, 0.9, 0.1
    held_out = held_out_cells(n)
    env = aif.envs.GridWorld((n, n), terminate_at_goal=False)
    # The walks start anywhere: the model's D is uniform (the filtered beliefs start from it).
    model = TabularModel.from_aif(env.generative_model().replace(D=[np.full(n * n, 1.0 / (n * n))]), device="cpu")
    training_goals = [env.index((r, c)) for r in range(n) for c in range(n) if (r, c) not in held_out]
    some_training = [env.cell(g) for g in training_goals[::4]]
    results = {}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        buffer = random_walks(env, args.episodes, args.length, rng)
        data = goal_transitions(model, buffer, rng.choice(training_goals, size=len(buffer)), smoothing)
        for name, relabelling in (("HER future", Future(0.8)), ("no relabelling", None)):
            start = time.perf_counter()
            qf = QFunction([n * n, n * n], [5], hidden=args.hidden, seed=seed)
            train_goal_q(qf, data, GoalQSettings(steps=args.steps, batch_size=64, lr=1e-2, discount=discount,
                                                 relabelling=relabelling, seed=seed))
            train_s = time.perf_counter() - start
            row = {"held-out": success(qf, n, held_out, discount, smoothing),
                   "training": success(qf, n, some_training, discount, smoothing),
                   "held-out, terminal value": success(qf, n, held_out, discount, smoothing, terminal_value=True),
                   "train s": train_s}
            results[seed, name] = row
            print(f"seed {seed} {name:>15}: goals reached, held out {row['held-out']:.2f}, training "
                  f"{row['training']:.2f}, held out with TerminalValue(H=2) {row['held-out, terminal value']:.2f}; "
                  f"{len(data)} transitions, trained in {train_s:.1f} s")
    return results


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
