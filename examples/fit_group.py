"""A group of T-maze subjects fitted hierarchically (group mean and spread of gamma), compared with a second model.

    python examples/fit_group.py --quick                      # 8 subjects: a smoke test
    python examples/fit_group.py --subjects 100 --trials 200  # the issue's size

Every subject's gamma is drawn around a group mean (ln gamma ~ N(1.5, 0.4^2)). All subjects run as one batch of
agents, and their choices are one batched likelihood (``aif_deep.fit.choice_likelihood``) inside a Pyro plate:
``aif_deep.bayes.svi`` with ``GroupPrior`` fits the group's mean and spread and every subject's gamma. Then each
subject is fitted by Laplace under two models, the agents' EFE (utility + information gain) and utility alone, and
random-effects Bayesian model selection (``aif_deep.bms.group_bms``) compares them.
"""

import argparse
import time

import numpy as np
import pyro.distributions as dist
import torch
from torch.distributions import constraints

import aif
import aif_deep
from aif.envs import TMaze
from aif_deep import bayes
from aif_deep.bms import group_bms
from aif_deep.fit import choice_likelihood


def simulate(gamma, trials, steps, seed):
    env, N = TMaze(0.8), len(gamma)
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif([env.generative_model()] * (N * trials), device="cpu"),
                           gamma=torch.tensor(np.tile(gamma, trials)), alpha=1.0, inference=aif.Exact(),
                           selection=aif.Selection("stochastic", "full"), rng=torch.Generator().manual_seed(seed))
    run = aif_deep.rollout(agent, [TMaze(0.8) for _ in range(N * trials)], steps, seed=seed)
    per_agent = lambda x: x.reshape(trials, N, *x.shape[1:]).swapaxes(0, 1)  # noqa: E731
    return env.generative_model(), per_agent(run.observations), per_agent(run.actions)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--svi-steps", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="8 subjects, 10 trials, 1 step, 50 SVI steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.subjects, args.trials, args.steps, args.svi_steps = 8, 10, 1, 50
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    gamma = np.exp(rng.normal(1.5, 0.4, args.subjects))
    start = time.perf_counter()
    model, obs, act = simulate(gamma, args.trials, args.steps, args.seed)
    print(f"simulated {args.subjects} subjects x {args.trials} trials x {args.steps} steps in "
          f"{time.perf_counter() - start:.1f} s")
    tm = aif_deep.TabularModel.from_aif(model, device=args.device)
    like = choice_likelihood(tm, obs, act, alpha=1.0, inference=aif.Exact())
    group = {"gamma": bayes.GroupPrior(loc=1.0, scale=1.0, spread=0.5, support=constraints.positive)}
    start = time.perf_counter()
    post = bayes.svi(like, group=group, steps=args.svi_steps, lr=0.05, num_draws=500, elbo_particles=4)
    took = time.perf_counter() - start
    mu, sigma = post.samples["gamma_mu"].flatten(), post.samples["gamma_sigma"].flatten()
    r = np.corrcoef(np.log(gamma), np.log(post.mean("gamma").cpu().numpy()))[0, 1]
    print(f"hierarchical SVI ({args.svi_steps} steps) on {args.device}: {took:.1f} s; group log-mean "
          f"{float(mu.mean()):.2f} ± {float(mu.std()):.2f} (true 1.5), spread {float(sigma.mean()):.2f} (true 0.4); "
          f"r(ln gamma, posterior mean) = {r:.3f}")

    prior = {"gamma": dist.LogNormal(torch.tensor(1.5, dtype=torch.float64), 1.0)}
    evidence = []
    for terms in ((aif.efe.Utility(), aif.efe.InfoGain()), (aif.efe.Utility(),)):
        like_k = choice_likelihood(tm, obs, act, alpha=1.0, inference=aif.Exact(), efe_terms=terms)
        evidence.append(bayes.laplace(like_k, prior, num_draws=10).log_evidence.cpu().numpy())
    bms = group_bms(np.stack(evidence, 1))
    print(f"model comparison, EFE vs utility alone: expected frequencies {np.round(bms.frequencies, 3)}, "
          f"exceedance {np.round(bms.exceedance, 3)}, protected {np.round(bms.protected_exceedance, 3)}")
    return post, bms


if __name__ == "__main__":
    main()
