"""Cost of sophisticated inference: aif's ``SophisticatedInference`` against pymdp 1.0's ``si_policy_search``;
aif's tree search (``MCTS``) against depth; the torch search (``aif_deep.sophisticated``) against batch size.

    python benchmarks/bench_planners.py                  # T-maze and generalised T-maze, depths 2 to 4
    python benchmarks/bench_planners.py --depths 2 3 --steps 5
    python benchmarks/bench_planners.py --mcts --out benchmarks/results     # bench_mcts.md and .png
    python benchmarks/bench_planners.py --torch --out benchmarks/results    # bench_si_torch.md
    python benchmarks/bench_planners.py --mcts --torch --quick              # small settings (a test runs this)

For each task and depth, an episode of ``--steps`` steps is driven by aif's planner (pymdp 1.0's settings:
``SophisticatedInference.pymdp(depth)``, thresholds 1/16, gamma 1, entropy stop 0.5, 10 slots per node);
at every step pymdp's search plans from the same belief. Columns:

- nodes: the largest tree of the episode (belief and action nodes; both libraries build the same tree).
- aif ms: mean wall time of one ``plan`` call (NumPy; nothing to compile).
- pymdp first s: the first call of the jitted search (tracing and XLA compilation included).
- pymdp ms: mean of the later calls. pymdp preallocates ``max_nodes`` nodes and its loops scan all of
  them, so its cost follows ``max_nodes`` more than the tree. ``max_nodes`` (shown) is the smallest power
  of two above the most nodes a search held at once (after a level's expansion, before its cuts);
  with fewer, pymdp stops expanding and |dG| shows it.
- max |dG|: the largest difference between the two libraries' G over the episode (pymdp in float64: its
  si.py is loaded with its hard-coded float32/int32 made 64-bit, as in tests/test_sophisticated.py).

``--mcts``: from the first beliefs of pymdp 1.0's T-maze (``aif.envs.PymdpTMaze``, the SI notebook's C) and a 5x5
grid (``aif.envs.GridWorld``), for each depth: the belief nodes of the full tree, the wall time of
``SophisticatedInference`` on that tree (no action cuts: the same values) and with its default cuts, of an
exhaustive ``MCTS`` (budget above the tree; its simulations = expanded nodes) and of ``MCTS`` with fixed budgets,
and whether each chose sophisticated inference's first action. ``--torch``: one batched torch search
(``aif_deep.sophisticated.search``, float64, CPU) against ``SophisticatedInference.plan`` looped over the same
beliefs (T-maze posteriors with random cue beliefs), with max |dG| between them.

One run each (the fastest of ``--repeats`` for the MCTS and torch tables); wall-clock time; on a shared machine the
numbers move by tens of percent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import aif
from aif.planning.sophisticated import SophisticatedInference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_sophisticated import pymdp_agent, pymdp_generalized_tmaze, pymdp_root_G, pymdp_si, pymdp_tmaze  # noqa: E402


def episode_beliefs(model, true_state, planner, steps, seed=0):
    """Beliefs of an episode driven by ``planner``, with the wall time and tree size of each plan."""
    rng = np.random.default_rng(seed)
    state, prior, out = list(true_state), model.D, []
    for _ in range(steps):
        obs = [int(rng.choice(A_m.shape[0], p=A_m[(slice(None),) + tuple(state[f] for f in deps)]))
               for A_m, deps in zip(model.A, model.A_dependencies, strict=True)]
        qs = aif.infer_states(model, obs, prior, aif.FixedPoint.pymdp())
        start = time.perf_counter()
        plan = planner.plan(model, qs)
        elapsed = time.perf_counter() - start
        tree = planner.search(model, qs)
        out.append((qs, plan.G, elapsed, tree.num_nodes, tree.peak_nodes))
        u = plan.action
        state = [int(np.argmax(B_f[(slice(None),) + tuple(state[g] for g in deps) + (u[f],)]))
                 for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies, strict=True))]
        prior = aif.predict(model, qs, u)
    return out


def time_pymdp(si, model, planner, beliefs, max_nodes):
    import jax.numpy as jnp
    import jax.random as jr

    agent = pymdp_agent(model)
    search = si.si_policy_search(
        horizon=planner.depth, max_nodes=max_nodes, max_branching=planner.max_branching,
        policy_prune_threshold=planner.policy_prune_threshold,
        observation_prune_threshold=planner.observation_prune_threshold,
        entropy_stop_threshold=planner.entropy_stop_threshold, prune_penalty=planner.prune_penalty,
        gamma=planner.gamma)
    times, deviation = [], 0.0
    for qs, G, *_ in beliefs:
        start = time.perf_counter()
        q_pi, info = search(agent, qs=[jnp.asarray(q)[None, None] for q in qs], rng_key=jr.PRNGKey(0))
        q_pi.block_until_ready()
        times.append(time.perf_counter() - start)
        deviation = max(deviation, float(np.abs(G - pymdp_root_G(info["tree"], q_pi[0], len(G), planner)).max()))
    return times[0], float(np.mean(times[1:])) if len(times) > 1 else float("nan"), deviation


def fastest(fn, repeats):
    """The result of ``fn()`` and its fastest wall time over ``repeats`` calls (seconds)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def mcts_tasks():
    """(name, model, belief) of the MCTS table: pymdp 1.0's T-maze from its centre, a 5x5 grid from a corner."""
    tmaze = aif.envs.PymdpTMaze(cue_validity=0.95).generative_model(punishment_preference=-6.0)
    grid = aif.envs.GridWorld(shape=(5, 5), start=(0, 0), goals=[(4, 4)]).generative_model()
    return [("T-maze (pymdp 1.0, 5 actions)", tmaze, aif.infer_states(tmaze, [0, 0, 0], tmaze.D)),
            ("grid 5x5 (5 actions)", grid, aif.infer_states(grid, [0], grid.D))]


