"""Recovery studies (aif_deep.recovery): the same results in process and on a local 2-worker Ray instance, and a
failing task reported without losing the others."""

import functools

import numpy as np
import pyro.distributions as dist
import pytest
import torch

import aif
import aif_deep
from aif.envs import TMaze
from aif_deep import recovery


def candidates():
    """Two models of T-maze choices that differ in the preference strength they assume (3 or 1), both fitting
    gamma; the first generates the data."""
    models = []
    for name, strength in (("strong", 3.0), ("weak", 1.0)):
        model = TMaze(0.8).generative_model(reward_preference=strength, loss_preference=-strength)
        models.append(recovery.AgentModel(
            name, aif_deep.TabularModel.from_aif(model, device="cpu"),
            {"gamma": dist.LogNormal(torch.tensor(1.5, dtype=torch.float64), 1.0)},
            {"alpha": 1.0, "inference": aif.Exact()}))
    return models


def test_in_process_and_ray_agree_and_failures_are_reported():
    ray = pytest.importorskip("ray")
    torch.set_num_threads(1)
    gamma = np.array([2.0, 6.0, -1.0])  # the third subject's gamma is invalid: its task (the second) fails
    study = dict(models=candidates(), truths=[{"gamma": gamma}], env=functools.partial(TMaze, 0.8), trials=4,
                 steps=1, seed=5, chunk=2, progress=False)
    local = recovery.recover(**study, runner=recovery.InProcess())
    assert len(local.failures) == 1 and local.failures[0].task == 1
    assert "gamma must be positive" in local.failures[0].error
    assert np.array_equal(local.truth[0]["gamma"], [2.0, 6.0])  # the other task's subjects are all there
    assert local.log_evidence[0].shape == (2, 2) and np.isfinite(local.log_evidence[0]).all()
    assert local.confusion.shape == (1, 2) and local.confusion.sum() == pytest.approx(1.0)
    try:
        remote = recovery.recover(**study, runner=recovery.Ray(num_cpus=2))
    finally:
        ray.shutdown()
    assert len(remote.failures) == 1 and remote.failures[0].task == 1
    for key in ("truth", "estimate", "lower", "upper"):
        assert np.array_equal(getattr(local, key)[0]["gamma"], getattr(remote, key)[0]["gamma"])
    assert np.array_equal(local.log_evidence[0], remote.log_evidence[0])
    assert "| strong | gamma | 2 |" in local.table()


def test_nuts_posteriors_and_bridge_evidence_in_a_study():
    """posterior="nuts": the study's means, intervals and evidence come from NUTS (from Laplace's mode) and bridge
    sampling; on these data they are close to Laplace's (the posterior of ln gamma is near Gaussian), and not equal."""
    torch.set_num_threads(1)
    study = dict(models=candidates(), truths=[{"gamma": np.array([2.0, 6.0])}], env=functools.partial(TMaze, 0.8),
                 trials=20, steps=1, seed=3, chunk=2, progress=False)
    lap = recovery.recover(**study)
    nuts = recovery.recover(**study, posterior="nuts", nuts=dict(num_samples=40, warmup=40, max_tree_depth=3))
    assert not nuts.failures
    assert np.allclose(nuts.log_evidence[0], lap.log_evidence[0], atol=0.15)
    assert not np.array_equal(nuts.log_evidence[0], lap.log_evidence[0])
    assert np.allclose(np.log(nuts.estimate[0]["gamma"]), np.log(lap.estimate[0]["gamma"]), atol=0.3)
    assert (nuts.lower[0]["gamma"] < nuts.estimate[0]["gamma"]).all()
    assert (nuts.estimate[0]["gamma"] < nuts.upper[0]["gamma"]).all()
    with pytest.raises(aif.ParameterError, match="posterior must be .laplace. or .nuts., got .mcmc."):
        recovery.recover(**study, posterior="mcmc")
    with pytest.raises(aif.ParameterError, match="nuts takes a dict of bayes.nuts options"):
        recovery.recover(**study, nuts=dict(num_samples=10))  # without posterior="nuts"
    with pytest.raises(aif.ParameterError, match="nuts takes a dict"):
        recovery.recover(**study, posterior="nuts", nuts=dict(samples=10))


