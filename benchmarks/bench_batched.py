"""Agent-steps per second of many T-maze agents at once on the CPU: aif_deep with the vector environment against
pymdp 1.0's ``rollout``, same model, same number of steps, in one run; and aif_deep's threading on a busy machine.

    python benchmarks/bench_batched.py                      # batches 1, 16, 256, 1024; 100 steps
    python benchmarks/bench_batched.py --batches 256 --steps 50 --no-plot
    python benchmarks/bench_batched.py --profile 256        # also where a batched step's time goes
    python benchmarks/bench_batched.py --agreement          # q(s), G, q(pi) against pymdp 1.0's batched Agent

One agent-step = infer states from the observation, score every policy by EFE, choose an action, step the
environment, for one agent. The model is the T-maze's (``aif.envs.TMaze().generative_model()``: 2 factors,
3 modalities, 4 one-step policies), deterministic action selection.

- aif_deep: ``aif_deep.rollout(aif_deep.Agent(TabularModel, batch_shape=(N,)), POMDPVectorEnv(TMaze(), N),
  steps)`` on the CPU, float64. "first": the agent and the environment built and the first rollout run; "warm": a
  second rollout. Three paths: "compiled", an agent built after ``aif_deep.fast.compile()`` (called once at the
  start, its CPU time printed; the default path of such an agent: ``aif.fast``'s kernel over every agent in one
  call, agents whose observation and prior are equal to the bit stepped once); "every agent", the same agent with
  ``aif_deep.fast.ONCE = False`` (the kernel run for each of the N agents: the cost when no two agents share their
  inputs); "torch", the torch cycle (an agent built with ``AIF_FAST=0``).
- pymdp 1.0: ``pymdp.envs.rollout`` of a batched ``pymdp.agent.Agent`` in a ``PymdpEnv`` with the same A, B, D,
  jitted as a whole ("first": build, trace and compile, then run; "warm": a second call with a new key).
  ``num_timesteps = steps - 1``, as its scan runs ``num_timesteps + 1`` agent steps.
- pymdp.legacy (batches of at most ``--legacy-max`` agents): one ``pymdp.legacy.agent.Agent`` per agent stepped
  in a Python loop with the same vector environment (legacy has no batch).

The thread table runs aif_deep's torch cycle at several batches with torch's default intra-op threads and with one
thread, on the machine as it is and with two busy processes started beside it (the "loaded" rows), with aif_deep's
thread policy (``aif_deep.threads``: small calls run on one thread) and without it (``SMALL_WORK = 0``: every call on
torch's threads, the behaviour before the policy), the three alternating run by run. The crossover table times
``Agent.step`` alone at growing batches on one and on two threads, under the same load, to place ``SMALL_WORK``.

Wall-clock time, best of ``--repeats`` warm runs; on a shared machine the numbers move by tens of percent, so the
main table also gives agent-steps per CPU-second (the process's CPU time over all its threads, best of the same
runs), which other jobs on the machine change much less. Writes ``benchmarks/results/bench_batched.md`` and
``bench_batched.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import io
import os
import platform
import pstats
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import aif.fast
import aif_deep
import aif_deep.fast
import aif_deep.threads
from aif.envs import POMDPVectorEnv, TMaze

RESULTS = Path(__file__).resolve().parent / "results"


def timed(run, repeats):
    """Best wall-clock seconds and best CPU seconds (``time.process_time``: every thread of this process) of
    ``repeats`` calls of ``run()``."""
    wall, cpu = [], []
    for r in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run(r)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


@contextlib.contextmanager
def torch_cycle():
    """Agents built in the body take the torch cycle (``AIF_FAST=0``) even once the kernels are compiled."""
    before = os.environ.get(aif.fast.ENV_VAR)
    os.environ[aif.fast.ENV_VAR] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[aif.fast.ENV_VAR]
        else:
            os.environ[aif.fast.ENV_VAR] = before


def deep_rollout(N, steps, compiled=False, once=True):
    """(first seconds, warm run) of aif_deep's rollout of N agents over the vector environment: the first rollout
    timed with the agent's and the environment's construction, and ``warm(r)``, a rollout with seed ``r + 1``.
    ``compiled``: the agent built after ``aif_deep.fast.compile()`` (the compiled batched step), with
    ``aif_deep.fast.ONCE = once`` during its rollouts; else on the torch cycle."""
    def build():
        task = TMaze()
        agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(task.generative_model(), device="cpu"),
                               batch_shape=(N,))
        assert (agent._fast is not None) == compiled
        return agent, POMDPVectorEnv(task, N)

    def run(agent, envs, seed):
        before = aif_deep.fast.ONCE
        aif_deep.fast.ONCE = once
        try:
            aif_deep.rollout(agent, envs, steps, seed=seed)
        finally:
            aif_deep.fast.ONCE = before

    start = time.perf_counter()
    if compiled:
        agent, envs = build()
    else:
        with torch_cycle():
            agent, envs = build()
    run(agent, envs, 0)
    return time.perf_counter() - start, lambda r: run(agent, envs, r + 1)


def pymdp_rollout(N, steps):
    """(first seconds, warm run) of pymdp 1.0's jitted rollout of a batch of N agents (as ``deep_rollout``)."""
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    from pymdp.agent import Agent as JaxAgent
    from pymdp.envs.env import PymdpEnv
    from pymdp.envs.rollout import rollout as jax_rollout

    start = time.perf_counter()
    task = TMaze()
    model = task.generative_model()
    batch = lambda x: jnp.broadcast_to(jnp.asarray(x), (N, *np.shape(x)))  # noqa: E731
    env = PymdpEnv(A=[jnp.asarray(a) for a in task.A], B=[jnp.asarray(b) for b in task.B],
                   D=[jnp.asarray(d) for d in task.D], A_dependencies=task.A_dependencies,
                   B_dependencies=task.B_dependencies)
    agent = JaxAgent(A=[batch(a) for a in model.A], B=[batch(b) for b in model.B], C=[batch(c) for c in model.C],
                     D=[batch(d) for d in model.D], A_dependencies=model.A_dependencies,
                     B_dependencies=model.B_dependencies, policy_len=1, action_selection="deterministic",
                     batch_size=N)
    # rollout builds its scan body afresh on every call; jitting the whole rollout lets a second call reuse it
    run = jax.jit(lambda agent, key: jax_rollout(agent, env, num_timesteps=steps - 1, rng_key=key)[1]["action"])
    run(agent, jr.PRNGKey(0)).block_until_ready()
    return time.perf_counter() - start, lambda r: run(agent, jr.PRNGKey(r + 1)).block_until_ready()