def mcts_table(depths, budgets, repeats):
    """Rows of the MCTS table (see the module docstring)."""
    from aif.planning import MCTS

    rows = []
    for name, model, qs in mcts_tasks():
        for depth in depths:
            same_tree = SophisticatedInference(depth=depth, policy_prune_threshold=0.0)
            tree, t_same = fastest(lambda: same_tree.search(model, qs), repeats)
            nodes = sum(int(level.alive.sum()) for level in tree.levels[:-1])  # belief nodes with children
            reference = tree.actions[int(np.argmin(tree.levels[0].G_action[0]))]  # its Plan.action
            _, t_default = fastest(lambda: SophisticatedInference(depth=depth).plan(model, qs), repeats)
            row = dict(task=name, depth=depth, nodes=nodes, si_same_ms=1e3 * t_same, si_default_ms=1e3 * t_default)
            full = MCTS(depth=depth, simulations=10 * nodes + 10)
            result, t_full = fastest(lambda: full.search(model, qs), repeats)
            row.update(mcts_full_sims=result.simulations, mcts_full_ms=1e3 * t_full,
                       mcts_full_same=bool((full.plan(model, qs).action == reference).all()))
            for budget in budgets:
                planner = MCTS(depth=depth, simulations=budget)
                plan, t = fastest(lambda: planner.plan(model, qs), repeats)
                row[f"mcts_{budget}_ms"] = 1e3 * t
                row[f"mcts_{budget}_same"] = bool((plan.action == reference).all())
            rows.append(row)
            print(row, flush=True)
    return rows


