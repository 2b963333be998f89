"""Trace one CartPole-v1 run of the actor-critic (``examples/cartpole.py --agent actor-critic``): every ``--every``
episodes, the mean return of those episodes and of the last 100, the environment steps, the wall time, the
entropy weight alpha and the actor's mean entropy H[pi_psi(. | x)] over its last replayed batch (nats).

    python benchmarks/cartpole_actor_critic_trace.py --seed 0 --episodes 200 --alpha 0.05 --target-entropy 0.2

The agent is the example's ``build_agent`` with its ``actor_critic_settings`` (twin G heads and 3-step TD targets by
default: ``--no-twin --n-step 1`` gives the critic of the earlier runs; the epistemic cap 0.5, as the example's);
the run stops when the 100-episode mean return reaches 475. Results: benchmarks/results/cartpole.md.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from dataclasses import replace

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
import cartpole as cp  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--alpha", type=float, default=cp.Settings.alpha)
    p.add_argument("--target-entropy", type=float, default=None, help="learn alpha towards it (default: fixed)")
    p.add_argument("--alpha-lr", type=float, default=cp.Settings.alpha_lr)
    p.add_argument("--drift", type=float, default=0.0)
    p.add_argument("--epistemic-weight", type=float, default=cp.Settings.epistemic_weight,
                   help="weight of the ensemble's information gain in the critic's one-step EFE (0: none)")
    p.add_argument("--batch-size", type=int, default=cp.Settings.td.batch_size, help="transitions per update")
    p.add_argument("--train-every", type=int, default=cp.Settings.td.train_every,
                   help="environment steps per update of the critic and the actor (the update-to-data ratio's inverse)")
    ac_td = cp.actor_critic_settings().td  # the example's actor-critic critic: twin heads, 3-step targets
    p.add_argument("--n-step", type=int, default=ac_td.n_step, help="steps summed in the critic's TD target")
    p.add_argument("--twin", action=argparse.BooleanOptionalAction, default=ac_td.twin,
                   help="two G heads, bootstrapped with the pessimistic max of their targets (--no-twin: one)")
    p.add_argument("--lr", type=float, default=cp.Settings.td.lr, help="the critic's learning rate")
    p.add_argument("--lr-end", type=float, default=cp.Settings.td.lr_end,
                   help="the critic's learning rate after --lr-decay-steps updates (linear schedule)")
    p.add_argument("--lr-decay-steps", type=int, default=cp.Settings.td.lr_decay_steps)
    p.add_argument("--tau", type=float, default=cp.Settings.td.tau, help="Polyak rate of the critic's target")
    p.add_argument("--discount", type=float, default=cp.Settings.td.discount)
    p.add_argument("--actor-lr", type=float, default=cp.Settings.actor_lr)
    p.add_argument("--reward-preference", type=float, default=cp.Settings.reward_preference,
                   help="c in ln p~(r) = c r (the scale of G)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    td = replace(cp.Settings.td, train_every=args.train_every, batch_size=args.batch_size, n_step=args.n_step,
                 twin=args.twin, lr=args.lr, lr_end=args.lr_end, lr_decay_steps=args.lr_decay_steps, tau=args.tau,
                 discount=args.discount)
    settings = cp.Settings(actor_critic=True, alpha=args.alpha, target_entropy=args.target_entropy,
                           alpha_lr=args.alpha_lr, drift=args.drift, epistemic_weight=args.epistemic_weight,
                           actor_lr=args.actor_lr, reward_preference=args.reward_preference, td=td)
    agent = cp.build_agent(4, 2, settings, (cp.EpistemicCap(0.5),), args.seed)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    returns, start = [], time.perf_counter()
    for ep in range(args.episodes):
        if ep > 0:
            obs, _ = env.reset()
        agent.reset()
        total, reward, terminated, done = 0.0, None, False, False
        while not done:
            action = int(agent.step(obs, reward=reward, terminated=terminated)[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        agent.infer_states(obs, reward=reward, terminated=terminated)  # the episode's last transition
        returns.append(total)
        mean100 = float(np.mean(returns[-100:]))
        if (ep + 1) % args.every == 0:
            print(f"episode {ep + 1}: mean return of the last {args.every} {np.mean(returns[-args.every:]):.1f}, "
                  f"of the last 100 {mean100:.1f}; {agent.td.steps} steps, {time.perf_counter() - start:.0f} s; "
                  f"alpha {agent.td.alpha:.4f}, H {agent.td.last_entropy:.3f}", flush=True)
        if len(returns) >= 100 and mean100 >= 475:
            print(f"100-episode mean 475 reached at episode {ep + 1}", flush=True)
            break


if __name__ == "__main__":
    main()