def compare(N, steps, repeats):
    """(first, warm, warm CPU) seconds of aif_deep compiled, compiled with every agent stepped (``ONCE`` off; its
    first is that of the compiled agent), aif_deep on the torch cycle and pymdp 1.0 (``deep_rollout``,
    ``pymdp_rollout``), their warm runs alternating, best of ``repeats`` each (``timed``): a load that moves while they
    run falls on all of them."""
    makers = (lambda: deep_rollout(N, steps, compiled=True), lambda: deep_rollout(N, steps, compiled=True, once=False),
              lambda: deep_rollout(N, steps), lambda: pymdp_rollout(N, steps))
    firsts, runs = zip(*(make() for make in makers), strict=True)
    times = [[] for _ in runs]
    for r in range(repeats):
        for run, record in zip(runs, times, strict=True):
            record.append(timed(lambda _, run=run: run(r), 1))
    return [(first, *np.min(t, 0)) for first, t in zip(firsts, times, strict=True)]


def legacy_rollout(N, steps):
    """Seconds of N pymdp.legacy agents stepped one by one for ``steps`` steps (their construction included)."""
    from pymdp.legacy import utils
    from pymdp.legacy.agent import Agent as LegacyAgent

    def obj(arrays):
        out = utils.obj_array(len(arrays))
        for i, a in enumerate(arrays):
            out[i] = np.array(a)
        return out

    task = TMaze()
    model = task.generative_model()
    np.random.seed(0)  # legacy breaks ties with the global generator
    start = time.perf_counter()
    agents = [LegacyAgent(A=obj(model.A), B=obj(model.B), C=obj(model.C), D=obj(model.D), policy_len=1,
                          control_fac_idx=[0], action_selection="deterministic") for _ in range(N)]
    envs = POMDPVectorEnv(task, N)
    obs, _ = envs.reset(seed=0)
    for _ in range(steps):
        actions = np.empty(N, dtype=np.int64)
        for i, agent in enumerate(agents):
            agent.infer_states([int(o) for o in obs[i]])
            agent.infer_policies()
            actions[i] = int(agent.sample_action()[0])
        obs, *_ = envs.step(actions)
    return time.perf_counter() - start


