"""Policy evaluations per second of the batched evaluator: aif, aif_deep (CPU and CUDA), pymdp.legacy, pymdp 1.0.

    python benchmarks/bench_evaluator.py            # every size the machine can do in reasonable time
    python benchmarks/bench_evaluator.py --quick    # a small subset (a minute or two on a laptop CPU)

Model: the synthetic model of ``bench_efe.py`` -- two factors (25 and 2 states), two modalities (25 and 3
outcomes), all actions on the first factor. Sizes: 5 actions at horizons 3, 4, 5; 4 actions at horizons 6, 7,
8, 10 (up to 1,048,576 policies); batches of 1, 64 and 256 beliefs. One result = G and q(pi) of every policy
for every belief of the batch (pymdp 1.0's EFE options: C as given, logs clipped at machine epsilon).

- aif: ``aif.expected_free_energy`` + ``policy_posterior``, once per belief (NumPy, float64).
- aif_deep: ``aif_deep.PolicyEvaluator(...).posterior`` (the full policy tree by broadcasting, G and q(pi)) for
  the whole batch in one call, float32; on the CPU and, when present, on CUDA (synchronised before the clock
  stops). The evaluator is built inside the first call; on CUDA the second call captures a CUDA graph (not
  timed: it is neither the first result nor a warm call) and warm calls replay it.
- pymdp.legacy: ``update_posterior_policies_factorized`` once per belief (a Python loop over policies).
- pymdp 1.0: ``update_posterior_policies`` jitted and vmapped over the batch (float32).

Columns: policy evaluations per second (policies x batch / warm wall time, median of a few calls), time to the
first result (first call, compilation included; CUDA's context and JAX's backend are started before any
clock runs, as a process does once), and peak memory above the process's level before the call
(CUDA: ``torch.cuda.max_memory_allocated``; otherwise resident memory sampled every 2 ms, an estimate).
Sizes whose estimated time exceeds ``--max-seconds`` for a library are skipped with a note. Timings are
reported, never asserted; on a shared machine they move by tens of percent.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np

import aif

RESULTS = Path(__file__).resolve().parent / "results"  # plots go here by default, never the current folder
SIZES = [(5, 3), (5, 4), (5, 5), (4, 6), (4, 7), (4, 8), (4, 10)]
BATCHES = [1, 64, 256]
QUICK_SIZES = [(5, 3), (4, 6)]
QUICK_BATCHES = [1, 64]
# Rough costs in seconds per policy evaluation (one policy, one belief) on a 2-core CPU, to skip sizes that
# would take too long; the CUDA figure is a guess for a data-centre GPU.
COST_GUESS = {"aif": 1e-5, "aif_deep cpu": 1e-5, "aif_deep cuda": 2e-9, "pymdp.legacy": 1e-2,
              "pymdp 1.0": 2e-6, "pymdp 1.0 gpu": 2e-8}


def synthetic_model(num_actions, seed=0):
    rng = np.random.default_rng(seed)
    return aif.random_model(rng, [25, 2], [25, 3], [num_actions, 1], concentration=0.5), rng


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms from /proc/self/statm."""

    def __init__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def __enter__(self):
        self.base = self.peak = self._rss()
        self._stop = False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.bytes = self.peak - self.base


def run_timed(fn, sync, repeats, device_memory=None):
    """(first-call seconds, median warm seconds, peak bytes)."""
    if device_memory is not None:
        device_memory("reset")
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        fn()
        sync()
        first = time.perf_counter() - t0
        fn()  # settles what the second call does once (a CUDA graph capture); not timed
        sync()
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            warm.append(time.perf_counter() - t0)
    peak = device_memory("peak") if device_memory is not None else mem.bytes
    return first, float(np.median(warm)) if warm else first, peak


