"""MountainCar-v0 (Gymnasium, sparse reward): does the epistemic term of the expected free energy pay off?

The reward is -1 on every step until the car reaches the flag (at most 200 steps), so until it has been reached once
every action has the same risk and only the information gain tells actions apart. Three agents, each an
``aif_deep.Agent`` over ``aif_deep.online``'s strategies with the same networks, optimiser, replay buffer and
budget:

- ``active inference``: G_phi learned by temporal differences on g = risk - w * info_gain, where info_gain is the
  disagreement of an ensemble of learned transition networks (``EnsembleInfoGain``; Tschantz et al. 2020's
  estimator), actions sampled from q(a | x) = softmax(-gamma G_phi(x, .)) (or, with ``--agent actor-critic``,
  from an amortised policy trained against G_phi: ``aif_deep.SoftActorCritic``);
- ``no information gain``: the same agent with w = 0 (no ensemble);
- ``DQN``: w = 0, V = min instead of the soft minimum, epsilon-greedy actions (Mnih et al. on -Q).

Observations are scaled to [-1, 1] (the Agent's ``preprocess``), so that the transition noise ``noise_sd`` is in the
same units for position and velocity.

    python examples/mountaincar.py                          # 5 seeds x 3 agents, 300 episodes at most
    python examples/mountaincar.py --agent actor-critic     # the actor-critic as the active-inference agent
    python examples/mountaincar.py --quick                  # seconds; what the tests run

Prints, per agent and seed, the first episode in which the car reached the flag and the first episode at which the
100-episode mean return reached -110 ("not reached" otherwise), with the medians over seeds (an unreached run
counts as later than any reached one). Recorded results: benchmarks/results/mountaincar.md.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, replace

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import aif_deep
from aif_deep import online
from aif_deep.actor_critic import EntropyWeight, PolicyDrift, SoftActorCritic
from aif_deep.online import EpistemicCap, EpsilonGreedy, Softmax


@dataclass(frozen=True)
class Settings:
    """One agent's settings, each going to one strategy of the Agent ``build_agent`` makes (which checks them).

    Attributes:
        hidden, temperature: width of G_phi's hidden layers and T of its soft minimum (``QFunction``).
        epistemic_weight: w of the information gain (``EnsembleInfoGain``; 0: no ensemble).
        cap: ``EpistemicCap`` in nats per step (``None``: unbounded).
        ensemble_size, model_hidden, noise_sd: the transition ensemble (``Ensemble``) and the likelihood's sigma in
            the scaled observation's units.
        selection: ``Softmax`` or ``EpsilonGreedy`` (the actor-critic samples its policy: ``Softmax(1.0)``).
        td: ``TDLearning`` of G_phi.
        actor_critic: train an amortised policy against G_phi (``SoftActorCritic``) and act from it.
        target_entropy, drift: the actor's ``EntropyWeight`` target (nats) and ``PolicyDrift`` weight (0: none).
    """

    hidden: int = 128
    temperature: float = 0.05
    epistemic_weight: float = 10.0
    cap: float | None = 0.5
    ensemble_size: int = 5
    model_hidden: int = 64
    noise_sd: float = 0.01
    selection: object = Softmax(50.0, gamma_start=None)
    td: online.TDLearning = online.TDLearning(learning_starts=1000, train_every=1)
    actor_critic: bool = False
    target_entropy: float = 0.3
    drift: float = 0.0


def baselines(s: Settings) -> dict:
    """The three agents of the comparison, from the active-inference agent's settings."""
    plain = replace(s, epistemic_weight=0.0, cap=None)
    dqn = replace(plain, actor_critic=False, selection=EpsilonGreedy(decay_steps=20_000),
                  td=replace(s.td, hard_min=True))
    return {"active inference": s, "no information gain": plain, "DQN": dqn}


def build_agent(env: gym.Env, s: Settings, seed: int) -> aif_deep.Agent:
    """The agent as an ``aif_deep.Agent``: ``seed`` seeds G_phi (the ensemble ``seed + 1``, the actor ``seed + 2``),
    the replay draws and the action samples."""
    D, K = env.observation_space.shape[0], int(env.action_space.n)
    low, high = env.observation_space.low, env.observation_space.high
    ensemble = None if s.epistemic_weight == 0 else online.Ensemble(D, K, s.ensemble_size, s.model_hidden, seed + 1)
    terms: tuple = (online.RewardRisk(1.0),)
    if ensemble is not None:
        terms += (online.EnsembleInfoGain(s.epistemic_weight, noise_sd=s.noise_sd),)
    td = replace(s.td, tricks=() if s.cap is None else (EpistemicCap(s.cap),))
    G = aif_deep.QFunction([D], [K], temperature=s.temperature, hidden=s.hidden, seed=seed)
    planner, learning, selection = online.LearnedQ(G), td, s.selection
    if s.actor_critic:  # G is the critic; the planner's QFunction is the actor, sampled at unit precision
        terms_pi = (EntropyWeight(0.05, target=s.target_entropy),) + ((PolicyDrift(s.drift),) if s.drift else ())
        actor = aif_deep.QFunction([D], [K], hidden=s.hidden, seed=seed + 2)
        planner, selection = online.LearnedQ(actor), Softmax(1.0, gamma_start=None)
        learning = SoftActorCritic(G, td=td, policy_terms=terms_pi)
    return aif_deep.Agent(online.StateVectorModel(D, K, transition=ensemble), inference=online.ObservedState(),
                          planner=planner, efe_terms=terms, learning=learning, selection=selection,
                          preprocess=lambda x: (2 * (np.asarray(x) - low) / (high - low) - 1).astype(np.float32),
                          rng=np.random.default_rng(seed))


