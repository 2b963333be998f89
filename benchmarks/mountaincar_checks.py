"""Checks cited by benchmarks/results/mountaincar.md for ``examples/mountaincar.py --agent shooting``.

    python benchmarks/mountaincar_checks.py random    # uniform random actions held k steps: flags in 200 episodes
    python benchmarks/mountaincar_checks.py timing    # CPU and wall time of one plan and one model update
    python benchmarks/mountaincar_checks.py heuristic # a hand-written policy's mean return, for scale
    python benchmarks/mountaincar_checks.py ablation SEED EPISODES [persistence=0] [warm_start=0] [updates=4]
    python benchmarks/mountaincar_checks.py starts "W1*.log" "W0*.log"  # first flags of two agents over paired seeds

``heuristic`` scores pushing in the direction of the velocity (at rest: left when right of -0.5), held 1 and 5
steps, over 200 starts; ``random`` shows how often chance alone reaches the flag with an action repeat; ``timing``
measures the example's ``PlannerSettings`` on an untrained model (the cost does not depend on the weights);
``ablation`` runs the example's planner agent (``run_planner``, the same draws) for one seed with some of its
settings changed: ``persistence`` and ``warm_start`` of the ``CrossEntropyShooting``, ``updates`` of the
``ModelLearning``, ``weight`` (w); ``starts`` reads the example's ``--save`` files or logs (globs; the first for one
agent, the second for the other) and compares the two agents' starts on the seeds both ran: per seed the first
episode that reached the flag (from ``--save`` files: an episode's return above -200, which misses a flag reached on the
episode's last step, scored -200; from the example's ``--log-episodes`` output, ``*.log``: as the run counted it)
and the mean return of the first episodes, the seeds on which an agent never reached the flag (with a 95% exact
Clopper-Pearson interval of the rate), two-sided exact tests of the difference (McNemar's on the paired seeds,
Fisher's on the two counts) and a two-sided Wilcoxon signed-rank test of the paired mean returns.
"""

from __future__ import annotations

import glob
import importlib.util
import pathlib
import re
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


def _returns(pattern: str) -> tuple[str, dict[int, np.ndarray], dict[int, int] | None]:
    """The one agent's returns per seed in the files matching ``pattern``: the example's ``--save`` files, or its
    output with ``--log-episodes`` (``*.log``), which also gives each run's first flag as the run counted it (from
    ``terminated``, so also a flag on the episode's last step)."""
    runs: dict[str, dict[int, np.ndarray]] = {}
    flags: dict[int, int] | None = None
    for f in sorted(glob.glob(pattern)):
        if f.endswith(".log"):
            flags = {} if flags is None else flags
            text = pathlib.Path(f).read_text()
            for name, seed, ep, ret in re.findall(r"^ {4}(.+) seed (\d+) episode (\d+): return (-?[\d.]+)", text, re.M):
                r = runs.setdefault(name, {}).setdefault(int(seed), np.zeros(0))
                assert len(r) == int(ep) - 1, f"{f}: seed {seed} episode {ep} out of order"
                runs[name][int(seed)] = np.append(r, float(ret))
            for seed, ep in re.findall(r"done: .+ seed (\d+): flag first reached in episode (\d+|not reached)", text):
                flags[int(seed)] = 0 if ep == "not reached" else int(ep)
            continue
        with np.load(f, allow_pickle=False) as z:
            for key in z.files:
                name, seed = key.rsplit("|", 1)
                runs.setdefault(name, {})[int(seed)] = z[key]
    if len(runs) != 1:
        raise SystemExit(f"{pattern}: expected the runs of one agent, found {sorted(runs) or 'none'}")
    name, returns = next(iter(runs.items()))
    if flags is not None and set(flags) != set(returns):
        raise SystemExit(f"{pattern}: the runs of seeds {sorted(set(returns) - set(flags))} did not finish")
    return name, returns, flags


