"""Cost of sophisticated inference: aif's ``SophisticatedInference`` against pymdp 1.0's ``si_policy_search``.

    python benchmarks/bench_planners.py                  # T-maze and generalised T-maze, depths 2 to 4
    python benchmarks/bench_planners.py --depths 2 3 --steps 5

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

One run each; wall-clock time; on a shared machine the numbers move by tens of percent.
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
from test_sophisticated import (pymdp_agent, pymdp_generalized_tmaze, pymdp_root_G, pymdp_si,  # noqa: E402
                                pymdp_tmaze)


def episode_beliefs(model, true_state, planner, steps, seed=0):
    """Beliefs of an episode driven by ``planner``, with the wall time and tree size of each plan."""
    rng = np.random.default_rng(seed)
    state, prior, out = list(true_state), model.D, []
    for _ in range(steps):
        obs = [int(rng.choice(A_m.shape[0], p=A_m[(slice(None),) + tuple(state[f] for f in deps)]))
               for A_m, deps in zip(model.A, model.A_dependencies)]
        qs = aif.infer_states(model, obs, prior, aif.FixedPoint.pymdp())
        start = time.perf_counter()
        plan = planner.plan(model, qs)
        elapsed = time.perf_counter() - start
        tree = planner.search(model, qs)
        out.append((qs, plan.G, elapsed, tree.num_nodes, tree.peak_nodes))
        u = plan.action
        state = [int(np.argmax(B_f[(slice(None),) + tuple(state[g] for g in deps) + (u[f],)]))
                 for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies))]
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--steps", type=int, default=8, help="steps per episode (beliefs planned from)")
    parser.add_argument("--skip-jax", action="store_true", help="time aif only")
    args = parser.parse_args(argv)

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
