"""A group of T-maze subjects fitted hierarchically (group mean and spread of gamma), compared with a second model.

    python examples/fit_group.py --quick                                  # 8 subjects: a smoke test
    python examples/fit_group.py --subjects 100 --trials 200 --ray        # the issue's size, in process and on Ray

Every subject's gamma is drawn around a group mean (ln gamma ~ N(1.5, 0.4^2)). All subjects run as one batch of
agents, and their choices are one batched likelihood (``aif_deep.fit.choice_likelihood``). The group is fitted three
ways, against the exact posterior of its mean and spread (quadrature over a grid of ln gamma per subject, then over
(mu, sigma), with SVI's hyperpriors):

1. empirical Bayes (``aif_deep.bayes.empirical_bayes``): EM over every subject's Laplace posterior, the E-step in
   chunks of subjects: in this process, and with ``--ray`` on a local 2-worker Ray instance (same results);
2. hierarchical SVI (``bayes.svi`` with ``GroupPrior``, mean-field ``AutoNormal``) started from the hyperpriors'
   medians, the way it was run before;
3. the same SVI started from the empirical-Bayes estimates.

Then each subject is fitted by Laplace under two models, the agents' EFE (utility + information gain) and utility
alone, and random-effects Bayesian model selection (``aif_deep.bms.group_bms``) compares them.
"""

import argparse
import math
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
from aif_deep.recovery import InProcess, Ray

GROUP = bayes.GroupPrior(loc=1.0, scale=1.0, spread=0.5, support=constraints.positive)


def simulate(gamma, trials, steps, seed):
    env, N = TMaze(0.8), len(gamma)
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif([env.generative_model()] * (N * trials), device="cpu"),
                           gamma=torch.tensor(np.tile(gamma, trials)), alpha=1.0, inference=aif.Exact(),
                           selection=aif.Selection("stochastic", "full"), rng=torch.Generator().manual_seed(seed))
    run = aif_deep.rollout(agent, [TMaze(0.8) for _ in range(N * trials)], steps, seed=seed)
    per_agent = lambda x: x.reshape(trials, N, *x.shape[1:]).swapaxes(0, 1)  # noqa: E731
    return env.generative_model(), per_agent(run.observations), per_agent(run.actions)


def exact_group_posterior(like, group, grid=None):
    """The posterior mean and sd of the group's mu and sigma (ln gamma ~ N(mu, sigma^2), ``group``'s hyperpriors)
    by quadrature: every subject's likelihood on a grid of ln gamma, then a grid over (mu, sigma)."""
    grid = torch.linspace(-1.5, 4.5, 121, dtype=torch.float64) if grid is None else grid
    N = like.num_subjects
    with torch.no_grad():  # (N, G): ln p(choices_i | ln gamma = grid_g)
        LL = torch.stack([like({"gamma": torch.full((N,), math.exp(g), dtype=torch.float64)}) for g in grid], 1)
    mus = torch.linspace(group.loc - 3 * group.scale, group.loc + 3 * group.scale, 241, dtype=torch.float64)
    sigmas = torch.linspace(0.01, 4 * group.spread, 160, dtype=torch.float64)
    M, S = mus[:, None, None], sigmas[None, :, None]
    log_normal = -0.5 * ((grid - M) / S) ** 2 - torch.log(S) - 0.5 * math.log(2 * math.pi)  # (mu, sigma, G)
    step = float(grid[1] - grid[0])
    log_p = torch.zeros(len(mus), len(sigmas), dtype=torch.float64)
    for i in range(N):  # ln prod_i int p(choices_i | x) N(x; mu, sigma^2) dx
        log_p += torch.logsumexp(LL[i] + log_normal + math.log(step), -1)
    log_p += (torch.distributions.Normal(group.loc, group.scale).log_prob(M[..., 0])
              + torch.distributions.HalfNormal(group.spread).log_prob(S[..., 0]))
    p = torch.softmax(log_p.flatten(), 0).reshape(log_p.shape)
    out = {}
    for name, axis, values in (("mu", 1, mus), ("sigma", 0, sigmas)):
        marginal = p.sum(axis)
        mean = float((marginal * values).sum())
        out[name] = (mean, float((marginal * (values - mean) ** 2).sum().sqrt()))
    return out


def svi_summary(post):
    mu, sigma = post.samples["gamma_mu"].flatten(), post.samples["gamma_sigma"].flatten()
    return f"mu {float(mu.mean()):.3f} ± {float(mu.std()):.3f}, sigma {float(sigma.mean()):.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, default=100)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--svi-steps", type=int, default=300)
    parser.add_argument("--chunk", type=int, default=50, help="subjects per empirical-Bayes E-step task")
    parser.add_argument("--ray", action="store_true", help="also run empirical Bayes on a local 2-worker Ray")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="8 subjects, 10 trials, 1 step, 50 SVI steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.subjects, args.trials, args.steps, args.svi_steps, args.chunk = 8, 10, 1, 50, 4
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    gamma = np.exp(rng.normal(1.5, 0.4, args.subjects))
    print(f"this draw: ln gamma mean {np.log(gamma).mean():.3f}, sd {np.log(gamma).std():.3f}")
    start = time.perf_counter()
    model, obs, act = simulate(gamma, args.trials, args.steps, args.seed)
    print(f"simulated {args.subjects} subjects x {args.trials} trials x {args.steps} steps in "
          f"{time.perf_counter() - start:.1f} s")
    tm = aif_deep.TabularModel.from_aif(model, device=args.device)
    like = choice_likelihood(tm, obs, act, alpha=1.0, inference=aif.Exact())
    group = {"gamma": GROUP}
    results = {}

    exact = exact_group_posterior(like, GROUP)
    print(f"exact (quadrature): mu {exact['mu'][0]:.3f} ± {exact['mu'][1]:.3f}, sigma {exact['sigma'][0]:.3f} ± "
          f"{exact['sigma'][1]:.3f}")

    runners = [("in process", InProcess())] + ([("Ray, 2 local workers", Ray(num_cpus=2))] if args.ray else [])
    for label, runner in runners:
        start = time.perf_counter()
        eb = bayes.empirical_bayes(like, group, chunk=args.chunk, runner=runner)
        took = time.perf_counter() - start
        results[label] = eb
        r = np.corrcoef(np.log(gamma), np.log(eb.mean("gamma").cpu().numpy()))[0, 1]
        print(f"empirical Bayes ({label}, chunks of {args.chunk}): {took:.1f} s, {len(eb.info['history'])} EM "
              f"iterations; mu {float(eb.mode['gamma_mu']):.3f}, sigma {float(eb.mode['gamma_sigma']):.3f}; "
              f"r(ln gamma, posterior mean) = {r:.3f}")
    if args.ray:
        same = torch.equal(results["in process"].info["z"], results["Ray, 2 local workers"].info["z"])
        print(f"in process and on Ray: the subjects' MAPs are {'identical' if same else 'DIFFERENT'}")

    from_eb = bayes.group_init(results["in process"], group)
    for label, init in (("from the hyperpriors' medians", None), ("from empirical Bayes", from_eb)):
        start = time.perf_counter()
        post = bayes.svi(like, group=group, steps=args.svi_steps, lr=0.05, num_draws=500, elbo_particles=4,
                         init=init)
        took = time.perf_counter() - start
        r = np.corrcoef(np.log(gamma), np.log(post.mean("gamma").cpu().numpy()))[0, 1]
        print(f"hierarchical SVI ({args.svi_steps} steps, {label}) on {args.device}: {took:.1f} s; "
              f"{svi_summary(post)}; r(ln gamma, posterior mean) = {r:.3f}")

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