@contextlib.contextmanager
def busy(processes, settle=0.5):
    """``processes`` busy loops beside this one (the "loaded machine") for ``settle`` seconds before the body, so
    that the load average has seen them (``aif_deep.threads.free_cores`` reads it), stopped on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        time.sleep(settle)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


@contextlib.contextmanager
def torch_threads(n, policy):
    """torch's intra-op threads ``n`` (``None``: the default) with aif_deep's thread policy on or off (off: every
    call on the threads as set, as before the policy)."""
    threads = aif_deep.threads
    before, small, free = torch.get_num_threads(), threads.SMALL_WORK, threads.free_cores
    if n is not None:
        torch.set_num_threads(n)
    if not policy:
        threads.SMALL_WORK, threads.free_cores = 0, lambda: os.cpu_count() or 1
    try:
        yield
    finally:
        torch.set_num_threads(before)
        threads.SMALL_WORK, threads.free_cores = small, free


def thread_rates(N, steps, repeats):
    """Best wall-clock and best CPU seconds (``timed``) of a rollout of N agents with aif_deep's default (policy
    on), torch's default threads with the policy off, and one thread, the three alternating run by run (the load
    moves while they run): ``[(wall, cpu)] * 3``."""
    task = TMaze()
    with torch_cycle():
        agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(task.generative_model(), device="cpu"), batch_shape=(N,))
    envs = POMDPVectorEnv(task, N)
    aif_deep.rollout(agent, envs, steps, seed=0)
    best = [(np.inf, np.inf)] * 3
    for r in range(repeats):
        for i, (n, policy) in enumerate(((None, True), (None, False), (1, True))):
            with torch_threads(n, policy):
                wall, cpu = timed(lambda _: aif_deep.rollout(agent, envs, steps, seed=r + 1), 1)
            best[i] = (min(best[i][0], wall), min(best[i][1], cpu))
    return best


def step_seconds(N, steps, configs, repeats=3):
    """Best seconds per ``Agent.step`` of N T-maze agents (the same observations) under each of ``configs``
    (``(threads, policy)`` pairs for ``torch_threads``), the configurations alternating run by run, ``steps`` calls
    per run."""
    task = TMaze()
    with torch_cycle():
        agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(task.generative_model(), device="cpu"), batch_shape=(N,))
    obs, _ = POMDPVectorEnv(task, N).reset(seed=0)
    for _ in range(3):
        agent.step(obs)
    best = [np.inf] * len(configs)
    for _ in range(repeats):
        for i, (n, policy) in enumerate(configs):
            with torch_threads(n, policy):
                start = time.perf_counter()
                for _ in range(steps):
                    agent.step(obs)
                best[i] = min(best[i], (time.perf_counter() - start) / steps)
    return best


def profile_step(N, steps):
    """Where a batched ``Agent.step`` and the vector environment's step spend their time: cProfile's functions and
    torch profiler's operators, as text."""
    from torch.profiler import ProfilerActivity, profile

    task = TMaze()
    with torch_cycle():
        agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(task.generative_model(), device="cpu"), batch_shape=(N,))
    envs = POMDPVectorEnv(task, N)
    obs, _ = envs.reset(seed=0)
    aif_deep.rollout(agent, envs, 3, seed=0)
    out = io.StringIO()
    prof = cProfile.Profile()
    prof.enable()
    aif_deep.rollout(agent, envs, steps, seed=1)
    prof.disable()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
    with profile(activities=[ProfilerActivity.CPU]) as tprof:
        for _ in range(steps):
            agent.step(obs)
    out.write(tprof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    return out.getvalue()


def agreement(task, N, T, H, compiled):
    """Max |difference| of q(s), G and q(pi) between one batched ``aif_deep.Agent.pymdp`` stepped over the vector
    environment and pymdp 1.0's batched ``Agent`` fed the same observations (float64), over ``T`` steps; and between
    it and one ``aif.Agent.pymdp`` per agent. ``compiled``: the aif_deep agent takes the compiled step (else the torch
    cycle)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from pymdp.agent import Agent as JaxAgent

    import aif

    model = task.generative_model()
    with contextlib.nullcontext() if compiled else torch_cycle():
        agent = aif_deep.Agent.pymdp(aif_deep.TabularModel.from_aif(model, device="cpu"), policy_horizon=H,
                                     batch_shape=(N,))
    assert (agent._fast is not None) == compiled
    batch = lambda x: jnp.broadcast_to(jnp.asarray(x), (N, *np.shape(x)))  # noqa: E731
    ref = JaxAgent(A=[batch(a) for a in model.A], B=[batch(b) for b in model.B], C=[batch(c) for c in model.C],
                   D=[batch(d) for d in model.D], A_dependencies=model.A_dependencies,
                   B_dependencies=model.B_dependencies, policy_len=H, action_selection="deterministic", batch_size=N)
    singles = [aif.Agent.pymdp(model, policy_horizon=H) for _ in range(N)]
    envs = POMDPVectorEnv(task, N)
    obs, _ = envs.reset(seed=0)
    prior, worst = ref.D, {"q(s)": 0.0, "G": 0.0, "q(pi)": 0.0, "aif.Agent": 0.0}
    for _ in range(T):
        action = agent.step(obs)
        qs = ref.infer_states([jnp.asarray(obs[:, m])[:, None] for m in range(obs.shape[1])], prior)
        q_pi, neg_efe = ref.infer_policies(qs)
        for key, x, y in (("G", -np.asarray(neg_efe), agent.G), ("q(pi)", np.asarray(q_pi), agent.q_pi),
                          *(("q(s)", np.asarray(q[:, -1]), a) for q, a in zip(qs, agent.qs, strict=True))):
            worst[key] = max(worst[key], float(np.abs(x - y.numpy()).max()))
        for i, single in enumerate(singles):
            single.step([int(o) for o in obs[i]])
            pairs = [(single.G, agent.G[i]), (single.q_pi, agent.q_pi[i])]
            pairs += [(q, a[i]) for q, a in zip(single.qs, agent.qs, strict=True)]
            worst["aif.Agent"] = max(worst["aif.Agent"], *(float(np.abs(x - y.numpy()).max()) for x, y in pairs))
        prior = ref.update_empirical_prior(jnp.asarray(action.numpy()), qs)
        obs, *_ = envs.step(action[:, envs.control_factor].numpy())
    return worst


def rate(N, steps, seconds):
    return f"{N * steps / seconds:,.0f}" if np.isfinite(seconds) else "-"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", default="1,16,256,1024", help="comma-separated numbers of agents")
    parser.add_argument("--steps", type=int, default=100, help="steps per rollout (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs; the best is reported")
    parser.add_argument("--legacy-max", type=int, default=16, help="largest batch run with pymdp.legacy")
    parser.add_argument("--thread-batches", default="16,256,4096", help="batches of the thread table ('' skips)")
    parser.add_argument("--thread-repeats", type=int, default=5, help="alternating runs per setting, thread table")
    parser.add_argument("--thread-steps", type=int, default=20,
                        help="steps per rollout in the thread table (policy off is slow on a loaded machine)")
    parser.add_argument("--crossover", default="256,1024,4096,16384", help="batches of the crossover table ('' skips)")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="seconds of load before the crossover table (the one-minute load average catches up)")
    parser.add_argument("--profile", type=int, default=0, help="print a profile of this batch's step (0: none)")
    parser.add_argument("--agreement", action="store_true",
                        help="only print the batched agent's agreement with pymdp 1.0 and aif (no timings)")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "bench_batched.md"))
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.agreement:
        from aif.envs import CueChaining

        aif_deep.fast.compile()
        for task, N, T, H in ((TMaze(reward_prob=0.8, cue_validity=0.9), 32, 12, 1), (TMaze(), 16, 8, 2),
                              (CueChaining(), 8, 10, 1)):
            for compiled in (True, False):
                worst = agreement(task, N, T, H, compiled)
                print(f"{type(task).__name__}, {N} agents, {T} steps, horizon {H}, "
                      f"{'compiled' if compiled else 'torch cycle'}: max |difference| "
                      + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
        return
    batches = [int(b) for b in args.batches.split(",")]
    steps = args.steps
    start = time.process_time()
    ready = aif_deep.fast.compile()
    compile_cpu = time.process_time() - start
    if not ready:
        raise SystemExit(f"the kernels are unavailable: {aif.fast.status()} {aif_deep.fast.status()}")
    lines = [f"# benchmarks/bench_batched.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip(),
             f"# {datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
             f"load average {os.getloadavg()[0]:.2f} at the start; torch {torch.__version__} "
             f"({torch.get_num_threads()} intra-op threads by default); aif_deep.fast.compile() in this process: "
             f"{compile_cpu:.2f} s of CPU (numba's cache)", "",
             f"T-maze, {steps} steps per rollout; agent-steps per second (agents x steps / wall time, best of "
             f"{args.repeats} warm runs, the four alternating), and per CPU-second (agents x steps / the process's CPU "
             "time over every thread, best of the same runs: on a shared machine, the cost of the work itself). "
             "'compiled': `aif_deep.rollout` of an agent built after `aif_deep.fast.compile()` (the default path of "
             "such an agent; agents with bit-equal inputs stepped once); 'every agent': the same with "
             "`aif_deep.fast.ONCE = False` (the kernel run for each of the N agents); 'torch': the torch cycle "
             "(`AIF_FAST=0`). 'first': the agent and the environment built and one rollout run (the kernels already "
             "compiled; for pymdp 1.0, its compilation included).", "",
             "| agents | compiled warm | compiled first | every agent warm | torch warm | pymdp 1.0 warm "
             "| pymdp 1.0 first | pymdp.legacy | compiled / pymdp 1.0 warm | every agent / pymdp 1.0 warm "
             "| compiled per CPU-s | every agent per CPU-s | torch per CPU-s | pymdp 1.0 per CPU-s "
             "| compiled / pymdp 1.0 per CPU-s | every agent / pymdp 1.0 per CPU-s | torch / pymdp 1.0 per CPU-s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    rows = []
    for N in batches:
        (c_first, c_warm, c_cpu), (_, e_warm, e_cpu), (_, d_warm, d_cpu), (j_first, j_warm, j_cpu) = compare(
            N, steps, args.repeats)
        legacy = legacy_rollout(N, steps) if N <= args.legacy_max else np.nan
        rows.append((N, c_warm, c_first, j_warm, j_first, legacy, c_cpu, j_cpu, e_warm, e_cpu, d_warm, d_cpu))
        line = (f"| {N:,} | {rate(N, steps, c_warm)} | {rate(N, steps, c_first)} | {rate(N, steps, e_warm)} "
                f"| {rate(N, steps, d_warm)} | {rate(N, steps, j_warm)} | {rate(N, steps, j_first)} "
                f"| {rate(N, steps, legacy)} | {j_warm / c_warm:.2f}x | {j_warm / e_warm:.2f}x "
                f"| {rate(N, steps, c_cpu)} | {rate(N, steps, e_cpu)} | {rate(N, steps, d_cpu)} "
                f"| {rate(N, steps, j_cpu)} | {j_cpu / c_cpu:.2f}x | {j_cpu / e_cpu:.2f}x | {j_cpu / d_cpu:.2f}x |")
        lines.append(line)
        print(line, flush=True)

    if args.thread_batches:
        T = args.thread_steps
        head = ["", f"Threads (the torch cycle; the compiled step runs on one thread): {T} steps, agent-steps per "
                "second (wall) and per CPU-second; 'loaded' runs beside two "
                f"busy processes. The configurations alternate run by run, best of {args.thread_repeats} each. Policy "
                "off with torch's default threads, a thread waiting at the end of a parallel region (softmax and the "
                "matrix products open one at any size) spins until the other is scheduled: its CPU time grows too.",
                "",
                "| agents | machine | aif_deep default (thread policy on) | torch default threads, policy off "
                "| one thread | default / one thread | default per CPU-s | policy off per CPU-s | one thread per CPU-s "
                "| default / one thread per CPU-s |",
                "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        lines += head
        print("\n".join(head), flush=True)
        for N in [int(b) for b in args.thread_batches.split(",")]:
            for name, load in (("as it is", 0), ("loaded", 2)):
                with busy(load):
                    best = thread_rates(N, T, args.thread_repeats)
                walls, cpus = zip(*best, strict=True)
                line = (f"| {N:,} | {name} | {' | '.join(rate(N, T, w) for w in walls)} | {walls[2] / walls[0]:.2f}x "
                        f"| {' | '.join(rate(N, T, c) for c in cpus)} | {cpus[2] / cpus[0]:.2f}x |")
                lines.append(line)
                print(line, flush=True)

    if args.crossover:
        sizes = [int(b) for b in args.crossover.split(",")]
        head = ["", "Crossover: ms per `Agent.step` on the torch cycle (no environment) on one and on two threads "
                "(policy off), and with "
                "aif_deep's default (policy on, torch's default threads), alternating, best of 3 runs of 10 steps; "
                f"loaded as above ({args.settle:g} s of load "
                "first, so that the load average sees it); `SMALL_WORK` = "
                f"{aif_deep.threads.SMALL_WORK:,} elements (the T-maze agent's work is 68 x agents).", "",
                "| agents | work (elements) | one thread | two threads | aif_deep default |",
                "|---:|---:|---:|---:|---:|"]
        lines += head
        print("\n".join(head), flush=True)
        with busy(2, settle=args.settle):
            for N in sizes:
                cells = [f"{t * 1e3:.2f}" for t in step_seconds(N, 10, ((1, False), (2, False), (None, True)))]
                line = f"| {N:,} | {68 * N:,} | {' | '.join(cells)} |"
                lines.append(line)
                print(line, flush=True)

    Path(args.out).write_text("\n".join(lines) + "\n")
    if not args.no_plot:
        plot(rows, steps, Path(args.out).with_suffix(".png"))
    if args.profile:
        print(profile_step(args.profile, steps))


def plot(rows, steps, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    N = np.array([r[0] for r in rows])
    fig, (ax, ax_cpu) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for col, label, style, color in ((1, "aif_deep compiled (warm)", "o-", "C0"),
                                     (2, "aif_deep compiled (first)", "o:", "C0"),
                                     (8, "aif_deep compiled, every agent stepped", "o--", "C1"),
                                     (10, "aif_deep torch cycle", "d-", "C3"), (3, "pymdp 1.0 (warm)", "s-", "C2"),
                                     (4, "pymdp 1.0 (first, compile included)", "s:", "C2"),
                                     (5, "pymdp.legacy", "^-", "C4")):
        seconds = np.array([r[col] for r in rows])
        keep = np.isfinite(seconds)
        if keep.any():
            ax.plot(N[keep], N[keep] * steps / seconds[keep], style, color=color, label=label)
    for col, label, style, color in ((6, "aif_deep compiled", "o-", "C0"),
                                     (9, "aif_deep compiled, every agent stepped", "o--", "C1"),
                                     (11, "aif_deep torch cycle", "d-", "C3"), (7, "pymdp 1.0 (warm)", "s-", "C2")):
        ax_cpu.plot(N, N * steps / np.array([r[col] for r in rows]), style, color=color, label=label)
    for a, title in ((ax, "per second (wall clock)"), (ax_cpu, "per CPU-second (all threads)")):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("agents (batch)")
        a.set_title(f"T-maze, {steps} steps, CPU: agent-steps {title}", fontsize=10)
        a.legend(fontsize=8)
    ax.set_ylabel("agent-steps")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
