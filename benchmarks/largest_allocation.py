"""The largest allocation a public call makes with default settings: each budgeted call run just under its budget.

    python benchmarks/largest_allocation.py             # every case (a few minutes, about 5 GB of memory)
    python benchmarks/largest_allocation.py --quick     # the same cases at a tenth of their budgets

Every call whose memory grows exponentially or combinatorially estimates its bytes before it allocates and refuses
above a budget (a ``PolicyError`` / ``ParameterError`` naming the sizes and the estimate, and a setting to raise
the budget). This script builds, for each, a model that the default budget just admits (``--fill`` of it), runs the
call under ``tracemalloc`` (NumPy reports its buffers to it; torch's CPU tensors are measured by the process's
peak resident set instead) and prints the estimate, the measured peak and the budget, then checks that the same
call with a slightly larger model is refused before it allocates.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np

import aif
from aif.control import MAX_POLICY_BYTES
from aif.efe import MAX_EFE_BYTES, efe_bytes
from aif.io import MAX_BYTES


def _peak(call):
    """(seconds, bytes traced by tracemalloc at the peak) of ``call()``."""
    tracemalloc.start()
    start = time.perf_counter()
    call()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return time.perf_counter() - start, peak


def _refused(call) -> str:
    try:
        call()
    except aif.AifError as err:
        return type(err).__name__
    return "NOT refused"


def cases(fill: float):
    """(name, budget, estimate, call, call just over the budget) for each budgeted public call."""
    rng = np.random.default_rng(0)
    uniform = lambda m: [np.full(s, 1.0 / s) for s in m.num_states]  # noqa: E731

    # enumerate_policies: int64 (P, H, F) under MAX_POLICY_BYTES; one factor of n controls, horizon 1.
    n, n_over = int(fill * MAX_POLICY_BYTES / 24), MAX_POLICY_BYTES // 24 + 1
    yield (f"enumerate_policies([{n:,}], 1)", MAX_POLICY_BYTES, 24 * n,
           lambda: aif.enumerate_policies([n], 1), lambda: aif.enumerate_policies([n_over], 1))

    # expected_free_energy over every policy of a horizon: EFEOptions.max_bytes. 2 factors of 10 states, 5 controls.
    model = aif.random_model(rng, [10, 10], [10, 10], [5, 5])
    P = int(fill * MAX_EFE_BYTES // efe_bytes(model, 1, 4, aif.efe.DEFAULT_TERMS))
    policies = aif.enumerate_policies(model.num_controls, 5)[:P]
    yield (f"expected_free_energy, {P:,} policies of horizon 5, [10, 10] states", MAX_EFE_BYTES,
           efe_bytes(model, P, 5, aif.efe.DEFAULT_TERMS),
           lambda: aif.expected_free_energy(model, uniform(model), policies),
           lambda: aif.Agent(model, policy_horizon=6))

    # Exact / log_evidence: the joint state space, Exact.max_bytes per belief.
    n = int((fill * aif.Exact().max_bytes / 24) ** (1 / 3))
    over = int((aif.Exact().max_bytes / 24) ** (1 / 3)) + 2
    joint = aif.random_model(rng, [n, n, n], [2], [1, 1, 1])
    yield (f"log_evidence, joint of [{n}, {n}, {n}] states", aif.Exact().max_bytes, 24 * n**3,
           lambda: aif.log_evidence(joint, [0]),
           lambda: aif.log_evidence(aif.random_model(rng, [over] * 3, [2], [1, 1, 1], [[0]]), [0]))

    # SoftQPlanner: the joint transitions of two factors (s and 2 states, 2 and 2 controls), SoftQPlanner.max_bytes.
    planner = aif.planning.SoftQPlanner(horizon=2)
    size = lambda s: 8 * (2 * s) * 4 * (2 * 2 * s + 6)  # noqa: E731
    s = int((fill * planner.max_bytes / 256) ** 0.5)
    s_over = int((planner.max_bytes / 256) ** 0.5) + 2
    soft = aif.random_model(rng, [s, 2], [2], [2, 2])
    yield (f"SoftQPlanner.plan, [{s}, 2] states, [2, 2] controls", planner.max_bytes, size(s),
           lambda: planner.plan(soft, uniform(soft)),
           lambda: planner.plan(aif.random_model(rng, [s_over, 2], [2], [2, 2]), [np.full(s_over, 1 / s_over),
                                                                                  np.full(2, 0.5)]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="run each case at a tenth of its budget")
    parser.add_argument("--fill", type=float, default=None, help="the share of each budget to use (default 0.9)")
    args = parser.parse_args(argv)
    fill = args.fill or (0.09 if args.quick else 0.9)
    gib = lambda b: f"{b / 2**30:.2f} GiB"  # noqa: E731
    print(f"| call (default settings, {fill:.0%} of the budget) | budget | estimate | measured peak | peak / estimate "
          "| seconds | just over the budget |")
    print("|---|---|---|---|---|---|---|")
    for name, budget, estimate, call, over in cases(fill):
        seconds, peak = _peak(call)
        print(f"| {name} | {gib(budget)} | {gib(estimate)} | {gib(peak)} | {peak / estimate:.2f} | {seconds:.1f} "
              f"| {_refused(over)} |", flush=True)
    print(f"\naif.io.read_archive reads at most MAX_BYTES = {gib(MAX_BYTES)} (file and unpacked entries); "
          f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