def make_aif(model, qs_batch, policies):
    options = aif.EFEOptions.pymdp()

    def fn():
        for qs in qs_batch:
            G, _ = aif.expected_free_energy(model, qs, policies, options=options)
            aif.policy_posterior(G)
    return fn, lambda: None, None


def make_deep(model, qs_batch, horizon, device):
    import torch

    import aif_deep

    tm = aif_deep.TabularModel.from_aif(model, device=device, dtype=torch.float32)
    qs = [torch.tensor(np.stack([q[f] for q in qs_batch]), dtype=torch.float32, device=device)
          for f in range(model.num_factors)]
    built = {}

    def fn():
        if "evaluator" not in built:  # built in the first call: its set-up counts towards the first result
            built["evaluator"] = aif_deep.PolicyEvaluator(tm, horizon, options=aif.EFEOptions.pymdp())
        built["evaluator"].posterior(qs, check_values=False)  # as an Agent calls it: no host synchronisation

    if device == "cuda":
        def device_memory(what):
            if what == "reset":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                device_memory.base = torch.cuda.memory_allocated()
                return None
            return torch.cuda.max_memory_allocated() - device_memory.base
        return fn, torch.cuda.synchronize, device_memory
    return fn, lambda: None, None


def make_legacy(model, qs_batch, policies):
    from pymdp.legacy import control, utils

    def obj(xs):
        out = utils.obj_array(len(xs))
        for i, x in enumerate(xs):
            out[i] = x
        return out

    A, B, C = obj(model.A), obj(model.B), obj(model.C)
    policy_list = list(policies)

    def fn():
        for qs in qs_batch:
            control.update_posterior_policies_factorized(obj(qs), A, B, C, model.A_dependencies,
                                                         model.B_dependencies, policy_list)
    return fn, lambda: None, None


