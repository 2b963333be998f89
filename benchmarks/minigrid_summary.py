"""Summarise runs of ``examples/minigrid.py`` written with ``--json``: per run, the success rate per block of 50
episodes, the first episode at which the success rate over 20 episodes reached 0.9, and the environment steps taken to
get there, over the first ``--budget`` episodes of each run (a run of more episodes holds the shorter one: nothing in
an agent's first N episodes depends on how many follow); optionally a figure of the success rate per block.

Steps per episode come from the returns: MiniGrid's reward for the goal is 1 - 0.9 * steps / max_steps, and an
episode without it lasts max_steps.

    python benchmarks/minigrid_summary.py RUN.json ... [--budget N] [--budget-for TASK=N ...] [--figure out.png]
"""

from __future__ import annotations

import argparse
import json
import textwrap

import numpy as np

MAX_STEPS = {"MiniGrid-Empty-8x8-v0": 4 * 8 * 8, "MiniGrid-DoorKey-5x5-v0": 10 * 5 * 5, "MiniGrid-FourRooms-v0": 100}
SUCCESS_RETURN = {"MiniGrid-Empty-8x8-v0": 0.9}  # the example's, for runs written before it stored its own


def episode_steps(returns: np.ndarray, goal: np.ndarray, max_steps: int) -> np.ndarray:
    """Steps of each episode: from the goal reward 1 - 0.9 * steps / max_steps, or max_steps without it."""
    return np.where(goal, np.rint((1.0 - returns) * max_steps / 0.9), max_steps).astype(int)


