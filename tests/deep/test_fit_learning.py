"""The choice likelihood of agents that learn during the task equals aif.Agent's, stepped in NumPy (float64)."""

import numpy as np
import pytest
import torch

import aif
import aif_deep
from aif.control import selection_probabilities
from aif.envs import TMaze
from aif_deep.fit import choice_likelihood

GAMMA, ALPHA = 3.0, 2.0


def learning_model():
    """The T-maze with unknown reward contingencies (pA[1]) and Dirichlet counts for B and D as well."""
    model = TMaze(0.8).generative_model(learn_A=True, learn_B=True, prior_count=1.0)
    return model.replace(pD=[2.0 * d + 0.5 for d in model.D])


def simulate(model, learning, trials, steps, seed):
    """aif.Agent with ``learning``, stochastic selection: observations (1, K, T + 1, M), actions (1, K, T, F) and the
    summed ln p(action) of every choice it made, read from its own selection probabilities as it chose."""
    env, rng = TMaze(0.8), np.random.default_rng(seed)
    agent = aif.Agent(model, gamma=GAMMA, alpha=ALPHA, learning=learning, inference=aif.Exact(),
                      selection=aif.Selection("stochastic", "full"), rng=rng)
    observations, actions, log_p = [], [], 0.0
    for _ in range(trials):
        agent.reset()
        obs, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        trial_obs, trial_act = [obs], []
        for _ in range(steps):
            agent.infer_states(obs)
            agent.infer_policies()
            probs = selection_probabilities(agent.q_pi, agent.policies, "stochastic", ALPHA, "full")
            action = agent.sample_action()
            log_p += np.log(probs[(agent.policies[:, 0] == action).all(-1)].sum())
            obs, *_ = env.step(int(action[0]))
            trial_obs.append(obs)
            trial_act.append(action.copy())
        if not learning.online:
            agent.learn()  # offline: the trial's counts at its end
        observations.append(trial_obs)
        actions.append(trial_act)
    return np.array(observations)[None], np.array(actions)[None], log_p


@pytest.mark.parametrize("learning", [
    aif.Learning(lr=0.7, forgetting=0.9, learn_B=False),
    aif.Learning(lr=0.5, forgetting=0.8, learn_D=True, forget_to_prior=False),
    aif.Learning(lr=2.0, forgetting=0.95, learn_A=[1], learn_B=[0], mask_zeros=False, lr_B=0.3),
    aif.Learning(lr=0.8, forgetting=0.9, learn_D=True, online=False),
    aif.Learning(lr=0.8, forgetting=0.9, learn_D=True, online=False, smoothing=True),
    aif.Learning(lr=1.5, learn_A=False, learn_B=False, learn_D=True, online=False, smoothing=True),
], ids=["A", "ABD_to_zero", "chosen_unmasked", "offline", "offline_smoothed", "D_smoothed"])
def test_learning_likelihood_equals_aif_agent(learning):
    model = learning_model()
    obs, act, reference = simulate(model, learning, trials=4, steps=3, seed=1)
    like = choice_likelihood(aif_deep.TabularModel.from_aif(model, device="cpu"), obs, act, gamma=GAMMA,
                             alpha=ALPHA, inference=aif.Exact(), learning=learning)
    assert like({}).item() == pytest.approx(reference, abs=1e-10)
    # Fitted values enter as tensors: the likelihood at the true (lr, forgetting) given as values is the same.
    values = {"lr": torch.tensor([learning.lr], dtype=torch.float64, requires_grad=True),
              "forgetting": torch.tensor([learning.forgetting], dtype=torch.float64, requires_grad=True)}
    ll = like(values)
    assert ll.item() == pytest.approx(reference, abs=1e-10)
    grads = torch.autograd.grad(ll.sum(), list(values.values()))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_learning_parameters_are_refused_without_learning():
    model = learning_model()
    obs, act, _ = simulate(model, aif.Learning(), trials=1, steps=2, seed=0)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    with pytest.raises(aif.ParameterError, match="lr is a learning parameter"):
        aif_deep.fit(tm, obs, act, params=("lr",), progress=False)
    with pytest.raises(aif.StrategyError, match="learning must be an aif.Learning"):
        choice_likelihood(tm, obs, act, learning="online")
    with pytest.raises(aif.ParameterError, match=r"forgetting must be a number or \(1,\) numbers in \(0, 1\]"):
        choice_likelihood(tm, obs, act, learning=aif.Learning(), forgetting=1.5)


def test_laplace_newton_reaches_each_subjects_map_of_lr_and_forgetting():
    """Two learning subjects fitted together: laplace's batched Newton steps stop at a point where every subject's
    gradient vanishes, and scipy's Nelder-Mead on each subject's own potential finds the same MAP."""
    import pyro.distributions as dist
    from scipy.optimize import minimize

    from aif_deep import bayes

    torch.set_num_threads(1)
    model = learning_model()
    runs = [simulate(model, aif.Learning(lr=lr, forgetting=f, learn_B=False), trials=5, steps=2, seed=s)
            for lr, f, s in ((0.5, 0.9, 2), (1.5, 0.7, 3))]
    obs, act = np.concatenate([r[0] for r in runs]), np.concatenate([r[1] for r in runs])
    like = choice_likelihood(aif_deep.TabularModel.from_aif(model, device="cpu"), obs, act, gamma=GAMMA, alpha=ALPHA,
                             inference=aif.Exact(), learning=aif.Learning(learn_B=False))
    f64 = dict(dtype=torch.float64)
    priors = {"lr": dist.LogNormal(torch.tensor(-0.5, **f64), 1.0),
              "forgetting": dist.Beta(torch.tensor(3.0, **f64), 1.0)}
    post = bayes.laplace(like, priors, num_draws=10)
    assert post.info["grad"].abs().max() < 1e-6
    assert (torch.linalg.eigvalsh(post.info["H"]) > 0).all()
    flat = bayes._Flat(like, priors)
    for i in range(2):
        def potential(z, i=i):
            Z = post.info["z"].clone()
            Z[i] = torch.as_tensor(z, **f64)
            with torch.no_grad():
                return float(flat.potential(Z)[i])
        found = minimize(potential, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-10})
        assert np.allclose(found.x, post.info["z"][i].numpy(), atol=1e-4)