def make_pymdp(model, qs_batch, policies):
    import jax
    import jax.numpy as jnp
    from pymdp import control

    P = len(policies)
    pol = jnp.asarray(policies)
    E = jnp.full(P, 1.0 / P, dtype=jnp.float32)
    A = [jnp.asarray(a, dtype=jnp.float32) for a in model.A]
    B = [jnp.asarray(b, dtype=jnp.float32) for b in model.B]
    C = [jnp.asarray(c, dtype=jnp.float32) for c in model.C]
    qs = [jnp.asarray(np.stack([q[f] for q in qs_batch]), dtype=jnp.float32) for f in range(model.num_factors)]

    def one(qs_one):
        return control.update_posterior_policies(pol, qs_one, A, B, C, E, None, None, model.A_dependencies,
                                                 model.B_dependencies, gamma=16.0)

    batched = jax.jit(jax.vmap(one))
    out = {}

    def fn():
        out["r"] = batched(qs)

    return fn, lambda: jax.block_until_ready(out["r"]), None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small subset of sizes and batches")
    parser.add_argument("--repeats", type=int, default=3, help="warm calls to take the median of")
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="skip a size whose estimated call time exceeds this")
    parser.add_argument("--skip", default="", help="comma-separated libraries to leave out (aif, legacy, jax, deep)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default); on a shared machine 1 avoids thread contention")
    parser.add_argument("--plot", default=str(RESULTS / "bench_evaluator.png"),
                        help="where to write the scaling plot (default results/bench_evaluator.png; '' none)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    sizes, batches = (QUICK_SIZES, QUICK_BATCHES) if args.quick else (SIZES, BATCHES)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX and torch share the GPU's memory
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    startup = []
    if torch.cuda.is_available():  # CUDA's context and the kernels' modules load once per process
        t0 = time.perf_counter()
        import aif_deep

        tiny, _ = synthetic_model(2)
        aif_deep.PolicyEvaluator(aif_deep.TabularModel.from_aif(tiny, device="cuda", dtype=torch.float32), 2
                                 ).posterior([torch.ones(s, device="cuda") / s for s in tiny.num_states])
        torch.cuda.synchronize()
        startup.append(f"torch CUDA {time.perf_counter() - t0:.2f} s")
    jax_on_gpu = False
    if "jax" not in skip:
        t0 = time.perf_counter()
        import jax

        jax_on_gpu = jax.default_backend() == "gpu"
        jax.numpy.ones(8).block_until_ready()
        startup.append(f"JAX backend ({jax.default_backend()}) {time.perf_counter() - t0:.2f} s")
    libraries = []
    if "aif" not in skip:
        libraries.append("aif")
    if "deep" not in skip:
        libraries.append("aif_deep cpu")
        if torch.cuda.is_available():
            libraries.append("aif_deep cuda")
    if "legacy" not in skip:
        libraries.append("pymdp.legacy")
    if "jax" not in skip:
        libraries.append("pymdp 1.0")
    device_name = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    print(f"# CPU threads: torch {torch.get_num_threads()}, os {os.cpu_count()}; GPU: {device_name}")
    if startup:
        print(f"# process start-up before the clocks (once per process, not per size): {'; '.join(startup)}")
    print("| library | actions | horizon | policies | batch | evaluations/s | first result (s) | peak memory (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    results, notes = [], []
    for num_actions, horizon in sizes:
        model, rng = synthetic_model(num_actions)
        policies = aif.enumerate_policies(model.num_controls, horizon)
        P = len(policies)
        for batch in batches:
            qs_batch = [[rng.dirichlet(np.ones(s)) for s in model.num_states] for _ in range(batch)]
            for lib in libraries:
                estimate = COST_GUESS[lib + (" gpu" if lib == "pymdp 1.0" and jax_on_gpu else "")] * P * batch
                if estimate > args.max_seconds:
                    notes.append(f"skipped {lib} at {num_actions} actions, horizon {horizon}, batch {batch}: "
                                 f"about {estimate:,.0f} s per call")
                    continue
                if lib == "aif":
                    fn, sync, dev_mem = make_aif(model, qs_batch, policies)
                elif lib.startswith("aif_deep"):
                    fn, sync, dev_mem = make_deep(model, qs_batch, horizon, lib.split()[-1])
                elif lib == "pymdp.legacy":
                    fn, sync, dev_mem = make_legacy(model, qs_batch, policies)
                else:
                    fn, sync, dev_mem = make_pymdp(model, qs_batch, policies)
                repeats = args.repeats if estimate < args.max_seconds / 4 else 1
                try:
                    first, warm, peak = run_timed(fn, sync, repeats, dev_mem)
                except Exception as error:  # out of memory, typically: report it and go on
                    notes.append(f"{lib} failed at {num_actions} actions, horizon {horizon}, batch {batch}: "
                                 f"{type(error).__name__}: {str(error).splitlines()[0][:120]}")
                    continue
                rate = P * batch / warm
                results.append((lib, num_actions, horizon, P, batch, rate, first, peak))
                print(f"| {lib} | {num_actions} | {horizon} | {P:,} | {batch} | {rate:,.0f} | {first:.3f} "
                      f"| {peak / 2**20:,.0f} |", flush=True)
    for note in notes:
        print(f"- {note}")
    if args.plot and results:
        plot(results, args.plot)
        print(f"plot: {args.plot}")


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    libs = sorted({r[0] for r in results})
    for ax, metric, label in ((axes[0], 5, "policy evaluations / s"), (axes[1], 6, "time to first result (s)")):
        for lib, color in zip(libs, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False):
            for batch, marker, style in zip(BATCHES, "o^s", ("-", "--", ":"), strict=True):
                rows = sorted((r[3], r[metric]) for r in results if r[0] == lib and r[4] == batch)
                if rows:
                    x, y = zip(*rows, strict=True)
                    ax.plot(x, y, marker=marker, linestyle=style, color=color, label=f"{lib}, batch {batch}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("policies")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Policy evaluation on the synthetic model (25x2 states, 25+3 outcomes)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
