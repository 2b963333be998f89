"""A neural policy that amortises the map agent's planner on FourRooms: behaviour cloning of ``map-efe``'s actions
(``aif.maps.MapPlanner`` on the ``GridMap`` belief) from the belief's features (examples/minigrid.py's
``MapFeatures``), then DAgger (Ross et al. 2011): the network acts, the planner labels every belief the network
reaches, and the network is refitted on all labels so far. The network then acts alone (argmax of pi(a | features),
one forward pass a step, no planning), and is scored on fresh episodes.

    python benchmarks/minigrid_amortise.py --demos 100 --rounds 10 --round-episodes 25 --eval 100 --seed 0

Prints the success of each DAgger round's episodes (the network acting) and of the final evaluation.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).resolve().parent]

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import aif_deep  # noqa: E402
from aif.maps import MapPlanner  # noqa: E402
from aif_deep.imitation import Demonstrations, ImitationSettings, behaviour_cloning, log_policy  # noqa: E402


def _example():
    spec = importlib.util.spec_from_file_location("minigrid_example", ROOT / "examples" / "minigrid.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="MiniGrid-FourRooms-v0")
    p.add_argument("--demos", type=int, default=100, help="episodes the planner acts in, labelled")
    p.add_argument("--rounds", type=int, default=10, help="DAgger rounds")
    p.add_argument("--round-episodes", type=int, default=25, help="episodes the network acts in per round")
    p.add_argument("--eval", type=int, default=100, help="episodes the network acts in alone at the end")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--fit-steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    example = _example()
    env = gym.make(args.env)
    side = max(env.unwrapped.width, env.unwrapped.height)
    rng, ties = np.random.default_rng(args.seed), np.random.default_rng([args.seed, 2])
    teacher = MapPlanner()
    xs: list[torch.Tensor] = []
    labels: list[int] = []
    net = None

    def episode(label: bool) -> tuple[bool, int]:
        # one episode: the network acts (the planner before the first fit); the planner labels each belief
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        maps = example.MapFeatures(side)
        x, done, n = maps.reset(obs["image"]), False, 0
        while not done:
            if label or net is None:
                xs.append(x)
                labels.append(teacher.plan(maps.grid, ties).action)
            if net is None:
                a = labels[-1]
            else:
                with torch.no_grad():
                    a = int(torch.argmax(log_policy(net, x[None].double())[0]))
            obs, _, terminated, truncated, _ = env.step(a)
            n, done = n + 1, terminated or truncated
            if not done:
                x = maps.step(a, obs["image"])
        return bool(terminated), n

    def fit() -> float:
        x = torch.stack(xs).double()
        demos = Demonstrations(x, torch.tensor(labels), x, torch.zeros(len(labels), dtype=torch.float64))
        settings = ImitationSettings(steps=args.fit_steps, batch_size=256, lr=1e-3, seed=args.seed)
        return behaviour_cloning(net, demos, settings)[-1]

    cpu = time.process_time()
    demo = [episode(True) for _ in range(args.demos)]
    net = aif_deep.QFunction([xs[0].numel()], [3], hidden=args.hidden, seed=args.seed).double()
    loss = fit()
    print(f"{args.demos} planner episodes (goal {np.mean([g for g, _ in demo]):.2f}), {len(labels)} labels, "
          f"cloning loss {loss:.4f}", flush=True)
    rounds = []
    for r in range(args.rounds):
        played = [episode(True) for _ in range(args.round_episodes)]
        rounds.append(float(np.mean([g for g, _ in played])))
        loss = fit()
        print(f"DAgger round {r + 1}: the network reached the goal in {rounds[-1]:.2f} of its episodes; "
              f"{len(labels)} labels, loss {loss:.4f}", flush=True)
    final = [episode(False) for _ in range(args.eval)]
    out = {"rounds": rounds, "eval_goal": float(np.mean([g for g, _ in final])),
           "eval_steps": float(np.mean([n for _, n in final])), "labels": len(labels),
           "cpu_s": time.process_time() - cpu}
    print(f"the network alone, {args.eval} episodes: goal {out['eval_goal']:.2f}, mean steps {out['eval_steps']:.1f}; "
          f"{out['cpu_s']:.0f} s CPU in all", flush=True)
    return out


if __name__ == "__main__":
    main()
