"""Checks cited by benchmarks/results/mountaincar.md for ``examples/mountaincar.py --agent shooting``.

    python benchmarks/mountaincar_checks.py random    # uniform random actions held k steps: flags in 200 episodes
    python benchmarks/mountaincar_checks.py timing    # CPU and wall time of one plan and one model update
    python benchmarks/mountaincar_checks.py heuristic # a hand-written policy's mean return, for scale
    python benchmarks/mountaincar_checks.py ablation SEED EPISODES [persistence=0] [warm_start=0] [updates=4]

``heuristic`` scores pushing in the direction of the velocity (at rest: left when right of -0.5), held 1 and 5
steps, over 200 starts; ``random`` shows how often chance alone reaches the flag with an action repeat; ``timing``
measures the example's ``PlannerSettings`` on an untrained model (the cost does not depend on the weights);
``ablation`` runs the example's planner agent (``run_planner``, the same draws) for one seed with some of its
settings changed: ``persistence`` and ``warm_start`` of the ``CrossEntropyShooting``, ``updates`` of the
``ModelLearning``, ``weight`` (w).
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import time
from dataclasses import replace

import gymnasium as gym
import numpy as np
import torch

from aif_deep.online import Ensemble, EnsembleInfoGain, RewardRisk
from aif_deep.shooting import ModelRun, RewardModel, RewardStateModel


def random_actions(episodes: int = 200) -> None:
    for repeat in (1, 5, 10, 25):
        env, rng = gym.make("MountainCar-v0"), np.random.default_rng(0)
        hits, first = 0, None
        for ep in range(episodes):
            env.reset(seed=ep)
            terminated = truncated = False
            while not (terminated or truncated):
                a = int(rng.integers(3))
                for _ in range(repeat):
                    _, _, terminated, truncated, _ = env.step(a)
                    if terminated or truncated:
                        break
            hits += int(terminated)
            if terminated and first is None:
                first = ep + 1
        print(f"actions held {repeat} steps: flag in {hits} of {episodes} random episodes (first in episode {first})")


def heuristic(episodes: int = 200) -> None:
    env = gym.make("MountainCar-v0")
    for repeat in (1, 5):
        steps = []
        for ep in range(episodes):
            (x, v), _ = env.reset(seed=1000 + ep)
            t, done = 0, False
            while not done:
                a = (2 if v > 0 else 0) if v != 0 else (0 if x > -0.5 else 2)
                for _ in range(repeat):
                    (x, v), _, terminated, truncated, _ = env.step(a)
                    t, done = t + 1, terminated or truncated
                    if done:
                        break
            steps.append(t)
        print(f"push with the velocity, held {repeat}: mean return {-np.mean(steps):.1f} over {episodes} starts "
              f"(worst {-max(steps)}, best {-min(steps)})")


def _example():
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "mountaincar.py"
    spec = importlib.util.spec_from_file_location("mountaincar_example", path)
    mc = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = mc  # type: ignore[union-attr]
    spec.loader.exec_module(mc)  # type: ignore[union-attr]
    return mc


def ablation(seed: str, episodes: str, *changes: str) -> None:
    torch.set_num_threads(1)
    mc = _example()
    s, values = mc.PlannerSettings(), {k: float(v) for k, v in (c.split("=") for c in changes)}
    planner = replace(s.planner, **{k: values[k] for k in ("persistence", "warm_start") if k in values})
    learning = replace(s.learning, **({"updates": int(values["updates"])} if "updates" in values else {}))
    s = replace(s, planner=planner, learning=learning, epistemic_weight=values.get("weight", s.epistemic_weight))
    cpu = time.process_time()
    r = mc.run_planner("ablation", s, int(seed), int(episodes), 100, -110.0, False)
    R = r["returns"]
    print(f"seed {seed}, {' '.join(changes) or 'the defaults'}: mean return of episodes 1-{len(R)} {R.mean():.1f} "
          f"(1-30: {R[:30].mean():.1f}), flag in {r['reached']} of {len(R)}; {time.process_time() - cpu:.0f} s CPU")
    print("returns", " ".join(f"{x:g}" for x in R))


def timing(n: int = 40) -> None:
    torch.set_num_threads(1)
    s = _example().PlannerSettings()
    model = RewardStateModel(2, 3, transition=Ensemble(2, 3, s.ensemble_size, s.model_hidden, 1),
                             outcome=RewardModel(2, 3, s.model_hidden, 2), bounds=(-1.0, 1.0))
    planner = replace(s.planner, efe_terms=(RewardRisk(1.0), EnsembleInfoGain(s.epistemic_weight, noise_sd=s.noise_sd)))
    rng, x = np.random.default_rng(0), [torch.tensor([-0.4, 0.0])]
    planner.plan(model, x, rng)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        planner.plan(model, x, rng)
    print(f"plan (horizon {planner.horizon}, {planner.samples} samples, {planner.iterations} + 1 rounds): "
          f"{1e3 * (time.process_time() - cpu) / n:.1f} ms CPU, {1e3 * (time.perf_counter() - wall) / n:.1f} ms wall")
    run = ModelRun(s.learning, model, rng)
    for i in range(100):
        run.observe(np.zeros(2), i % 3, -5.0, np.full(2, 0.01), False)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(5 * n):
        run.update()
    print(f"model update (batch {s.learning.batch_size}): {1e3 * (time.process_time() - cpu) / (5 * n):.2f} ms CPU, "
          f"{1e3 * (time.perf_counter() - wall) / (5 * n):.2f} ms wall; {s.learning.updates} per decision")


if __name__ == "__main__":
    checks = {"random": random_actions, "timing": timing, "ablation": ablation, "heuristic": heuristic}
    checks[sys.argv[1] if len(sys.argv) > 1 else "timing"](*sys.argv[2:])