def run(name: str, s: Settings, seed: int, episodes: int, window: int, solve: float, progress: bool,
        max_steps: int | None = None) -> dict:
    """Train one agent for one seed; the environment is seeded once with ``seed`` (``max_steps``: a shorter time
    limit than the task's 200 steps, for the tests)."""
    env = gym.make("MountainCar-v0", max_episode_steps=max_steps)
    agent = build_agent(env, s, seed)
    start = time.perf_counter()
    returns, flag, solved = [], None, None
    obs, _ = env.reset(seed=seed)
    for ep in tqdm(range(episodes), disable=not progress, desc=f"{name} seed {seed}", leave=False):
        if ep > 0:
            obs, _ = env.reset()
        agent.reset()
        total, reward, terminated, truncated = 0.0, None, False, False
        while not (terminated or truncated):
            action = int(agent.step(obs, reward=reward, terminated=terminated)[0])
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
        agent.infer_states(obs, reward=reward, terminated=terminated)  # the episode's last transition
        returns.append(total)
        if terminated and flag is None:
            flag = ep + 1
        if len(returns) >= window and np.mean(returns[-window:]) >= solve:
            solved = ep + 1
            break
    return dict(name=name, seed=seed, returns=np.array(returns), flag=flag, solved=solved,
                steps=agent.td.steps, seconds=time.perf_counter() - start)


def median_episode(values: list) -> str:
    med = np.median([v if v else np.inf for v in values])
    return f"{med:g}" if np.isfinite(med) else "not reached"


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", choices=["efe-q", "actor-critic"], default="efe-q",
                   help="the active-inference agent: learned G_phi with softmax actions, or an actor-critic on it")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=300, help="at most this many episodes per run")
    p.add_argument("--solve", type=float, default=-110.0, help="window-episode mean return that counts as solved")
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--weight", type=float, default=None, help="epistemic weight w (default: Settings')")
    p.add_argument("--only", nargs="+", default=None, help="run only these agents (names as printed)")
    p.add_argument("--quick", action="store_true", help="tiny settings for the tests")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    torch.set_num_threads(1)  # small networks: per-kernel overhead, not arithmetic
    s = Settings(actor_critic=args.agent == "actor-critic")
    if args.weight is not None:
        s = replace(s, epistemic_weight=args.weight)
    if args.quick:
        args.seeds, args.episodes, args.window = min(args.seeds, 1), min(args.episodes, 2), min(args.window, 2)
        s = replace(s, hidden=32, ensemble_size=2, model_hidden=16, td=replace(s.td, learning_starts=40,
                                                                               train_every=4))
    agents = baselines(s)
    if args.only:
        agents = {k: v for k, v in agents.items() if k in args.only}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    start = time.perf_counter()
    results = []
    for name, settings in agents.items():
        for seed in seeds:
            r = run(name, settings, seed, args.episodes, args.window, args.solve, not args.no_progress,
                    50 if args.quick else None)
            print(f"  done: {name} seed {seed}: flag first reached in episode {r['flag'] or 'not reached'}, mean "
                  f">= {args.solve:g} at {r['solved'] or 'not reached'}, last-{args.window} mean "
                  f"{r['returns'][-args.window:].mean():.1f}, {r['steps']} steps, {r['seconds']:.0f} s", flush=True)
            results.append(r)
    print(f"MountainCar-v0 ({args.agent}), seeds {list(seeds)}, at most {args.episodes} episodes")
    for name in agents:
        rs = [r for r in results if r["name"] == name]
        print(f"  {name:>20}: flag first reached: {', '.join(str(r['flag'] or '-') for r in rs)} (median "
              f"{median_episode([r['flag'] for r in rs])}); {args.window}-episode mean >= {args.solve:g}: "
              f"{', '.join(str(r['solved'] or '-') for r in rs)} (median {median_episode([r['solved'] for r in rs])})")
    print(f"wall time {time.perf_counter() - start:.0f} s ({os.cpu_count()} CPU cores, torch on the CPU)")
    return results


if __name__ == "__main__":
    main()
