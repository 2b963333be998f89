"""Steps per second of the full agent-environment loop: aif, pymdp.legacy and pymdp 1.0, same model and horizon.

    python benchmarks/bench_loop.py                 # T-maze and 7x7 grid world, 100 and 1000 steps
    python benchmarks/bench_loop.py --steps 50 --skip-jax

One step = infer states from the observation, score every policy by EFE, choose an action, step the
environment. Each library runs its own loop:

- aif: ``aif.rollout(aif.Agent(model), env, steps)`` on ``aif.envs``.
- pymdp.legacy: ``Agent.infer_states / infer_policies / sample_action`` and the same ``aif.envs``
  environment (legacy has no loop of its own).
- pymdp 1.0: ``pymdp.envs.rollout`` (a ``lax.scan``) on a ``PymdpEnv`` built from the same A, B, D. "first"
  is the first call of the jitted rollout (tracing and XLA compilation included), "warm" a second call
  with a new key.

One run each; wall-clock time; on a shared machine the numbers move by tens of percent. The last column steps
the environment alone: 50 times pymdp.legacy's rate leaves an agent ``1 / (50 * legacy rate) - 1 / env rate``
seconds per step (about 40 microseconds on the T-maze), the budget of a few dozen NumPy calls.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

import aif
from aif.envs import GridWorld, TMaze
from aif.rollout import rollout

RESULTS = Path(__file__).resolve().parent / "results"

DEMO_WALLS = ((1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (3, 1), (3, 2), (3, 3), (3, 4), (3, 5), (3, 6),
              (5, 0), (5, 1), (5, 2), (5, 3), (5, 4))


def tasks():
    """name -> (environment, model, policy horizon). Episodes never end early, so every run takes all steps."""
    tmaze = TMaze()
    grid = GridWorld((7, 7), start=(0, 0), goals=[(6, 6)], walls=DEMO_WALLS, terminate_at_goal=False)
    return {
        "T-maze (H=1, 4 policies)": (tmaze, tmaze.generative_model(), 1),
        "grid 7x7 (H=1, 5 policies)": (grid, grid.generative_model(), 1),
        "grid 7x7 (H=3, 125 policies)": (grid, grid.generative_model(), 3),
    }


def time_aif(env, model, horizon, steps):
    agent = aif.Agent(model, policy_horizon=horizon)
    start = time.perf_counter()
    rollout(agent, env, steps, seed=0, progress=False)
    return time.perf_counter() - start


def time_legacy(env, model, horizon, steps):
    from pymdp.legacy import utils
    from pymdp.legacy.agent import Agent as LegacyAgent

    def obj(arrays):
        out = utils.obj_array(len(arrays))
        for i, a in enumerate(arrays):
            out[i] = np.array(a)
        return out

    np.random.seed(0)  # legacy breaks ties with the global generator
    control = [f for f, n in enumerate(model.num_controls) if n > 1]
    start = time.perf_counter()
    agent = LegacyAgent(A=obj(model.A), B=obj(model.B), C=obj(model.C), D=obj(model.D), policy_len=horizon,
                        control_fac_idx=control)
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        agent.infer_states([int(o) for o in obs])
        agent.infer_policies()
        action = agent.sample_action()
        obs, *_ = env.step(int(action[env.control_factor]))
    return time.perf_counter() - start


def time_pymdp(env, model, horizon, steps, repeats=1):
    """(first call, fastest of ``repeats`` warm calls) in seconds."""
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    from pymdp.agent import Agent as JaxAgent
    from pymdp.envs.env import PymdpEnv
    from pymdp.envs.rollout import rollout as jax_rollout

    def build():
        batch = lambda x: jnp.asarray(x)[None]  # noqa: E731  (batch of one)
        jenv = PymdpEnv(A=[jnp.asarray(a) for a in env.A], B=[jnp.asarray(b) for b in env.B],
                        D=[jnp.asarray(d) for d in env.D], A_dependencies=env.A_dependencies,
                        B_dependencies=env.B_dependencies)
        agent = JaxAgent(A=[batch(a) for a in model.A], B=[batch(b) for b in model.B],
                         C=[batch(c) for c in model.C], D=[batch(d) for d in model.D],
                         A_dependencies=model.A_dependencies, B_dependencies=model.B_dependencies,
                         policy_len=horizon, action_selection="deterministic", batch_size=1)
        return jenv, agent

    # ``rollout`` builds its scan body afresh on every call, so a plain second call traces and compiles again;
    # jitting the whole rollout (the agent is a pytree argument) lets later calls reuse the program.
    start = time.perf_counter()
    jenv, agent = build()
    run = jax.jit(lambda agent, key: jax_rollout(agent, jenv, num_timesteps=steps, rng_key=key)[1]["action"])
    run(agent, jr.PRNGKey(0)).block_until_ready()
    first = time.perf_counter() - start
    warm = []
    for key in range(1, 1 + repeats):
        start = time.perf_counter()
        run(agent, jr.PRNGKey(key)).block_until_ready()
        warm.append(time.perf_counter() - start)
    return first, min(warm)


def time_env(env, steps):
    """The environment alone (action 0 every step): the floor under any agent's loop."""
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(0)
    return time.perf_counter() - start