def test_posterior_correlations_are_read_in_the_unconstrained_space():
    """Draws whose log-lr and logit-forgetting have correlation -0.8 (first subject) and 0 (second) give those
    correlations; a vector parameter is left out."""
    from aif_deep.bayes import Posterior

    f64 = dict(dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    eps = torch.randn(20000, 2, 2, generator=gen, **f64)  # (draws, subjects, 2)
    rho = torch.tensor([-0.8, 0.0], **f64)
    x = eps[..., 0]
    y = rho * eps[..., 0] + torch.sqrt(1 - rho**2) * eps[..., 1]
    post = Posterior(samples={"lr": torch.exp(0.5 + x)[None], "forgetting": torch.sigmoid(2.0 * y)[None],
                              "C[1]": torch.zeros(1, 20000, 2, 3, **f64)}, method="laplace")
    priors = {"lr": dist.LogNormal(torch.tensor(0.0, **f64), 1.0),
              "forgetting": dist.Beta(torch.tensor(3.0, **f64), 1.0),
              "C[1]": dist.Normal(torch.zeros(3, **f64), 1.0).to_event(1)}
    r = recovery.posterior_correlations(post, priors)
    assert list(r) == ["lr~forgetting"]
    assert np.allclose(r["lr~forgetting"], [-0.8, 0.0], atol=0.02)


def _example():
    """examples/fit_recovery.py as a module."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[2] / "examples" / "fit_recovery.py"
    spec = importlib.util.spec_from_file_location("fit_recovery_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_reversing_tmaze_reverses_the_arms_at_its_trials():
    """Trials 0-1 and 4-5 pay as the T-maze does, trials 2-3 (after the reversal at 2, before the one at 4) with the
    arms' probabilities exchanged: the right arm in condition 0 pays 0.8 of the time, then 0.2, then 0.8 again."""
    from aif.envs.tmaze import REWARD, RIGHT_ARM

    example = _example()
    env = example.ReversingTMaze(0.8, reversals=(2, 4))
    assert [env.is_reversed(k) for k in range(6)] == [False, False, True, True, False, False]
    assert np.allclose(env.reversed_A[1][REWARD, RIGHT_ARM, 0], 0.2)
    rewarded = np.zeros(6)
    for k in range(6):
        env.reset(seed=k, options={"condition": 0})
        assert env.trial == k and env.A[1][REWARD, RIGHT_ARM, 0] == pytest.approx(0.2 if k in (2, 3) else 0.8)
        rewarded[k] = np.mean([env.step(RIGHT_ARM)[0][1] == REWARD for _ in range(2000)])
    assert np.allclose(rewarded, [0.8, 0.8, 0.2, 0.2, 0.8, 0.8], atol=0.03)
    fresh = example.ReversingTMaze(0.8)  # no reversals: the T-maze itself
    fresh.reset(seed=0)
    assert fresh.A[1] is fresh._built[0][1]
    with pytest.raises(ValueError, match="increasing"):
        example.ReversingTMaze(0.8, reversals=(3, 3))


def _with_strength(models, obs_shape, act_shape):
    """The first model's batch of two subjects (gamma 2 and 3, strength 1.5 and 4) and its scalars, built from its
    likelihood on blank data of these shapes."""
    from aif_deep import bayes

    like = models[0].likelihood(np.zeros(obs_shape, dtype=np.int64), np.zeros(act_shape, dtype=np.int64))
    f64 = dict(dtype=torch.float64)
    return like.build(bayes.natural(like, {"gamma": torch.tensor([2.0, 3.0], **f64),
                                           "strength": torch.tensor([1.5, 4.0], **f64)}))


def _tiny_study(example, study):
    """``study`` of examples/fit_recovery.py with 2 subjects x 6 trials per model, checked to run end to end with
    finite evidence under both models."""
    report = example.main(["--studies", study, "--subjects", "2", "--trials", "6", "--chunk", "2"])[study]
    assert not report.failures
    assert all(np.isfinite(L).all() and L.shape == (2, 2) for L in report.log_evidence)
    return report


def test_bandit_preference_study_puts_the_strength_in_c_and_runs():
    """The bandit preference study's models put each subject's strength in C[1] (r * [0, 1, 0]) with lr and
    forgetting fixed at the known values; a tiny study of it runs end to end with finite evidence."""
    example = _example()
    batched, scalars = _with_strength(example.bandit_preference_models(), (2, 1, 2, 2), (2, 1, 1, 1))
    f64 = dict(dtype=torch.float64)
    assert torch.allclose(batched.C[1], torch.tensor([[0.0, 1.5, 0.0], [0.0, 4.0, 0.0]], **f64))
    assert torch.allclose(scalars["lr"], torch.tensor(example.BANDIT_KNOWN_LR, **f64))
    assert torch.allclose(scalars["forgetting"], torch.tensor(example.BANDIT_KNOWN_FORGETTING, **f64))
    reports = example.main(["--studies", "bandit-preferences,learning-reversals", "--subjects", "2", "--pulls",
                            "12", "--trials", "4", "--steps", "2", "--chunk", "2"])
    for report in reports.values():
        assert not report.failures
        assert all(np.isfinite(L).all() and L.shape == (2, 2) for L in report.log_evidence)


def test_newton_stops_a_subject_that_no_step_length_improves():
    """A subject whose gradient never falls below tol but whose potential no step lowers (here a gradient of 1e-3
    faked at the optimum of z^2) stops after one failed line search, and the others still reach their MAPs: before,
    it cost every later iteration 30 halvings (6,000 potential evaluations in the 200 iterations; 100 subjects of a
    recovery study spent an hour there)."""
    from aif_deep import bayes

    class Flat:
        d, calls = 1, 0

        def potential(self, z):
            Flat.calls += 1
            x = z[:, 0]
            honest = (x - torch.tensor([1.5, 0.0, -2.0], dtype=z.dtype)) ** 2
            lying = x.detach() ** 2 + 1e-3 * (x - x.detach())  # the value of x^2, the gradient 1e-3
            return torch.stack([honest[0], lying[1], honest[2]])

    z = bayes._newton(Flat(), torch.zeros(3, 1, dtype=torch.float64), max_iter=200, tol=1e-6)
    assert torch.allclose(z[:, 0], torch.tensor([1.5, 0.0, -2.0], dtype=torch.float64), atol=1e-6)
    assert Flat.calls < 100


def test_bandit_hint_study_fits_gamma_and_the_reward_preference_apart():
    """The explore-exploit study's models put each subject's reward preference in C[1] = [0, -5, r] (the loss aversion
    known); a study of 8 subjects x 100 trials runs end to end and recovers gamma and r under EFE (r(true, posterior
    mean) 0.98 and 0.96 at this size, where the bandit's pulls identify only their product)."""
    example = _example()
    models = example.hint_models()
    batched, _ = _with_strength(models, (2, 1, 2, 3), (2, 1, 1, 2))
    f64 = dict(dtype=torch.float64)
    assert torch.allclose(batched.C[1], torch.tensor([[0.0, -5.0, 1.5], [0.0, -5.0, 4.0]], **f64))
    assert [m.settings["efe_terms"] for m in models] == [(aif.efe.Utility(), aif.efe.InfoGain()), (aif.efe.Utility(),)]
    report = example.main(["--studies", "bandit-hint", "--subjects", "8", "--trials", "100", "--chunk", "8"])[
        "bandit-hint"]
    assert not report.failures and all(L.shape == (8, 2) and np.isfinite(L).all() for L in report.log_evidence)
    assert report.correlation[0]["gamma"] > 0.9 and report.correlation[0]["strength"] > 0.9
    assert report.confusion.shape == (2, 2)


def test_bandit_hint_learning_study_reverses_the_payoffs_and_runs():
    """The learning variant's task pays as the explore-exploit task in trials 0-1 and 4-5 and with the machines'
    payoffs exchanged in trials 2-3 (reversals at 2 and 4), each trial ending one step after the machine; a tiny study
    of it runs end to end with finite evidence under both models."""
    from aif.envs.explore_exploit import LEFT, LEFT_BETTER, WIN

    example = _example()
    env = example.ReversingExploreExploit(0.8, reversals=(2, 4))
    for k in range(6):
        env.reset(seed=k, options={"context": LEFT_BETTER})
        assert env.A[1][WIN, LEFT, LEFT_BETTER] == pytest.approx(0.2 if k in (2, 3) else 0.8)
        assert not env.step(LEFT)[2] and env.step(0)[2]  # the machine, then the end state, which ends the trial
    report = _tiny_study(example, "bandit-hint-learning")
    assert list(report.truth[0]) == ["lr", "forgetting"] and list(report.truth[1]) == ["gamma"]


def test_bandit_hint_prior_study_shifts_the_context_prior_and_learns_d_from_smoothed_beliefs():
    """The context-prior task draws the left machine as the better one in about 80% of trials, 20% after the first
    shift; an agent that learns D offline from smoothed beliefs moves its counts towards the contexts it met (the
    filtered first belief would leave them at (1, 1) plus lr/2 each); a tiny study runs end to end."""
    example = _example()
    env = example.ShiftingContextExploreExploit(0.8, reversals=(200,))
    contexts = []
    for k in range(400):
        env.reset(seed=k)
        contexts.append(env.context)
    contexts = np.array(contexts)
    assert 0.72 < (contexts[:200] == 0).mean() < 0.88 and 0.12 < (contexts[200:] == 0).mean() < 0.28
    learner = example.hint_prior_models()[0]
    agent = aif.Agent(learner.model.to_aif(), gamma=4.0, alpha=1.0, inference=aif.Exact(),
                      learning=learner.settings["learning"], rng=np.random.default_rng(0))
    env = example.ShiftingContextExploreExploit(1.0)  # the left machine always the better one
    for k in range(20):
        aif.rollout(agent, env, 3, seed=k, progress=False)
        agent.learn()
    counts = agent.model.pD[1] - example.HINT_PRIOR_D_COUNT  # what 20 trials at lr 1 added
    assert counts.sum() == pytest.approx(20.0) and counts[0] > 3 * counts[1]
    _tiny_study(example, "bandit-hint-prior")


def test_laplace_screened_start_enters_a_far_better_mode():
    """A potential with a local minimum at the prior's centre and a global one 4 prior standard deviations (of ln
    gamma) away, behind a ridge: Newton's steps from the prior mean stay in the local one; from the screened start
    (the best point of the star around the prior mean) they reach the global one. A subject whose best point is the
    centre keeps it."""
    from aif_deep import bayes

    torch.set_num_threads(1)
    study = candidates()[0]
    like = study.likelihood(np.zeros((3, 1, 2, 3), dtype=np.int64), np.zeros((3, 1, 1, 2), dtype=np.int64))
    flat = bayes._Flat(like, study.priors)
    centre = flat.start()[:, 0]  # ln gamma at the prior mean, (3,)
    far = centre + torch.tensor([4.0, 4.0, -100.0], dtype=torch.float64)  # the third subject: no far mode

    def potential(z):  # two bowls, the far one 50 lower; they meet at a ridge (a kink) between them
        z = z[:, 0]
        return torch.minimum((z - centre) ** 2 + 50.0, 10.0 * (z - far) ** 2)

    flat.potential = potential
    stuck = bayes._newton(flat, flat.start(), 200, 1e-8)
    assert torch.allclose(stuck[:, 0], centre, atol=1e-6)
    start = flat.screened_start()
    found = bayes._newton(flat, start, 200, 1e-8)
    assert torch.allclose(found[:2, 0], far[:2], atol=1e-6)
    assert torch.allclose(found[2, 0], centre[2], atol=1e-6)
