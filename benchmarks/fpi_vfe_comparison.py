"""Final VFE of the default fixed point against pymdp.legacy's and pymdp 1.0's iterations.

Mean-field VFE can have several local minima, so this reports rather than assumes: over N random models
(1-3 factors, 1-3 modalities, 2-6 states), the VFE each method ends at, minus the default's.

    python benchmarks/fpi_vfe_comparison.py [--models 500] [--seed 0]
"""

import argparse
import sys
from pathlib import Path

import numpy as np

import aif
from aif import FixedPoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _reference import random_case, random_config  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concentration", type=float, default=1.0,
                        help="Dirichlet concentration of A and B columns (small = sharper, harder)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    methods = {"pymdp.legacy": FixedPoint.pymdp_legacy(), "pymdp 1.0": FixedPoint.pymdp(),
               "default": FixedPoint()}
    diffs = {name: [] for name in methods}
    exact_gap, multi = [], 0
    for _ in range(args.models):
        config = random_config(rng)
        if len(config["num_states"]) < 2:
            config["num_states"].append(2)
            config["num_controls"].append(1)
            config["A_dependencies"] = None
        multi += 1
        model, obs, prior = random_case(rng, config, concentration=args.concentration)
        vfe = {name: aif.variational_free_energy(model, obs, aif.infer_states(model, obs, prior, m), prior)
               for name, m in methods.items()}
        for name in methods:
            diffs[name].append(vfe[name] - vfe["default"])
        exact_gap.append(vfe["default"] + aif.log_evidence(model, obs, prior))
    print(f"{multi} random models with 2-3 factors (seed {args.seed}, concentration {args.concentration}); "
          "VFE of each method minus the default's (positive: the default found a lower VFE)")
    print(f"{'method':>14} | {'mean':>10} | {'max':>10} | {'min':>10} | {'higher':>7} | {'lower':>7}")
    for name in ("pymdp.legacy", "pymdp 1.0"):
        d = np.array(diffs[name])
        print(f"{name:>14} | {d.mean():10.2e} | {d.max():10.2e} | {d.min():10.2e} | "
              f"{np.mean(d > 1e-9):7.1%} | {np.mean(d < -1e-9):7.1%}")
    g = np.array(exact_gap)
    print(f"default VFE above -ln p(o) (the mean-field gap): mean {g.mean():.3e}, max {g.max():.3e}")


if __name__ == "__main__":
    main()
