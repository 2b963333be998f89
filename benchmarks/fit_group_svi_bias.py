"""Why the hierarchical SVI fit of examples/fit_group.py was biased: its group mean against the exact posterior.

    OMP_NUM_THREADS=1 python benchmarks/fit_group_svi_bias.py 100 50      # subjects, trials (2 steps each)

The data are examples/fit_group.py's (ln gamma ~ N(1.5, 0.4^2), seed 0). The exact posterior of the group mean mu
and spread sigma (hyperpriors mu ~ N(1, 1), sigma ~ HalfNormal(0.5), as the SVI's ``GroupPrior``) comes from
quadrature: every subject's log likelihood on a grid of ln gamma, integrated against N(mu, sigma^2) on a grid of
(mu, sigma). Then ``bayes.svi`` with that ``GroupPrior`` (non-centred, mean-field ``AutoNormal``, started from the
hyperpriors' medians) for 300 and for 1500 steps. Results: benchmarks/results/fit_recovery.md.
"""

import math
import sys
import time

import numpy as np
import torch
from torch.distributions import constraints

import aif
import aif_deep
from aif_deep import bayes
from aif_deep.fit import choice_likelihood

sys.path.insert(0, "examples")
from fit_group import simulate  # noqa: E402

torch.set_num_threads(1)
N, K = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
gamma = np.exp(rng.normal(1.5, 0.4, N))
print("draw mean/sd of ln gamma", np.log(gamma).mean(), np.log(gamma).std())
t = time.perf_counter()
model, obs, act = simulate(gamma, K, 2, 0)
print("sim", time.perf_counter() - t)
tm = aif_deep.TabularModel.from_aif(model, device="cpu")
like = choice_likelihood(tm, obs, act, alpha=1.0, inference=aif.Exact())
# every subject's log likelihood on a grid of ln gamma: (N, G)
grid = torch.linspace(-1.5, 4.5, 121, dtype=torch.float64)
t = time.perf_counter()
with torch.no_grad():
    LL = torch.stack([like({"gamma": torch.full((N,), float(math.exp(g)), dtype=torch.float64)}) for g in grid], 1)
print("grid", time.perf_counter() - t)
# the exact posterior over (mu, sigma) with mu ~ N(1, 1), sigma ~ HalfNormal(0.5)
mus = torch.linspace(0.5, 2.5, 201, dtype=torch.float64)
sig = torch.linspace(0.01, 1.2, 120, dtype=torch.float64)
dg = grid[1] - grid[0]
M, S = mus[:, None, None], sig[None, :, None]
logN = -0.5 * ((grid - M) / S) ** 2 - torch.log(S) - 0.5 * math.log(2 * math.pi)  # (mu, sigma, G)
per = torch.logsumexp(LL[:, None, None, :] + logN[None] + math.log(dg), -1)  # (N, mu, sigma)
lp = (per.sum(0) + torch.distributions.Normal(1.0, 1.0).log_prob(M[..., 0])
      + torch.distributions.HalfNormal(0.5).log_prob(S[..., 0]))
p = torch.softmax(lp.flatten(), 0).reshape(lp.shape)
pm, ps = p.sum(1), p.sum(0)
mu_mean = (pm * mus).sum()
mu_sd = ((pm * (mus - mu_mean) ** 2).sum()).sqrt()
s_mean = (ps * sig).sum()
print(f"exact: mu {mu_mean:.3f} ± {mu_sd:.3f}, sigma {s_mean:.3f}")
mle = grid[LL.argmax(1)]  # per-subject maximum likelihood on the grid
print("per-subject grid MLE mean ln gamma", mle.mean().item(), "sd", mle.std().item())
group = {"gamma": bayes.GroupPrior(loc=1.0, scale=1.0, spread=0.5, support=constraints.positive)}
for steps, lr in [(300, 0.05), (1500, 0.05)]:
    t = time.perf_counter()
    post = bayes.svi(like, group=group, steps=steps, lr=lr, num_draws=300, elbo_particles=2)
    mu, s = post.samples["gamma_mu"].flatten(), post.samples["gamma_sigma"].flatten()
    loss = post.info["loss"]
    print(f"svi nc {steps} steps: mu {mu.mean():.3f} ± {mu.std():.3f}, sigma {s.mean():.3f}; "
          f"{time.perf_counter() - t:.0f}s; loss last100 mean {loss[-100:].mean():.1f} first {loss[:10].mean():.1f}")
