"""MountainCar-v0 (Gymnasium, sparse reward): does the epistemic term of the expected free energy pay off?

The reward is -1 on every step until the car reaches the flag (at most 200 steps), so until it has been reached once
every action has the same risk and only the information gain tells actions apart.

``--agent shooting`` (model-based, as Tschantz et al. 2020): the agent learns a generative model, an ensemble of
transition networks and a reward-and-end network (``aif_deep.shooting.RewardStateModel``), and re-plans at every
decision by the cross-entropy method over action sequences (``CrossEntropyShooting``), each scored by its expected
free energy through the model, G = sum_t alive_t [risk_t - w * info_gain_t]; actions are held for ``repeat``
environment steps (one model step). Compared: the same planner with w = 0 (``CEM without information gain``) and
the DQN below, on the same number of episodes.

The other agents (model-free), each an ``aif_deep.Agent`` over ``aif_deep.online``'s strategies with the same
networks, optimiser, replay buffer and budget:

- ``active inference``: G_phi learned by temporal differences on g = risk - w * info_gain, where info_gain is the
  disagreement of an ensemble of learned transition networks (``EnsembleInfoGain``; Tschantz et al. 2020's
  estimator), actions sampled from q(a | x) = softmax(-gamma G_phi(x, .)) (or, with ``--agent actor-critic``,
  from an amortised policy trained against G_phi: ``aif_deep.SoftActorCritic``);
- ``no information gain``: the same agent with w = 0 (no ensemble);
- ``DQN``: w = 0, V = min instead of the soft minimum, epsilon-greedy actions (Mnih et al. on -Q).

Observations are scaled to [-1, 1] (the Agent's ``preprocess``), so that the transition noise ``noise_sd`` is in the
same units for position and velocity.

    python examples/mountaincar.py                          # 5 seeds x 3 agents, 300 episodes at most
    python examples/mountaincar.py --agent shooting         # the model-based planner, w = 0 and DQN
    python examples/mountaincar.py --agent actor-critic     # the actor-critic as the active-inference agent
    python examples/mountaincar.py --quick                  # seconds; what the tests run
    python examples/mountaincar.py --agent shooting --horizon 10   # plans of 10 model steps instead of 25

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
from aif_deep.shooting import CrossEntropyShooting, ModelLearning, ModelRun, RewardModel, RewardStateModel


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


@dataclass(frozen=True)
class PlannerSettings:
    """The model-based agent's settings (``--agent shooting``).

    Attributes:
        epistemic_weight: w of the information gain in each sequence's G (0: the planner without it).
        noise_sd: sigma of the transition likelihood in the scaled observation's units (``EnsembleInfoGain``).
        ensemble_size, model_hidden: the transition ensemble (``online.Ensemble``) and the width of its and the
            ``RewardModel``'s hidden layers.
        repeat: environment steps per action (one step of the learned model): a 25-step plan looks 125 steps ahead.
        planner: ``CrossEntropyShooting`` (its ``efe_terms`` are set from ``epistemic_weight`` and ``noise_sd``).
            ``persistence=0.8``: drawn sequences hold an action for 5 model steps on average (25 environment steps),
            so that the two swings that reach the flag from the valley are among the draws; with independent draws
            the end was rarely in view from the start, and the car made a third swing (about -145 instead of
            -105). ``warm_start=0.5``: each plan starts from the previous one, shifted (reset every episode).
        learning: ``ModelLearning`` of the ensemble and the reward model, per model step. ``updates=32`` per
            decision: with 4, the ensemble's mean path 20 model steps ahead was off by about three times as much
            as with 16 after 40 episodes, and the plans that reach the flag were not where the model put them.
        selection: how the planned G of the first actions becomes the action (``Softmax``).
    """

    epistemic_weight: float = 1.0
    noise_sd: float = 0.01
    ensemble_size: int = 5
    model_hidden: int = 64
    repeat: int = 5
    planner: CrossEntropyShooting = CrossEntropyShooting(horizon=25, samples=128, elites=16, iterations=3,
                                                         persistence=0.8, warm_start=0.5)
    learning: ModelLearning = ModelLearning(learning_starts=40, updates=32)
    selection: Softmax = Softmax(10.0, gamma_start=None)


def planner_baselines(s: PlannerSettings, dqn: Settings) -> dict:
    """The model-based comparison: the planner, the same planner with w = 0, and DQN."""
    return {"active inference (CEM)": s, "CEM without information gain": replace(s, epistemic_weight=0.0),
            "DQN": baselines(dqn)["DQN"]}


class Tally:
    """One run's episodes: the returns, the first episode that reached the flag, the episode at which the mean return
    of the last ``window`` reached ``solve`` (the run stops there) and how many episodes reached the flag."""

    def __init__(self, window: int, solve: float) -> None:
        self.window, self.solve = window, solve
        self.returns: list[float] = []
        self.flag: int | None = None
        self.solved: int | None = None
        self.reached = 0

    def end(self, total: float, terminated: bool) -> bool:
        """Record an episode's return and whether it ended at the flag; returns whether the run is solved."""
        self.returns.append(total)
        self.reached += int(terminated)
        if terminated and self.flag is None:
            self.flag = len(self.returns)
        if len(self.returns) >= self.window and np.mean(self.returns[-self.window:]) >= self.solve:
            self.solved = len(self.returns)
        return self.solved is not None

    def result(self) -> dict:
        return dict(returns=np.array(self.returns), flag=self.flag, solved=self.solved, reached=self.reached)


