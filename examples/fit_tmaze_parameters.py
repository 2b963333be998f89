"""Parameter recovery: simulate T-maze agents with known precision and preference strength, fit both back.

    python examples/fit_tmaze_parameters.py               # 40 agents (the full study)
    python examples/fit_tmaze_parameters.py --agents 6 --trials 20 --steps 100

Each agent has its own policy precision gamma (uniform on [1, 16]) and preference strength r (uniform on
[1, 6]: C[reward] = [0, r, -r] for no reward, reward, loss). All agents run together as one batch of
``aif_deep`` agents, with stochastic action selection (a policy is drawn from q(pi); alpha = 1), for several
trials of a few steps in ``aif.envs.TMaze``. Then ``aif_deep.fit`` estimates gamma and C[1] of every agent
from its observations and actions alone (maximum likelihood, all agents in one batch), and the script prints
the correlation between true and fitted values. The fitted strength is (C[1][1] - C[1][2]) / 2, which does
not depend on the constant that the log-softmax of C leaves free.
"""

import argparse
import time

import numpy as np
import torch

import aif
import aif_deep
from aif.envs import TMaze
from aif_deep.agent import Agent, rollout


def simulate(rng, gen, num_agents, trials, steps, alpha, horizon, reward_prob=0.98):
    gamma = rng.uniform(1, 16, num_agents)
    strength = rng.uniform(1, 6, num_agents)
    env = TMaze(reward_prob)
    models = [env.generative_model(reward_preference=r, loss_preference=-r) for r in strength]
    model = aif_deep.TabularModel.from_aif(models, device="cpu")
    agent = Agent(model, policy_horizon=horizon, gamma=torch.tensor(gamma), alpha=alpha,
                  selection=aif.Selection("stochastic", "full"), rng=gen)
    observations, actions = [], []
    for k in range(trials):
        run = rollout(agent, [TMaze(reward_prob) for _ in range(num_agents)], steps, seed=int(rng.integers(2**31 - 1)))
        observations.append(run.observations)
        actions.append(run.actions)
    # (N, K, T + 1, M) and (N, K, T, F)
    return gamma, strength, TabularModel_start(models[0]), np.stack(observations, 1), np.stack(actions, 1)


def TabularModel_start(model):
    """The fit's starting point: the T-maze model with neutral preferences C[1] = [0, 1, -1]."""
    C = [c.copy() for c in model.C]
    C[1] = np.array([0.0, 1.0, -1.0])
    return aif_deep.TabularModel.from_aif(model.replace(C=C), device="cpu")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--trials", type=int, default=40, help="trials per agent")
    parser.add_argument("--steps", type=int, default=3, help="actions per trial")
    parser.add_argument("--fit-steps", type=int, default=300, help="Adam steps")
    parser.add_argument("--alpha", type=float, default=1.0, help="action precision of the simulated agents")
    parser.add_argument("--horizon", type=int, default=1)
    parser.add_argument("--reward-prob", type=float, default=0.98)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tensors of a few hundred numbers: threads cost more than they bring
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    start = time.perf_counter()
    gamma, strength, start_model, obs, act = simulate(rng, gen, args.agents, args.trials, args.steps, args.alpha,
                                                      args.horizon, args.reward_prob)
    t_sim = time.perf_counter() - start
    start = time.perf_counter()
    shape = torch.tensor([0.0, 1.0, -1.0])  # C[1] = strength * [0, 1, -1]
    with_strength = lambda r, m: m.replace(C=[m.C[0], r[:, None] * shape, m.C[2]])  # noqa: E731
    result = aif_deep.fit(start_model, obs, act, params=("gamma",), policy_horizon=args.horizon,
                          gamma=4.0, alpha=args.alpha, custom={"strength": (torch.full((args.agents,), 2.0), with_strength)},
                          steps=args.fit_steps, lr=args.lr, progress=False)
    t_fit = time.perf_counter() - start
    gamma_hat = result.gamma.numpy()
    strength_hat = result.custom["strength"].numpy()

    print(f"{args.agents} agents x {args.trials} trials x {args.steps} steps; simulated in {t_sim:.1f} s, "
          f"fitted in {t_fit:.1f} s ({args.fit_steps} Adam steps)")
    print(" agent | gamma true  fitted | strength true  fitted")
    for i in range(args.agents):
        print(f" {i:5d} | {gamma[i]:10.2f} {gamma_hat[i]:7.2f} | {strength[i]:13.2f} {strength_hat[i]:7.2f}")
    r_gamma = np.corrcoef(gamma, gamma_hat)[0, 1]
    r_strength = np.corrcoef(strength, strength_hat)[0, 1]
    print(f"correlation true vs fitted: gamma {r_gamma:.3f}, preference strength {r_strength:.3f}")
    return r_gamma, r_strength


if __name__ == "__main__":
    main()
