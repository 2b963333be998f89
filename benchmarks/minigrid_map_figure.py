"""One FourRooms episode of the map agent (``aif.maps``, examples/minigrid.py's ``map-efe``) in four snapshots: what it
knew of the layout, the path so far, and its latent goal p*(s) ∝ exp V(s) (the soft values of its plan, summed over
headings per cell) shaded in orange.

    python benchmarks/minigrid_map_figure.py --seed 3 --out benchmarks/results/minigrid_map.png
"""

from __future__ import annotations

import argparse
import pathlib
import sys

sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

import gymnasium as gym  # noqa: E402
import matplotlib  # noqa: E402
import minigrid  # noqa: E402, F401  (registers the environments)
import numpy as np  # noqa: E402

from aif.maps import MapPlanner, play  # noqa: E402
from aif.plotting import plot_grid_maps  # noqa: E402


def episode(env_name: str, seed: int, epistemic: float = 1.0) -> list[dict]:
    """Every step of one episode: the map's types, the pose, the path and the latent goal over cells."""
    steps: list[dict] = []
    path: list[tuple[int, int]] = []

    def record(belief, plan):
        path.append(belief.pose[:2])
        goal = np.zeros(belief.types.shape)
        np.add.at(goal, (plan.poses[:, 0], plan.poses[:, 1]), np.exp(plan.value - plan.value.max()))
        steps.append({"types": belief.types.copy(), "pose": belief.pose, "path": list(path), "goal": goal / goal.sum()})

    result = play(gym.make(env_name), MapPlanner(epistemic=epistemic), np.random.default_rng(seed), seed, record)
    steps[-1]["reward"] = result.total
    return steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="MiniGrid-FourRooms-v0")
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--out", default="minigrid_map.png")
    args = p.parse_args(argv)
    matplotlib.use("Agg")
    steps = episode(args.env, args.seed)
    at = sorted({0, len(steps) // 3, 2 * len(steps) // 3, len(steps) - 1})
    fig = plot_grid_maps([steps[t]["types"] for t in at], [steps[t]["pose"] for t in at],
                         goals=[steps[t]["goal"] for t in at], paths=[steps[t]["path"] for t in at],
                         titles=[f"step {t}" + (" (the goal next)" if t == len(steps) - 1 else "") for t in at])
    fig.suptitle(f"{args.env}, seed {args.seed}: the map agent's belief (grey: unseen), path and latent goal "
                 f"(orange); {len(steps)} steps, return {steps[-1]['reward']:.2f}", fontsize=9)
    fig.savefig(args.out, dpi=120)
    print(f"{args.out}: {len(steps)} steps, return {steps[-1]['reward']:.3f}, snapshots at {at}")


if __name__ == "__main__":
    main()
