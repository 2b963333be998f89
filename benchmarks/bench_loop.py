"""Steps per second of the full agent-environment loop: aif, pymdp.legacy and pymdp 1.0, same model and horizon.

    python benchmarks/bench_loop.py                 # T-maze and 7x7 grid world, 100 and 1000 steps
    python benchmarks/bench_loop.py --steps 50 --skip-jax

One step = infer states from the observation, score every policy by EFE, choose an action, step the
environment. Each library runs its own loop:

- aif: ``aif.rollout(aif.Agent(model), env, steps)`` on ``aif.envs``, three times: with the compiled step
  (``aif.fast``, its kernel made beforehand by ``aif.fast.compile()``), which runs the episode in compiled calls,
  the environment's steps in the agent's loop (``aif.fast.run_episode``, "aif compiled", as pymdp 1.0's rollout
  is one compiled scan); the same step by step (``aif.fast.EPISODES = False``: one compiled call per agent step
  and the environment's step in Python); and on the NumPy path (``AIF_FAST=0``). "bare loop" is
  ``env.step(agent.step(obs))`` with the compiled step and no ``Trajectory`` kept.
- pymdp.legacy: ``Agent.infer_states / infer_policies / sample_action`` and the same ``aif.envs``
  environment (legacy has no loop of its own).
- pymdp 1.0: ``pymdp.envs.rollout`` (a ``lax.scan``) on a ``PymdpEnv`` built from the same A, B, D. "first"
  is the first call of the jitted rollout (tracing and XLA compilation included), "warm" a second call
  with a new key.

The fastest of ``--repeats`` runs each; wall-clock time; on a shared machine the numbers move by tens of percent,
so compare the ratios of one run. "aif first step" is the first ``Agent.step`` of a fresh Python process (nothing
compiled: the NumPy path serves it); "kernel ready" is how long ``aif.fast.compile()`` took in this process (numba's
import and its cached machine code, or a compilation when the cache is cold). The environment alone is the floor
under any agent's loop.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import aif
from aif.envs import GridWorld, TMaze
from aif.rollout import as_agent_env, rollout

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


def now():
    """(wall-clock, CPU time of this process) in seconds: on a loaded machine the CPU time moves less."""
    return np.array([time.perf_counter(), time.process_time()])


def build_agent(model, horizon, compiled):
    """``aif.Agent(model, policy_horizon=horizon)``, with the compiled step (``aif.fast``) or without."""
    saved = os.environ.get(aif.fast.ENV_VAR)
    os.environ[aif.fast.ENV_VAR] = "1" if compiled else "0"  # read when the agent is built
    try:
        return aif.Agent(model, policy_horizon=horizon)
    finally:
        os.environ.pop(aif.fast.ENV_VAR) if saved is None else os.environ.__setitem__(aif.fast.ENV_VAR, saved)


def time_aif(env, model, horizon, steps, compiled=True, episodes=True):
    agent = build_agent(model, horizon, compiled)
    saved, aif.fast.EPISODES = aif.fast.EPISODES, episodes
    try:
        start = now()
        rollout(agent, env, steps, seed=0, progress=False)
        return now() - start
    finally:
        aif.fast.EPISODES = saved


def time_bare(env, model, horizon, steps):
    """The compiled agent and the environment with nothing recorded: ``obs = env.step(agent.step(obs))``."""
    agent = build_agent(model, horizon, True)
    env = as_agent_env(env, model)
    start = now()
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        obs, *_ = env.step(agent.step(obs))
    return now() - start


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
    start = now()
    agent = LegacyAgent(A=obj(model.A), B=obj(model.B), C=obj(model.C), D=obj(model.D), policy_len=horizon,
                        control_fac_idx=control)
    obs, _ = env.reset(seed=0)
    for _ in range(steps):
        agent.infer_states([int(o) for o in obs])
        agent.infer_policies()
        action = agent.sample_action()
        obs, *_ = env.step(int(action[env.control_factor]))
    return now() - start


def time_pymdp(env, model, horizon, steps, repeats=1):
    """(first call's wall-clock seconds, the fastest of ``repeats`` warm calls as ``now()`` differences)."""
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
        start = now()
        run(agent, jr.PRNGKey(key)).block_until_ready()
        warm.append(now() - start)
    return first, np.min(warm, axis=0)


def time_env(env, steps):
    """The environment alone (action 0 every step): the floor under any agent's loop."""
    env.reset(seed=0)
    start = now()
    for _ in range(steps):
        env.step(0)
    return now() - start


FIRST_STEP = """
import sys, time
sys.path.insert(0, {here!r})
import bench_loop
env, model, horizon = bench_loop.tasks()[{name!r}]
obs, _ = env.reset(seed=0)
import aif
start = time.perf_counter()
aif.Agent(model, policy_horizon=horizon).step(obs)
print(time.perf_counter() - start)
"""


def first_step(name):
    """Seconds from a new Agent to its first action in a fresh process (nothing compiled before it), the fastest
    of three processes."""
    code = FIRST_STEP.format(here=str(Path(__file__).resolve().parent), name=name)
    return min(float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                    text=True).stdout.split()[-1]) for _ in range(3))


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
    best = lambda f: np.min([f() for _ in range(args.repeats)], axis=0)  # noqa: E731  (wall, CPU) each fastest

    first = {name: first_step(name) for name in tasks()}  # fresh processes, before anything is compiled here
    start = time.perf_counter()
    compiled = aif.fast.compile()
    ready = time.perf_counter() - start
    if not compiled:
        print(f"the compiled step is unavailable: {aif.fast.status()['error']}; its columns are the NumPy path")
    lines = [f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; the fastest of "
             f"{args.repeats} runs each; kernel ready in {ready:.2f} s (aif.fast.compile() in this process)", "",
             "| task | steps | aif compiled steps/s | aif step by step steps/s | aif NumPy path steps/s "
             "| aif bare loop steps/s | legacy steps/s "
             "| pymdp 1.0 first steps/s | pymdp 1.0 warm steps/s | aif compiled / 1.0 warm | aif NumPy / 1.0 warm "
             "| aif compiled / legacy | env alone steps/s | aif first step ms |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    rows, cpu_lines = [], []
    missing = np.array([np.nan, np.nan])
    for name, (env, model, horizon) in tasks().items():
        for path in (True, False):
            time_aif(env, model, horizon, 5, path)  # first-call costs of NumPy/SciPy paths, not ours to count
        for steps in lengths:
            t_fast = best(lambda: time_aif(env, model, horizon, steps, True))  # noqa: B023
            t_steps = best(lambda: time_aif(env, model, horizon, steps, True, False))  # noqa: B023
            t_numpy = best(lambda: time_aif(env, model, horizon, steps, False))  # noqa: B023
            t_bare = best(lambda: time_bare(env, model, horizon, steps))  # noqa: B023
            t_leg = missing if args.skip_legacy else best(lambda: time_legacy(env, model, horizon, steps))  # noqa: B023
            t_first, t_warm = (np.nan, missing) if args.skip_jax else time_pymdp(env, model, horizon, steps,
                                                                                 args.repeats)
            t_env = best(lambda: time_env(env, steps))  # noqa: B023
            rate = lambda t: f"{steps / t:,.0f}" if np.isfinite(t) else "-"  # noqa: E731, B023
            ratio = lambda t, t_aif: f"{t / t_aif:.2f}x" if np.isfinite(t) else "-"  # noqa: E731
            per_step = lambda t: f"{1e6 * t / steps:.1f}" if np.isfinite(t) else "-"  # noqa: E731, B023
            line = (f"| {name} | {steps} | {rate(t_fast[0])} | {rate(t_steps[0])} | {rate(t_numpy[0])} "
                    f"| {rate(t_bare[0])} "
                    f"| {rate(t_leg[0])} | {rate(t_first)} | {rate(t_warm[0])} | {ratio(t_warm[0], t_fast[0])} "
                    f"| {ratio(t_warm[0], t_numpy[0])} | {ratio(t_leg[0], t_fast[0])} | {rate(t_env[0])} "
                    f"| {1e3 * first[name]:.1f} |")
            cpu_lines.append(f"| {name} | {steps} | {per_step(t_fast[1])} | {per_step(t_steps[1])} "
                             f"| {per_step(t_numpy[1])} "
                             f"| {per_step(t_bare[1])} | {per_step(t_leg[1])} | {per_step(t_warm[1])} "
                             f"| {ratio(t_warm[1], t_fast[1])} | {ratio(t_warm[1], t_bare[1])} "
                             f"| {per_step(t_env[1])} |")
            print(line, flush=True)
            lines.append(line)
            rows.append((f"{name}, {steps}", steps / t_fast[0], steps / t_steps[0], steps / t_numpy[0],
                         steps / t_leg[0], steps / t_first, steps / t_warm[0]))
    cpu_table = ["", "CPU time of this process per step (microseconds; pymdp 1.0's XLA may run on both cores, so "
                 "its CPU time can exceed its wall-clock time), the least of the same runs:", "",
                 "| task | steps | aif compiled | aif step by step | aif NumPy path | aif bare loop | legacy "
                 "| pymdp 1.0 warm "
                 "| aif compiled / 1.0 warm | aif bare loop / 1.0 warm | env alone |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *cpu_lines]
    print("\n".join(cpu_table), flush=True)
    lines += cpu_table
    lines.append(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        command = " ".join(["python benchmarks/bench_loop.py", *(sys.argv[1:] if argv is None else argv)])
        with open(os.path.join(args.out, "bench_loop.md"), "w") as f:
            f.write(f"`{command}` (commit {commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
                    + "\n".join(lines) + "\n")
        plot(rows, os.path.join(args.out, "bench_loop.png"))


def commit():
    """The checkout's commit (``git rev-parse --short HEAD``), with ``+`` when a file of ``aif/`` or this script
    differs from it; ``?`` without git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, check=True, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "../aif",
                                "bench_loop.py"], cwd=here, check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+" if dirty else "")


def plot(rows, path):
    """Steps per second of each library per task, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["aif (compiled episode)", "aif (compiled, step by step)", "aif (NumPy path)", "pymdp.legacy",
              "pymdp 1.0 (first call)", "pymdp 1.0 (warm)"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(labels)
    x = np.arange(len(rows))
    for i, label in enumerate(labels):
        ax.bar(x + (i - (len(labels) - 1) / 2) * width, [r[1 + i] for r in rows], width, label=label)
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