def scaled(env: gym.Env):
    """The Agent's ``preprocess``: observations scaled to [-1, 1]."""
    low, high = env.observation_space.low, env.observation_space.high
    return lambda x: (2 * (np.asarray(x) - low) / (high - low) - 1).astype(np.float32)


def run_planner(name: str, s: PlannerSettings, seed: int, episodes: int, window: int, solve: float, progress: bool,
                max_steps: int | None = None, log: bool = False) -> dict:
    """Train the model-based agent for one seed, as ``run``. Each decision is the Agent's cycle written out: the
    state is observed (``ObservedState``), the planner scores the first actions, the selection samples one, and the
    model learns from the transition it held the action for (``repeat`` steps, their rewards summed).
    ``aif_deep.Agent(model, inference=ObservedState(), planner=CrossEntropyShooting(...), learning=ModelLearning(),
    selection=..., rng=...)`` runs the same cycle, draw for draw (tests/deep/test_shooting_agent.py); it is written
    out here because an episode's last transition is learned without planning again, which keeps the recorded
    runs' random draws (benchmarks/results/mountaincar.md); the planner's warm start is reset at each episode's start
    (``planner.reset()``, which ``Agent.reset()`` calls)."""
    env = gym.make("MountainCar-v0", max_episode_steps=max_steps)
    D, K = env.observation_space.shape[0], int(env.action_space.n)
    model = RewardStateModel(D, K, transition=online.Ensemble(D, K, s.ensemble_size, s.model_hidden, seed + 1),
                             outcome=RewardModel(D, K, s.model_hidden, seed + 2), bounds=(-1.0, 1.0))
    terms: tuple = (online.RewardRisk(1.0),)
    if s.epistemic_weight > 0:
        terms += (online.EnsembleInfoGain(s.epistemic_weight, noise_sd=s.noise_sd),)
    planner, inference, preprocess = replace(s.planner, efe_terms=terms), online.ObservedState(), scaled(env)
    rng = np.random.default_rng(seed)
    learner = ModelRun(s.learning, model, rng)
    H = planner.horizon
    start = time.perf_counter()
    tally, decisions = Tally(window, solve), 0
    obs, _ = env.reset(seed=seed)
    for ep in tqdm(range(episodes), disable=not progress, desc=f"{name} seed {seed}", leave=False):
        if ep > 0:
            obs, _ = env.reset()
        planner.reset()  # the warm start: the last plan of an episode says nothing about the next
        total, terminated, truncated, top, gain, n = 0.0, False, False, -np.inf, 0.0, 0
        while not (terminated or truncated):
            qs = inference.infer(model, preprocess(obs))
            plan = planner.plan(model, qs, rng)
            q = s.selection.probabilities(plan.G, decisions)
            action = int(rng.choice(len(q), p=q))
            decisions += 1
            reward = 0.0
            for _ in range(s.repeat):
                obs, r, terminated, truncated, _ = env.step(action)
                reward += float(r)
                if terminated or truncated:
                    break
            total += reward
            learner.observe(qs[0], action, reward, preprocess(obs), terminated)
            top = max(top, float(obs[0]))
            gain += plan.terms.get("info_gain", np.zeros(1))[action] / H
            n += 1
        if log:
            print(f"    {name} seed {seed} episode {ep + 1}: return {total:g}, highest position {top:.2f}, planned "
                  f"epistemic value {gain / n:.3f} per model step, model loss {learner.last_loss:.4f}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
        if tally.end(total, terminated):
            break
    return dict(name=name, seed=seed, **tally.result(), steps=int(-np.sum(tally.returns)),
                seconds=time.perf_counter() - start)


def run(name: str, s: Settings, seed: int, episodes: int, window: int, solve: float, progress: bool,
        max_steps: int | None = None) -> dict:
    """Train one agent for one seed; the environment is seeded once with ``seed`` (``max_steps``: a shorter time
    limit than the task's 200 steps, for the tests)."""
    env = gym.make("MountainCar-v0", max_episode_steps=max_steps)
    agent = build_agent(env, s, seed)
    start = time.perf_counter()
    tally = Tally(window, solve)
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
        if tally.end(total, terminated):
            break
    return dict(name=name, seed=seed, **tally.result(), steps=agent.td.steps, seconds=time.perf_counter() - start)


def median_episode(values: list) -> str:
    med = np.median([v if v else np.inf for v in values])
    return f"{med:g}" if np.isfinite(med) else "not reached"


def best_mean(returns: np.ndarray, n: int) -> float:
    """The best mean return over ``n`` consecutive episodes (over all of them when fewer)."""
    n = min(n, len(returns))
    return float(np.convolve(returns, np.ones(n) / n, mode="valid").max())


def plot(files: list[str], out: str, k: int = 10) -> None:
    """Learning curves from ``--save`` files: the ``k``-episode moving mean of the return (each seed thin, the median
    over seeds thick) and the number of episodes that reached the flag so far (median over seeds)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict = {}
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            for key in z.files:
                name, seed = key.rsplit("|", 1)
                runs.setdefault(name, {})[int(seed)] = z[key]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for (name, seeds), colour in zip(sorted(runs.items()), plt.cm.tab10.colors, strict=False):  # type: ignore[attr-defined]
        n = min(len(r) for r in seeds.values())
        means = [np.convolve(r[:n], np.ones(k) / k, mode="valid") for r in seeds.values()]
        x = np.arange(k, n + 1)
        for m in means:
            ax.plot(x, m, color=colour, alpha=0.3, lw=0.8)
        ax.plot(x, np.median(means, axis=0), color=colour, lw=2, label=f"{name} ({len(seeds)} seeds)")
        reached = np.median([np.cumsum(r[:n] > -200) for r in seeds.values()], axis=0)
        ax2.plot(np.arange(1, n + 1), reached, color=colour, lw=2, label=name)
    ax.axhline(-110, color="k", ls=":", lw=1)
    ax.set(xlabel="episode", ylabel=f"{k}-episode mean return", title="MountainCar-v0: return (-110: solved)")
    ax2.plot([0, n], [0, n], color="grey", ls=":", lw=1)
    ax2.set(xlabel="episode", ylabel="episodes that reached the flag (median over seeds)",
            title="flag reached so far")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent", choices=["efe-q", "actor-critic", "shooting"], default="efe-q",
                   help="the active-inference agent: learned G_phi with softmax actions, an actor-critic on it, or "
                        "the model-based planner (CEM through the learned ensemble)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=300, help="at most this many episodes per run")
    p.add_argument("--solve", type=float, default=-110.0, help="window-episode mean return that counts as solved")
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--weight", type=float, default=None, help="epistemic weight w (default: the settings')")
    p.add_argument("--horizon", type=int, default=None,
                   help="the planner's horizon in model steps (default: the settings' 25; a shorter one puts the "
                        "flag out of the plans' view from the valley)")
    p.add_argument("--only", nargs="+", default=None, help="run only these agents (names as printed)")
    p.add_argument("--save", default=None, help="write each run's returns to this .npz file")
    p.add_argument("--plot", nargs=2, default=None, metavar=("OUT", "GLOB"),
                   help="only draw the learning curves of the --save files matching GLOB into OUT")
    p.add_argument("--log-episodes", action="store_true", help="the planner: one line per episode")
    p.add_argument("--quick", action="store_true", help="tiny settings for the tests")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.plot:
        import glob
        plot(sorted(glob.glob(args.plot[1])), args.plot[0])
        return []

    torch.set_num_threads(1)  # small networks: per-kernel overhead, not arithmetic
    s = Settings(actor_critic=args.agent == "actor-critic")
    ps = PlannerSettings()
    if args.weight is not None:
        s, ps = replace(s, epistemic_weight=args.weight), replace(ps, epistemic_weight=args.weight)
    if args.quick:
        args.seeds, args.episodes, args.window = min(args.seeds, 1), min(args.episodes, 2), min(args.window, 2)
        s = replace(s, hidden=32, ensemble_size=2, model_hidden=16, td=replace(s.td, learning_starts=40,
                                                                               train_every=4))
        ps = replace(ps, ensemble_size=2, model_hidden=16, learning=replace(ps.learning, learning_starts=4),
                     planner=replace(ps.planner, horizon=5, samples=16, elites=4, iterations=1))
    if args.horizon is not None:
        ps = replace(ps, planner=replace(ps.planner, horizon=args.horizon))
    agents: dict = planner_baselines(ps, s) if args.agent == "shooting" else baselines(s)
    if args.only:
        agents = {k: v for k, v in agents.items() if k in args.only}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    start = time.perf_counter()
    results = []
    for name, settings in agents.items():
        for seed in seeds:
            if isinstance(settings, PlannerSettings):
                r = run_planner(name, settings, seed, args.episodes, args.window, args.solve, not args.no_progress,
                                50 if args.quick else None, args.log_episodes)
            else:
                r = run(name, settings, seed, args.episodes, args.window, args.solve, not args.no_progress,
                        50 if args.quick else None)
            n = len(r["returns"])
            print(f"  done: {name} seed {seed}: flag first reached in episode {r['flag'] or 'not reached'} and in "
                  f"{r['reached']} of {n} episodes, mean >= {args.solve:g} at {r['solved'] or 'not reached'}, "
                  f"last-{args.window} mean {r['returns'][-args.window:].mean():.1f}, best 10- and 20-episode "
                  f"means {best_mean(r['returns'], 10):.1f}, {best_mean(r['returns'], 20):.1f}; {r['steps']} steps, "
                  f"{r['seconds']:.0f} s ({r['seconds'] / n:.1f} s per episode)", flush=True)
            results.append(r)
            if args.save:
                np.savez(args.save, **{f"{q['name']}|{q['seed']}": q["returns"] for q in results})
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
