"""python benchmarks/fit_bandit_terms.py

How large the novelty term is against the utility term in the bandit-preferences agents: per pull, the
difference between the two arms (arm 1 - arm 0) of utility (per unit strength) and of novelty, for the known
lr = 1, forgetting = 0.8, over simulated agents with the study's gamma and strength draws."""
import pathlib
import sys

import numpy as np

import aif
from aif.envs import Bandit

sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / "examples"))
import fit_recovery as ex  # noqa: E402

rng = np.random.default_rng(0)
env_model = Bandit(ex.BANDIT_PROBS, reversals=ex.BANDIT_REVERSALS)
du, dn = [], []
for i in range(20):
    gamma, s = rng.uniform(1, 16), rng.uniform(1, 6)
    model = env_model.generative_model(float(s), kind="counts", prior_count=1.0)
    agent = aif.Agent(model, gamma=gamma, alpha=0.25, inference=aif.Exact(),
                      efe_terms=(aif.efe.Utility(), aif.efe.Novelty()),
                      learning=aif.Learning(lr=1.0, forgetting=0.8, learn_A=[1], learn_B=False),
                      selection=aif.Selection("stochastic"), rng=rng)
    world = Bandit(ex.BANDIT_PROBS, reversals=ex.BANDIT_REVERSALS)
    obs, _ = world.reset(seed=i)
    agent.reset()
    for t in range(200):
        act = agent.step(obs)
        terms = agent.terms
        names = list(terms)
        u = np.asarray(terms["utility"]).ravel() / s
        n = np.asarray(terms["pA_info_gain"]).ravel()
        assert len(u) == 2
        du.append(u[1] - u[0])
        dn.append(n[1] - n[0])
        obs, *_ = world.step(int(np.ravel(act)[0]))
print("terms:", names)
sdu, sdn = np.array(du), np.array(dn)
print(f"corr(signed utility diff, signed novelty diff) over pulls: {np.corrcoef(sdu, sdn)[0, 1]:.3f}")
b = np.polyfit(sdu, sdn, 1)
res = sdn - np.polyval(b, sdu)
print(f"novelty diff = {b[0]:.3f} * utility diff + {b[1]:.3f}; residual sd {res.std():.3f} of sd {sdn.std():.3f}")
du, dn = np.abs(sdu), np.abs(sdn)
print(f"|utility(arm1)-utility(arm0)| per unit strength: median {np.median(du):.3f}, mean {du.mean():.3f}")
print(f"|novelty(arm1)-novelty(arm0)|: median {np.median(dn):.3f}, mean {dn.mean():.3f}")
print(f"ratio novelty/utility at strength 1: median {np.median(dn/np.maximum(du,1e-9)):.3f}")
