"""The fewest steps to the goal of each episode examples/minigrid.py meets, for an agent that knows the map and where it
stands: a breadth-first search over poses (x, y, heading) with turn left, turn right and forward. It sets the floor
under any agent's steps and the ceiling over its return (1 - 0.9 * steps / max_steps), to set map-efe's exploration
against (benchmarks/results/minigrid.md).

    python benchmarks/minigrid_shortest.py --env MiniGrid-FourRooms-v0 --seeds 0 1 2 --episodes 200

The episodes are the example's: ``env.reset(seed=...)`` with the seeds drawn from ``np.random.default_rng(seed)``, as
its agents other than ``random`` draw them.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import sys

sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

import gymnasium as gym  # noqa: E402
import minigrid  # noqa: E402, F401  (registers the environments)
import numpy as np  # noqa: E402

DIRECTIONS = [(1, 0), (0, 1), (-1, 0), (0, -1)]


def fewest_steps(env: gym.Env) -> int | None:
    """Breadth-first search from the agent's pose to any pose whose forward step enters the goal (that step
    counted); ``None`` if the goal cannot be reached."""
    u = env.unwrapped
    start = (*map(int, u.agent_pos), int(u.agent_dir))
    seen, queue = {start: 0}, collections.deque([start])
    while queue:
        x, y, d = queue.popleft()
        n = seen[(x, y, d)]
        fx, fy = x + DIRECTIONS[d][0], y + DIRECTIONS[d][1]
        cell = u.grid.get(fx, fy)
        if cell is not None and cell.type == "goal":
            return n + 1
        moves = [(x, y, (d - 1) % 4), (x, y, (d + 1) % 4)]
        if cell is None or cell.can_overlap():
            moves.append((fx, fy, d))
        for m in moves:
            if m not in seen:
                seen[m] = n + 1
                queue.append(m)
    return None


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="MiniGrid-FourRooms-v0")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--episodes", type=int, default=200)
    args = p.parse_args(argv)
    env = gym.make(args.env)
    out = {}
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        steps = []
        for _ in range(args.episodes):
            env.reset(seed=int(rng.integers(2**31 - 1)))
            steps.append(fewest_steps(env))
        reachable = [s for s in steps if s is not None and s <= env.unwrapped.max_steps]
        returns = [1 - 0.9 * s / env.unwrapped.max_steps for s in reachable]
        out[seed] = steps
        print(f"{args.env} seed {seed}: {len(reachable)} of {len(steps)} episodes reachable within "
              f"{env.unwrapped.max_steps} steps; fewest steps mean {np.mean(reachable):.2f} (median "
              f"{np.median(reachable):.0f}, max {max(reachable)}); the best mean return {np.mean(returns):.3f}")
    return out


if __name__ == "__main__":
    main()