def compare_starts(a: dict[int, np.ndarray], b: dict[int, np.ndarray], flags_a: dict[int, int] | None = None,
                   flags_b: dict[int, int] | None = None) -> dict:
    """Two agents' starts on the seeds both ran (with equally many episodes): per seed the first episode that
    reached the flag (0: never; from ``flags_*`` where given, else the first return above -200) and the mean return;
    the seeds where only one agent never reached it, and the
    two-sided exact p-values of McNemar's test (binomial on those discordant seeds) and Fisher's (the two counts of
    seeds that never reached it, as unpaired samples), the 95% Clopper-Pearson interval of each agent's rate of
    seeds that never reached it, and the two-sided Wilcoxon signed-rank p of the paired mean returns."""
    from scipy.stats import binomtest, fisher_exact, wilcoxon

    seeds = sorted(set(a) & set(b))
    n = min(min(len(a[s]), len(b[s])) for s in seeds)
    first = {k: np.array([(fl[s] if fl[s] <= n else 0) if fl is not None else
                          int(np.argmax(r[s][:n] > -200)) + 1 if (r[s][:n] > -200).any() else 0 for s in seeds])
             for k, r, fl in (("a", a, flags_a), ("b", b, flags_b))}
    mean = {k: np.array([r[s][:n].mean() for s in seeds]) for k, r in (("a", a), ("b", b))}
    never_a, never_b = first["a"] == 0, first["b"] == 0
    only_a, only_b = int((never_a & ~never_b).sum()), int((never_b & ~never_a).sum())
    mcnemar = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    fisher = fisher_exact([[int(never_a.sum()), len(seeds) - int(never_a.sum())],
                           [int(never_b.sum()), len(seeds) - int(never_b.sum())]])[1]
    ci = {k: tuple(binomtest(int(v.sum()), len(seeds)).proportion_ci(method="exact"))
          for k, v in (("a", never_a), ("b", never_b))}
    d = mean["a"] - mean["b"]
    signed_rank = float(wilcoxon(d).pvalue) if np.any(d != 0) else 1.0
    return dict(seeds=seeds, episodes=n, first_a=first["a"], first_b=first["b"], mean_a=mean["a"],
                mean_b=mean["b"], never_a=int(never_a.sum()), never_b=int(never_b.sum()), only_a=only_a,
                only_b=only_b, mcnemar=float(mcnemar), fisher=float(fisher), ci_a=ci["a"], ci_b=ci["b"],
                wilcoxon=signed_rank)


def starts(pattern_a: str, pattern_b: str) -> None:
    (name_a, a, flags_a), (name_b, b, flags_b) = _returns(pattern_a), _returns(pattern_b)
    c = compare_starts(a, b, flags_a, flags_b)
    n, seeds = c["episodes"], c["seeds"]
    print(f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]}), episodes 1-{n}; first flag (0: never), mean return")
    for i, s in enumerate(seeds):
        print(f"  seed {s:3d}: {name_a} {c['first_a'][i]:2d} {c['mean_a'][i]:7.1f} | "
              f"{name_b} {c['first_b'][i]:2d} {c['mean_b'][i]:7.1f}")
    for name, k in ((name_a, "a"), (name_b, "b")):
        f, never = c[f"first_{k}"], c[f"never_{k}"]
        reached = f[f > 0]
        lo, hi = c[f"ci_{k}"]
        print(f"{name}: never reached the flag in {n} episodes on {never} of {len(seeds)} seeds"
              f"{' (' + ', '.join(str(s) for s, x in zip(seeds, f, strict=True) if x == 0) + ')' if never else ''}, "
              f"95% interval of the rate {lo:.3f}-{hi:.3f}; "
              f"first flag (episode: seeds) "
              f"{', '.join(f'{e}: {int((reached == e).sum())}' for e in np.unique(reached))}; "
              f"median first flag (never = later than any) "
              f"{np.median(np.where(f > 0, f, np.inf)):g}; mean return of episodes 1-{n}: median "
              f"{np.median(c[f'mean_{k}']):.1f}, mean {c[f'mean_{k}'].mean():.1f}")
    d = c["mean_a"] - c["mean_b"]
    print(f"never reached by {name_a} only: {c['only_a']} seeds, by {name_b} only: {c['only_b']} seeds; "
          f"two-sided exact McNemar p = {c['mcnemar']:.3g}, Fisher p = {c['fisher']:.3g}")
    both = (c["first_a"] > 0) & (c["first_b"] > 0)
    print(f"mean return of episodes 1-{n}, {name_a} minus {name_b}: median {np.median(d):+.1f} over all seeds, "
          f"{np.median(d[both]):+.1f} over the {int(both.sum())} seeds where both reached the flag "
          f"(mean {d[both].mean():+.1f}, {name_a} higher on {int((d[both] > 0).sum())}); Wilcoxon signed-rank p over "
          f"all seeds {c['wilcoxon']:.3g}")


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
    checks = {"random": random_actions, "timing": timing, "ablation": ablation, "heuristic": heuristic,
              "starts": starts}
    checks[sys.argv[1] if len(sys.argv) > 1 else "timing"](*sys.argv[2:])