def torch_table(depths, batches, repeats):
    """Rows of the torch-against-NumPy table (see the module docstring)."""
    import torch

    import aif_deep
    from aif_deep.sophisticated import search

    model = aif.envs.PymdpTMaze(cue_validity=0.95).generative_model(punishment_preference=-6.0)
    tabular = aif_deep.TabularModel.from_aif(model, device="cpu")
    rng = np.random.default_rng(0)
    rows = []
    for depth in depths:
        planner = SophisticatedInference(depth=depth)
        for B in batches:
            beliefs = [[np.eye(5)[rng.integers(5)], rng.dirichlet(np.ones(2))] for _ in range(B)]
            qs = [torch.as_tensor(np.stack([b[f] for b in beliefs])) for f in range(2)]
            found, t_torch = fastest(lambda: search(planner, tabular, qs), repeats)
            G_numpy, t_numpy = fastest(lambda: [planner.plan(model, b).G for b in beliefs], max(1, repeats // 2))
            deviation = float(np.abs(found.G.numpy() - np.stack(G_numpy)).max())
            row = dict(depth=depth, batch=B, nodes=int(found.num_nodes.sum()), numpy_ms=1e3 * t_numpy,
                       torch_ms=1e3 * t_torch, speedup=t_numpy / t_torch, max_dG=deviation)
            rows.append(row)
            print(row, flush=True)
    return rows


def write_mcts(rows, budgets, out, command):
    lines = [f"`{command}`", "", load_line(), "",
             "| task | depth | belief nodes | SI same tree ms | SI default ms | MCTS exhaustive: simulations | ms | "
             "same action | " + " | ".join(f"MCTS {b} ms | same action" for b in budgets) + " |",
             "|---|---:|---:|---:|---:|---:|---:|:-:|" + "---:|:-:|" * len(budgets)]
    for r in rows:
        cells = [r["task"], r["depth"], f"{r['nodes']:,}", f"{r['si_same_ms']:.1f}", f"{r['si_default_ms']:.1f}",
                 f"{r['mcts_full_sims']:,}", f"{r['mcts_full_ms']:.1f}", "yes" if r["mcts_full_same"] else "no"]
        for b in budgets:
            cells += [f"{r[f'mcts_{b}_ms']:.1f}", "yes" if r[f"mcts_{b}_same"] else "no"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    (out / "bench_mcts.md").write_text("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        depth = [r["depth"] for r in mine]
        ax.plot(depth, [r["si_same_ms"] for r in mine], "o-", label=f"{task}: SophisticatedInference (full tree)")
        ax.plot(depth, [r["mcts_full_ms"] for r in mine], "s--", label=f"{task}: MCTS, exhaustive")
        for b in budgets:
            ax.plot(depth, [r[f"mcts_{b}_ms"] for r in mine], "^:", label=f"{task}: MCTS, {b} simulations")
    ax.set_yscale("log")
    ax.set_xticks(sorted({r["depth"] for r in rows}))
    ax.set_xlabel("depth")
    ax.set_ylabel("wall time of one plan (ms)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "bench_mcts.png", dpi=110)


def write_torch(rows, out, command):
    lines = [f"`{command}`", "", load_line(), "",
             "CPU only (no GPU on this machine), float64, one intra-op thread for small work (aif_deep.threads).", "",
             "| depth | beliefs | nodes (all trees) | NumPy loop ms | torch batched ms | NumPy / torch | max abs dG |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['depth']} | {r['batch']:,} | {r['nodes']:,} | {r['numpy_ms']:.1f} | {r['torch_ms']:.1f} | "
                     f"{r['speedup']:.1f}x | {r['max_dG']:.1e} |")
    (out / "bench_si_torch.md").write_text("\n".join(lines) + "\n")


def load_line():
    import os

    return f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (a shared machine)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--steps", type=int, default=8, help="steps per episode (beliefs planned from)")
    parser.add_argument("--skip-jax", action="store_true", help="time aif only")
    parser.add_argument("--mcts", action="store_true", help="the MCTS table instead of the pymdp comparison")
    parser.add_argument("--torch", action="store_true", help="the torch table instead of the pymdp comparison")
    parser.add_argument("--budgets", type=int, nargs="+", default=[32, 128], help="MCTS simulation budgets")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64, 256], help="beliefs per torch search")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="depth 2, budget 8, a batch of 3, one repeat")
    parser.add_argument("--out", default=None, help="folder for bench_mcts.md/.png and bench_si_torch.md")
    args = parser.parse_args(argv)
    if args.mcts or args.torch:
        if args.quick:
            args.depths, args.budgets, args.batches, args.repeats = [2], [8], [3], 1
        command = "python benchmarks/bench_planners.py " + " ".join(argv if argv is not None else sys.argv[1:])
        out = None if args.out is None else Path(args.out)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        if args.mcts:
            rows = mcts_table(args.depths, args.budgets, args.repeats)
            if out is not None:
                write_mcts(rows, args.budgets, out, command)
        if args.torch:
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(1)  # aif_deep.threads does the same for small work; the NumPy side has one too
            try:
                rows = torch_table(args.depths, args.batches, args.repeats)
            finally:
                torch.set_num_threads(before)
            if out is not None:
                write_torch(rows, out, command)
        return

    tasks = {"T-maze (5 actions)": pymdp_tmaze(), "generalised T-maze 3x3 (5 actions)": pymdp_generalized_tmaze()}
    si = None if args.skip_jax else pymdp_si()
    header = f"{'task':36s} {'depth':>5s} {'nodes':>6s} {'aif ms':>8s} {'pymdp first s':>13s} {'pymdp ms':>9s} " \
             f"{'max_nodes':>9s} {'max |dG|':>9s}"
    print(header)
    print("-" * len(header))
    for name, (model, true_state) in tasks.items():
        for depth in args.depths:
            planner = SophisticatedInference.pymdp(depth)
            beliefs = episode_beliefs(model, true_state, planner, args.steps)
            nodes = max(b[3] for b in beliefs)
            aif_ms = 1e3 * float(np.mean([b[2] for b in beliefs]))
            row = f"{name:36s} {depth:5d} {nodes:6d} {aif_ms:8.1f}"
            if si is not None:
                max_nodes = int(2 ** np.ceil(np.log2(max(b[4] for b in beliefs) + 2)))
                first, warm, deviation = time_pymdp(si, model, planner, beliefs, max_nodes)
                row += f" {first:13.2f} {1e3 * warm:9.1f} {max_nodes:9d} {deviation:9.1e}"
            print(row, flush=True)


if __name__ == "__main__":
    main()
