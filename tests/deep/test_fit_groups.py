"""Groups: a hierarchical model over subjects (aif_deep.bayes.GroupPrior), and random-effects Bayesian model
selection (aif_deep.bms) against hand-computed cases."""

import math

import numpy as np
import pytest
import torch
from torch.distributions import constraints

import aif
import aif_deep
from aif.envs import TMaze
from aif_deep import bayes
from aif_deep.bms import exceedance, group_bms
from aif_deep.fit import choice_likelihood


def test_bms_hand_case():
    """Three subjects each 100 nats in favour of model 0: q(r) = Dir(4, 1), so xp_0 = p(r_0 > 1/2) = 1 - 0.5^4; the
    random-effects evidence is E[r_0^3] = 1/4 under the uniform prior, the null's (1/2)^3, so BOR = 1/3."""
    result = group_bms(np.array([[0.0, -100.0]] * 3))
    assert np.allclose(result.alpha, [4.0, 1.0])
    assert np.allclose(result.frequencies, [0.8, 0.2])
    assert np.allclose(result.exceedance, [1 - 0.5**4, 0.5**4])
    assert result.free_energy == pytest.approx(math.log(1 / 4))
    assert result.null_evidence == pytest.approx(3 * math.log(1 / 2))
    assert result.bor == pytest.approx(1 / 3)
    assert np.allclose(result.protected_exceedance, (2 / 3) * result.exceedance + (1 / 3) / 2)
    # Two subjects for each model: nothing to choose.
    even = group_bms(np.array([[0.0, -50.0], [0.0, -50.0], [-50.0, 0.0], [-50.0, 0.0]]))
    assert np.allclose(even.exceedance, [0.5, 0.5])
    # Three models, by sampling, against the exact two-model value where the third model is never used.
    assert np.allclose(exceedance([4.0, 1.0, 1e-9], np.random.default_rng(0), 200_000)[:2], [0.9375, 0.0625],
                       atol=0.005)
    with pytest.raises(aif.ParameterError, match="give rng"):
        exceedance([1.0, 2.0, 3.0])
    with pytest.raises(aif.ParameterError, match="two or more models"):
        group_bms(np.zeros((3, 1)))


@pytest.fixture(scope="module")
def group_data():
    """Eight T-maze agents whose gamma is drawn around a group mean (ln gamma ~ N(1.5, 0.4^2)), 25 one-step trials
    each: the true gamma (8,) and the choice likelihood of all of them."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    gamma = np.exp(rng.normal(1.5, 0.4, 8))
    env, N, trials = TMaze(0.8), 8, 25
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif([env.generative_model()] * (N * trials), device="cpu"),
                           gamma=torch.tensor(np.tile(gamma, trials)), alpha=1.0, inference=aif.Exact(),
                           selection=aif.Selection("stochastic", "full"), rng=torch.Generator().manual_seed(3))
    run = aif_deep.rollout(agent, [TMaze(0.8) for _ in range(N * trials)], 1, seed=3)
    per_agent = lambda x: x.reshape(trials, N, *x.shape[1:]).swapaxes(0, 1)  # noqa: E731
    like = choice_likelihood(aif_deep.TabularModel.from_aif(env.generative_model(), device="cpu"),
                             per_agent(run.observations), per_agent(run.actions), alpha=1.0, inference=aif.Exact())
    return gamma, like


def test_hierarchical_group_is_one_batch_and_shrinks_towards_the_group(group_data):
    """The hierarchical SVI fit recovers the group's log-mean, and its subjects' estimates are pulled towards the
    group (less spread than independent MAPs)."""
    gamma, like = group_data
    N = len(gamma)
    group = {"gamma": bayes.GroupPrior(loc=1.0, scale=1.0, spread=0.5, support=constraints.positive)}
    post = bayes.svi(like, group=group, steps=200, lr=0.05, num_draws=200, elbo_particles=4)
    assert post.samples["gamma"].shape == (1, 200, N)
    mu = post.samples["gamma_mu"].flatten()
    assert abs(float(mu.mean()) - 1.5) < 2.5 * float(mu.std()) + 0.1
    independent = bayes.laplace(like, {"gamma": bayes.dist.LogNormal(torch.tensor(1.0, dtype=torch.float64), 1.0)},
                                num_draws=10)
    spread = lambda x: float(torch.log(x).std())  # noqa: E731
    assert spread(post.mean("gamma")) < spread(independent.mode["gamma"])
    assert np.corrcoef(np.log(gamma), np.log(post.mean("gamma").numpy()))[0, 1] > 0.5
    with pytest.raises(aif.ParameterError, match="GroupPrior is for scalar parameters"):
        bayes.svi(like, group={"C[1]": bayes.GroupPrior()})


def test_subsets_of_subjects_are_their_own_likelihood(group_data):
    _, like = group_data
    gamma = torch.linspace(1.0, 8.0, 8, dtype=torch.float64)
    part = like.subjects([6, 1, 3])
    assert part.num_subjects == 3
    assert torch.equal(part({"gamma": gamma[[6, 1, 3]]}), like({"gamma": gamma})[[6, 1, 3]])
    with pytest.raises(aif.ParameterError, match=r"index must list subjects in \[0, 8\)"):
        like.subjects([8])


def test_empirical_bayes_is_a_fixed_point_of_em_whatever_the_chunks(group_data):
    """EM over Laplace posteriors: at convergence mu is the mean of the subjects' MAPs (log gamma) and sigma^2 their
    variance plus the mean posterior variance; each subject's MAP is laplace()'s under the fitted group prior; the
    E-step split into chunks of subjects gives the same fit."""
    gamma, like = group_data
    group = {"gamma": bayes.GroupPrior(loc=1.0, spread=0.5, support=constraints.positive)}
    eb = bayes.empirical_bayes(like, group, tol=1e-7)
    mu, sigma = eb.mode["gamma_mu"], eb.mode["gamma_sigma"]
    z, cov = eb.info["z"][:, 0], eb.info["cov"][:, 0, 0]
    assert len(eb.info["history"]) < 100  # converged
    assert float(mu) == pytest.approx(float(z.mean()), abs=1e-6)
    assert float(sigma) ** 2 == pytest.approx(float(((z - z.mean()) ** 2).mean() + cov.mean()), abs=1e-6)
    assert abs(float(mu) - np.log(gamma).mean()) < 0.3 and 0.05 < float(sigma) < 1.0
    prior = bayes.dist.LogNormal(mu, sigma)
    lap = bayes.laplace(like, {"gamma": prior}, num_draws=10)
    assert torch.allclose(lap.info["z"][:, 0], z, atol=1e-5)
    assert torch.allclose(lap.log_evidence, eb.log_evidence, atol=1e-6)
    chunked = bayes.empirical_bayes(like, group, tol=1e-7, chunk=3)
    assert torch.allclose(chunked.info["z"], eb.info["z"], atol=1e-8)
    assert eb.samples["gamma"].shape == (1, 1000, 8)
    init = bayes.group_init(eb, group)  # SVI's start: the non-centred z of every subject's MAP
    assert torch.allclose(init["gamma_mu"] + init["gamma_sigma"] * init["gamma_z"], z)
    with pytest.raises(aif.ParameterError, match="group_init needs the empirical_bayes posterior"):
        bayes.group_init(lap, group)
    with pytest.raises(aif.ParameterError, match="GroupPrior is for scalar parameters"):
        bayes.empirical_bayes(like, {"C[1]": bayes.GroupPrior()})