def summarise(run: dict, env: str, budget: int | None, window: int = 20, target: float = 0.9) -> dict:
    returns = np.asarray(run["returns"][:budget])
    goal = np.asarray(run["goal"][:budget], dtype=bool)
    success = returns >= run.get("success_return", SUCCESS_RETURN.get(env, 0.1))
    rates = np.convolve(success.astype(float), np.ones(window) / window, "valid")  # episodes window .. E
    reached = np.nonzero(rates >= target)[0]
    steps = np.cumsum(episode_steps(returns, goal, MAX_STEPS[env]))
    first = None if not len(reached) else int(reached[0]) + window
    return {"agent": run["agent"], "seed": run["seed"], "episodes": len(returns),
            "blocks": [float(b.mean()) for b in np.array_split(success, max(1, len(success) // 50))],
            "reached": first, "steps_to_reach": None if first is None else int(steps[first - 1]),
            "last_success": float(success[-window:].mean()), "goal_rate": float(goal.mean()), "steps": int(steps[-1]),
            "wall_s": run["wall_s"] if budget is None or budget >= len(run["returns"]) else None,
            "cpu_s": run.get("cpu_s") if budget is None or budget >= len(run["returns"]) else None}


# The example's command-line options away from their defaults, read back from the run's settings (its repr): the
# key in the repr, the default, the flag, and the agents it changes (names containing one of them: the actor-critic's,
# every learner's, the RSSM's, map-sac's, map-efe's).
OPTIONS = [("info_gain=", "0.0", "--info-gain", ("rssm", "map-sac")),
           ("info_gain_baseline=", "0.0", "--info-gain-baseline", ("rssm", "map-sac")),
           ("reward_preference=", "10.0", "--reward-preference", ("dqn", "sac")),
           (", alpha=", "0.01", "--alpha", ("sac",)), ("target_entropy=", "0.3", "--target-entropy", ("sac",)),
           ("alpha_lr=", "0.0003", "--alpha-lr", ("sac",)), ("floor=", "0.0", "--floor", ("sac",)),
           ("discount=", "0.99", "--discount", ("dqn", "sac")), ("n_step=", "1", "--n-step", ("dqn", "sac")),
           ("train_every=", "4", "--train-every", ("dqn", "sac")), ("twin=", "False", "--twin", ("dqn", "sac")),
           ("free_nats=FreeNats(nats=", "1.0", "--free-nats", ("rssm",)),
           ("hindsight=", "0", "--hindsight", ("map-sac",)), ("epistemic=", "1.0", "--epistemic", ("map-efe",)),
           ("map_horizon=", "40", "--map-horizon", ("map-efe",)), ("map_crop=", "11", "--map-crop", ("map-sac",))]


def options(settings: str, agent: str) -> str:
    """`` --info-gain 0.1 --alpha 0.005 ...``: the options of a run that differ from the example's defaults and change
    its agent (every learner's for ``""``; none for random actions)."""
    out = ""
    for key, default, flag, agents in OPTIONS:
        if not any(a in agent for a in agents) or agent == "random":
            continue
        if key not in settings:  # an option set to None prints its field as None
            none = key.split("=")[0] + "=None"
            out += f" {flag} 0" if flag == "--free-nats" and none in settings else ""
            continue
        value = settings.split(key, 1)[1].split(",")[0].split(")")[0]
        if value != default:
            out += f" {flag}" if flag == "--twin" else f" {flag} {0 if value == 'None' else value}"
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--budget", type=int, default=None, help="count only each run's first BUDGET episodes")
    p.add_argument("--budget-for", nargs="*", default=[], metavar="TASK=N",
                   help="another budget for the runs of one task (e.g. MiniGrid-FourRooms-v0=400)")
    p.add_argument("--figure", default=None)
    args = p.parse_args(argv)
    rows = []
    for path in args.files:
        with open(path) as f:
            data = json.load(f)
        env = data["settings"].split("env='")[1].split("'")[0]
        online = "wm_online=OnlineFit(" in data["settings"]  # an RSSM trained online (--online)
        budgets = dict(b.split("=") for b in args.budget_for)
        for run in data["runs"]:
            r = summarise(run, env, int(budgets[env]) if env in budgets else args.budget)
            r["agent"] += (" --online" if online and "rssm" in r["agent"] else "") + options(data["settings"],
                                                                                          r["agent"])
            rows.append((env, r))
    print("| task | agent | seed | episodes | success per 50 episodes | first episode at 0.9 (env steps) | "
          "last 20 success | goal reached (all) | env steps | wall (CPU, per step) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for env, r in rows:
        reached = "not reached" if r["reached"] is None else f"{r['reached']} ({r['steps_to_reach']:,})"
        wall = "" if r["wall_s"] is None else f"{r['wall_s']:.0f} s"
        if r["cpu_s"] is not None:  # runs that recorded their process CPU time: its total and per step
            wall += f" ({r['cpu_s']:.0f} s, {1e3 * r['cpu_s'] / r['steps']:.1f} ms/step)"
        print(f"| {env.split('-')[1]} | `{r['agent']}` | {r['seed']} | {r['episodes']} | "
              f"{', '.join(f'{b:.2f}' for b in r['blocks'])} | {reached} | {r['last_success']:.2f} | "
              f"{r['goal_rate']:.2f} | {r['steps']:,} | {wall} |")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        envs = [env for env in MAX_STEPS if any(e == env for e, _ in rows)]
        fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 4.2), squeeze=False)
        colours: dict[str, str] = {}
        for env, r in rows:
            ax = axes[0, envs.index(env)]
            c = colours.setdefault(r["agent"], f"C{len(colours)}")
            x = 50 * np.arange(1, len(r["blocks"]) + 1)
            label = textwrap.fill(r["agent"], 42) if r["seed"] == min(q["seed"] for e, q in rows if e == env and
                                                                      q["agent"] == r["agent"]) else None
            ax.plot(x, r["blocks"], "o-", color=c, alpha=0.7, label=label)
            ax.set_title(env)
            ax.set_xlabel("episode (end of block of 50)")
            ax.set_ylabel("success rate in the block")
            ax.set_ylim(-0.02, 1.02)
            ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)


if __name__ == "__main__":
    main()
