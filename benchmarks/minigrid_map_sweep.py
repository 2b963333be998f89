"""The map agent (``aif.maps``: the layout as hidden state, soft value iteration over poses on the view's expected
information gain) on MiniGrid tasks nobody here wrote, with and without its epistemic term.

Nothing is learned: every episode starts with an empty map, so the first episode is as good as the last. Per task:
the share of episodes that reach the goal, the mean steps and return, CPU per step; with ``--ablate`` the same
episodes without the information gain (``epistemic = 0``: it heads for the goal once seen, and until then every
action scores the same). The tasks with keys and doors are planned with ``MapPlanner(interact=True)``; every task with
one precision ``--gamma``.

    python benchmarks/minigrid_map_sweep.py --episodes 50 --ablate --json sweep.json

The episodes: ``env.reset(seed=...)`` with seeds drawn from ``np.random.default_rng(seed)``, as examples/minigrid.py
draws them.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

import gymnasium as gym  # noqa: E402
import minigrid  # noqa: E402, F401  (registers the environments)
import numpy as np  # noqa: E402

from aif.maps import MapPlanner, play  # noqa: E402

# task -> whether the plan needs pick up and toggle
TASKS = {
    "MiniGrid-Empty-16x16-v0": False,
    "MiniGrid-FourRooms-v0": False,
    "MiniGrid-SimpleCrossingS11N5-v0": False,
    "MiniGrid-LavaCrossingS11N5-v0": False,
    "MiniGrid-LavaGapS7-v0": False,
    "MiniGrid-DoorKey-5x5-v0": True,
    "MiniGrid-DoorKey-8x8-v0": True,
    "MiniGrid-DoorKey-16x16-v0": True,
    "MiniGrid-MultiRoom-N4-S5-v0": True,
    "MiniGrid-MultiRoom-N6-v0": True,
}


def run(task: str, episodes: int, seed: int, epistemic: float, interact: bool, gamma: float = 2.0) -> dict:
    """``episodes`` episodes of the map agent on ``task``: per episode whether it reached the goal (a positive
    return; lava ends an episode with none), its steps and return, and the CPU time of the whole run."""
    env = gym.make(task)
    rng, ties = np.random.default_rng(seed), np.random.default_rng([seed, 2])
    planner = MapPlanner(epistemic=epistemic, interact=interact, gamma=gamma)
    cpu = time.process_time()
    played = [play(env, planner, ties, seed=int(rng.integers(2**31 - 1))) for _ in range(episodes)]
    goal, steps, returns = ([getattr(e, k) for e in played] for k in ("reached", "steps", "total"))
    cpu = time.process_time() - cpu
    return {"task": task, "epistemic": epistemic, "interact": interact, "gamma": gamma, "seed": seed, "goal": goal,
            "steps": steps, "returns": returns, "cpu_s": cpu, "max_steps": int(env.unwrapped.max_steps)}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), help="MiniGrid task ids (default: the list above)")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gamma", type=float, default=2.0,
                   help="MapPlanner.gamma for every task (2: a step costs ln(actions) / 2 nats; DoorKey-16x16's key "
                        "and door lie beyond what gamma = 1 walks to)")
    p.add_argument("--ablate", action="store_true", help="also run each task with epistemic = 0")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    results = []
    for task in args.tasks:
        for w in (1.0, 0.0) if args.ablate else (1.0,):
            r = run(task, args.episodes, args.seed, w, TASKS.get(task, True), args.gamma)
            results.append(r)
            n = sum(r["steps"])
            print(f"{task} epistemic {w:g}: goal {np.mean(r['goal']):.2f} of {args.episodes}, steps mean "
                  f"{np.mean(r['steps']):.1f} (max {max(r['steps'])} of {r['max_steps']}), return "
                  f"{np.mean(r['returns']):.3f}, {1000 * r['cpu_s'] / n:.1f} ms CPU per step", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)
    return results


if __name__ == "__main__":
    main()
