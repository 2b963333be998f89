"""Posteriors over an agent's parameters (aif_deep.bayes): Laplace, SVI and NUTS agree with each other and with a
posterior computed by quadrature on a grid, on a small simulated T-maze."""

import math

import numpy as np
import pyro.distributions as dist
import pytest
import torch

import aif
import aif_deep
from aif.envs import TMaze
from aif_deep import bayes
from aif_deep.fit import choice_likelihood

GAMMA = np.array([2.0, 8.0])
ALPHA = 1.0
EXACT = aif.Exact()  # the T-maze's posterior factorises: exact inference is the fixed point, and cheaper


def simulate(gamma, trials, steps, seed):
    """T-maze agents (one per entry of gamma), every trial of every agent as one batch: observations
    (N, K, T + 1, M), actions (N, K, T, F)."""
    env, N = TMaze(0.8), len(gamma)
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif([env.generative_model()] * (N * trials), device="cpu"),
                           gamma=torch.tensor(np.tile(gamma, trials)), alpha=ALPHA, inference=EXACT,
                           selection=aif.Selection("stochastic", "full"), rng=torch.Generator().manual_seed(seed))
    run = aif_deep.rollout(agent, [TMaze(0.8) for _ in range(N * trials)], steps, seed=seed)
    per_agent = lambda x: x.reshape(trials, N, *x.shape[1:]).swapaxes(0, 1)  # noqa: E731
    return env.generative_model(), per_agent(run.observations), per_agent(run.actions)


@pytest.fixture(scope="module")
def tmaze():
    torch.set_num_threads(1)  # tensors of a few hundred numbers: threads cost more than they bring
    model, obs, act = simulate(GAMMA, trials=60, steps=1, seed=0)  # the first move: informative, and cheap
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    prior = {"gamma": dist.LogNormal(torch.tensor(1.5, dtype=torch.float64), 1.0)}
    return tm, obs, act, prior


def grid_posterior(tm, obs, act, prior, grid):
    """The posterior of gamma on ``grid`` by quadrature, every grid point of every subject in one batch: mean, sd
    and ln p(choices) (trapezoid rule) per subject."""
    G, N = len(grid), obs.shape[0]
    like = choice_likelihood(tm, np.repeat(obs, G, 0), np.repeat(act, G, 0), alpha=ALPHA, inference=EXACT)
    with torch.no_grad():
        log_joint = like({"gamma": grid.repeat(N)}).reshape(N, G) + prior.log_prob(grid)  # (N, G)
    # trapezoid weights on the (uneven) grid
    w = torch.zeros_like(grid)
    w[1:] += (grid[1:] - grid[:-1]) / 2
    w[:-1] += (grid[1:] - grid[:-1]) / 2
    log_z = torch.logsumexp(log_joint + torch.log(w), 1)
    p = torch.exp(log_joint + torch.log(w) - log_z[:, None])
    mean = (p * grid).sum(1)
    return mean, ((p * (grid - mean[:, None]) ** 2).sum(1)).sqrt(), log_z


def test_laplace_svi_nuts_and_quadrature_agree(tmaze):
    tm, obs, act, prior = tmaze
    like = choice_likelihood(tm, obs, act, alpha=ALPHA, inference=EXACT)
    mean, sd, log_z = grid_posterior(tm, obs, act, prior["gamma"],
                                     torch.exp(torch.linspace(math.log(0.05), math.log(60.0), 400,
                                                              dtype=torch.float64)))
    # The truth lies within 2.5 posterior sd of the posterior mean.
    assert (np.abs(mean.numpy() - GAMMA) < 2.5 * sd.numpy()).all()
    lap = bayes.laplace(like, prior, num_draws=4000)
    # SVI and NUTS start at the MAP (Laplace's mode): fewer steps to converge.
    svi = bayes.svi(like, prior, steps=150, lr=0.05, num_draws=500, elbo_particles=16, init=lap.mode)
    nuts = bayes.nuts(like, prior, num_samples=60, warmup=60, chains=2, init=lap.mode, max_tree_depth=3)
    for post in (lap, svi, nuts):
        # Stated tolerance: every method's mean within 0.4 posterior sd of the quadrature's, its sd within 30%
        # (Laplace is Gaussian in ln gamma, whose posterior is slightly skewed: its mean is off by 0.3 sd here).
        s = post.samples["gamma"].flatten(0, 1)
        assert ((s.mean(0) - mean).abs() < 0.4 * sd).all(), (post.method, s.mean(0), mean, sd)
        assert ((s.std(0) / sd - 1).abs() < 0.3).all(), (post.method, s.std(0), sd)
    # Laplace's log evidence against the quadrature's (the posterior of ln gamma is close to Gaussian here).
    assert torch.allclose(lap.log_evidence, log_z, atol=0.1)
    # A mean-field ELBO is a lower bound on the log evidence, per subject (16 particles: 0.15 for their noise), and
    # a close one here.
    assert (svi.log_evidence < log_z + 0.15).all() and (svi.log_evidence > log_z - 0.5).all()
    assert svi.elbo == pytest.approx(float(svi.log_evidence.sum()))
    summary = nuts.summary()
    assert (summary["r_hat"] < 1.1).all() and (summary["ess_bulk"] > 30).all()
    assert nuts.to_arviz().posterior["gamma"].dims == ("chain", "draw", "subject")
    lo, hi = lap.interval("gamma", 0.9)
    assert (lo < lap.mean("gamma")).all() and (lap.mean("gamma") < hi).all()


def test_priors_are_checked(tmaze):
    tm, obs, act, prior = tmaze
    like = choice_likelihood(tm, obs, act, alpha=ALPHA, inference=EXACT)
    with pytest.raises(aif.ParameterError, match=r"prior of 'gamma' must be a pyro.distributions distribution"):
        bayes.laplace(like, {"gamma": torch.distributions.LogNormal(0.0, 1.0)})
    with pytest.raises(aif.ParameterError, match=r"prior of 'C\[1\]' has batch shape \(3,\).*event shape \(3,\)"):
        bayes.laplace(like, {"C[1]": dist.Normal(torch.zeros(3, dtype=torch.float64), 1.0)})
    with pytest.raises(aif.ParameterError, match="cannot fit 'beta'"):
        bayes.laplace(like, {"beta": dist.LogNormal(0.0, 1.0)})
    with pytest.raises(aif.ParameterError, match="give priors .* or group"):
        bayes.svi(like)