def first_step(env, model, horizon):
    """Seconds from a new Agent to its first action (nothing is compiled: this is the whole cost)."""
    obs, _ = env.reset(seed=0)
    start = time.perf_counter()
    aif.Agent(model, policy_horizon=horizon).step(obs)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="100,1000", help="comma-separated episode lengths (default 100,1000)")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per library; the fastest is reported")
    parser.add_argument("--skip-jax", action="store_true", help="leave out pymdp 1.0")
    parser.add_argument("--skip-legacy", action="store_true", help="leave out pymdp.legacy")
    parser.add_argument("--out", default=str(RESULTS),
                        help="folder for bench_loop.md and bench_loop.png (default benchmarks/results; '' none)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    lengths = [int(s) for s in args.steps.split(",")]
    best = lambda f: min(f() for _ in range(args.repeats))  # noqa: E731

    lines = [f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; the fastest of "
             f"{args.repeats} warm runs each", "",
             "| task | steps | aif steps/s | legacy steps/s | pymdp 1.0 first steps/s | pymdp 1.0 warm steps/s "
             "| aif / legacy | aif / 1.0 first | aif / 1.0 warm | env alone steps/s | aif first step ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    rows = []
    for name, (env, model, horizon) in tasks().items():
        time_aif(env, model, horizon, 5)  # import and first-call costs of NumPy/SciPy paths, not ours to count
        for steps in lengths:
            t_aif = best(lambda: time_aif(env, model, horizon, steps))  # noqa: B023
            t_leg = np.nan if args.skip_legacy else best(lambda: time_legacy(env, model, horizon, steps))  # noqa: B023
            t_first, t_warm = (np.nan, np.nan) if args.skip_jax else time_pymdp(env, model, horizon, steps,
                                                                                args.repeats)
            rate = lambda t: f"{steps / t:,.0f}" if np.isfinite(t) else "-"  # noqa: E731, B023
            ratio = lambda t: f"{t / t_aif:.2f}x" if np.isfinite(t) else "-"  # noqa: E731, B023
            line = (f"| {name} | {steps} | {rate(t_aif)} | {rate(t_leg)} | {rate(t_first)} | {rate(t_warm)} "
                    f"| {ratio(t_leg)} | {ratio(t_first)} | {ratio(t_warm)} | {rate(time_env(env, steps))} "
                    f"| {1e3 * first_step(env, model, horizon):.1f} |")
            print(line, flush=True)
            lines.append(line)
            rows.append((f"{name}, {steps}", steps / t_aif, steps / t_leg, steps / t_first, steps / t_warm))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench_loop.md"), "w") as f:
            f.write("`python benchmarks/bench_loop.py`\n\n" + "\n".join(lines) + "\n")
        plot(rows, os.path.join(args.out, "bench_loop.png"))


def plot(rows, path):
    """Steps per second of each library per task, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["aif", "pymdp.legacy", "pymdp 1.0 (first call)", "pymdp 1.0 (warm)"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(labels)
    x = np.arange(len(rows))
    for i, label in enumerate(labels):
        ax.bar(x + (i - 1.5) * width, [r[1 + i] for r in rows], width, label=label)
    ax.set_xticks(x, [r[0] for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("agent-environment steps per second")
    ax.legend(fontsize=8)
    ax.set_title("One agent, one environment: steps per second (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
