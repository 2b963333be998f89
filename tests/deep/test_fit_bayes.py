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
    # Bridge sampling from these 120 NUTS draws: the log evidence within its stated error of the quadrature's (4
    # errors, at least 0.05 nats: the few draws of a short chain).
    bridge = bayes.bridge_sampling(like, prior, nuts)
    assert ((bridge.log_evidence - log_z).abs() < torch.clamp(4 * bridge.error, min=0.05)).all(), (bridge, log_z)
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


def test_bridge_sampling_against_quadrature_where_laplace_is_off(tmaze):
    """A few trials: a skewed posterior, whose Laplace evidence is off by ~0.02-0.05 nats; bridge sampling from
    exact posterior draws (inverse CDF on a fine quadrature grid, as NUTS would give with many draws) recovers the
    quadrature's evidence to ~0.01 nats, and its error estimate says so (from NUTS's draws: the test above)."""
    tm, obs, act, prior = tmaze
    obs, act = obs[:, :8], act[:, :8]
    like = choice_likelihood(tm, obs, act, alpha=ALPHA, inference=EXACT)
    edges = torch.linspace(math.log(1e-3), math.log(5e3), 4001, dtype=torch.float64)  # the prior's tails too
    grid, width = torch.exp((edges[1:] + edges[:-1]) / 2), edges[1] - edges[0]  # cells of equal width in ln gamma
    N, G = obs.shape[0], len(grid)
    with torch.no_grad():
        big = choice_likelihood(tm, np.repeat(obs, G, 0), np.repeat(act, G, 0), alpha=ALPHA, inference=EXACT)
        log_joint = big({"gamma": grid.repeat(N)}).reshape(N, G) + prior["gamma"].log_prob(grid)
    log_z = torch.logsumexp(log_joint + torch.log(grid * width), 1)  # the midpoint rule in ln gamma
    lap = bayes.laplace(like, prior)
    gen = torch.Generator().manual_seed(1)
    # Draws of ln gamma: a cell by its mass (density x width, the width uniform in ln gamma), then uniform in it.
    cell = torch.multinomial(torch.softmax(log_joint + torch.log(grid), 1), 2 * 600, replacement=True, generator=gen)
    log_gamma = edges[cell] + width * torch.rand(cell.shape, generator=gen, dtype=torch.float64)  # (N, draws)
    exact = bayes.Posterior(samples={"gamma": torch.exp(log_gamma).T.reshape(2, 600, N)}, method="nuts")
    bridge = bayes.bridge_sampling(like, prior, exact)
    assert (bridge.error < 0.02).all() and (bridge.iterations > 0).all()
    assert ((bridge.log_evidence - log_z).abs() < torch.clamp(4 * bridge.error, min=0.01)).all(), (bridge, log_z)
    # Laplace's Gaussian in ln gamma is further off here than bridge sampling (asserted, as the reason to use it).
    assert (lap.log_evidence - log_z).abs().max() > 2 * (bridge.log_evidence - log_z).abs().max()


def test_bridge_sampling_refuses_draws_that_are_not_the_posteriors(tmaze):
    tm, obs, act, prior = tmaze
    like = choice_likelihood(tm, obs, act, alpha=ALPHA, inference=EXACT)
    lap = bayes.laplace(like, prior, num_draws=100)
    with pytest.raises(aif.ParameterError, match=r"needs draws from the posterior itself .*got 'laplace'"):
        bayes.bridge_sampling(like, prior, lap)
    few = bayes.Posterior(samples={"gamma": lap.samples["gamma"][:, :8]}, method="nuts")
    with pytest.raises(aif.ParameterError, match="at least 10 draws per chain"):
        bayes.bridge_sampling(like, prior, few)
    group = bayes.Posterior(samples={**lap.samples, "gamma_mu": torch.zeros(1, 100)}, method="nuts")
    with pytest.raises(aif.ParameterError, match="not the priors'"):
        bayes.bridge_sampling(like, prior, group)
