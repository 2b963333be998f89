"""Time `expected_free_energy` against pymdp.legacy and pymdp 1.0 on one synthetic model, in one run.

Model: two factors (25 and 2 states), two modalities (25 and 3 outcomes), 5 actions on the first factor,
horizons 3 and 4 (125 and 625 policies); the same model and beliefs for all three libraries.

    python benchmarks/bench_efe.py [--repeats N]

Prints a table: first call (pymdp 1.0's includes JIT compilation) and warm call per library, and the
speed-ups. Timings are reported, never asserted.
"""

import argparse
import time

import numpy as np

import aif


def synthetic_model(seed=0):
    rng = np.random.default_rng(seed)
    return aif.random_model(rng, [25, 2], [25, 3], [5, 1], concentration=0.5), rng


def timed(fn, repeats):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return out, first, float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="warm calls to take the median of")
    parser.add_argument("--legacy-repeats", type=int, default=2, help="warm calls for pymdp.legacy (slow)")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from pymdp import control as control_1
    from pymdp.legacy import control as legacy
    from pymdp.legacy import utils

    def obj(xs):
        o = utils.obj_array(len(xs))
        for i, x in enumerate(xs):
            o[i] = x
        return o

    model, rng = synthetic_model()
    qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    rows = []
    for horizon in (3, 4):
        policies = aif.enumerate_policies(model.num_controls, horizon)
        P = len(policies)
        (G, _), ours_first, ours = timed(
            lambda: aif.expected_free_energy(model, qs, policies, options=aif.EFEOptions.pymdp()), args.repeats)
        (_, neg_legacy), legacy_first, legacy_warm = timed(
            lambda: legacy.update_posterior_policies_factorized(
                obj(qs), obj(model.A), obj(model.B), obj(model.C), model.A_dependencies, model.B_dependencies,
                list(policies)), args.legacy_repeats)
        E = jnp.full(P, 1.0 / P)
        pol_1 = jnp.asarray(policies)

        # Compiled once with the dependency lists closed over (passing them as arguments re-traces per call).
        @jax.jit
        def efe_1(qs_, A_, B_, C_):
            return control_1.update_posterior_policies(pol_1, qs_, A_, B_, C_, E, None, None,
                                                       model.A_dependencies, model.B_dependencies, gamma=16.0)

        arrays = ([jnp.asarray(q) for q in qs], [jnp.asarray(a) for a in model.A],
                  [jnp.asarray(b) for b in model.B], [jnp.asarray(c) for c in model.C])

        def run_1():
            return efe_1(*arrays)[1].block_until_ready()

        neg_1, first_1, warm_1 = timed(run_1, args.repeats)
        assert np.allclose(G, -np.asarray(neg_1), atol=1e-8), "aif and pymdp 1.0 disagree"
        rows.append((horizon, P, ours_first, ours, legacy_warm, first_1, warm_1))

    print(f"expected_free_energy, model S=[25, 2], O=[25, 3], 5 actions, float64, one run "
          f"(median of {args.repeats} warm calls; legacy {args.legacy_repeats})")
    head = ("H", "policies", "aif first", "aif warm", "legacy", "pymdp1 first", "pymdp1 warm",
            "x legacy", "x pymdp1 warm", "first: x pymdp1")
    print(" | ".join(f"{h:>13}" for h in head))
    for H, P, af, aw, lw, jf, jw in rows:
        vals = (H, P, f"{af * 1e3:.2f} ms", f"{aw * 1e3:.2f} ms", f"{lw * 1e3:.0f} ms", f"{jf * 1e3:.0f} ms",
                f"{jw * 1e3:.2f} ms", f"{lw / aw:.0f}", f"{jw / aw:.2f}", f"{jf / af:.0f}")
        print(" | ".join(f"{v:>13}" for v in vals))


if __name__ == "__main__":
    main()
