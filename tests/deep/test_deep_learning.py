"""aif_deep's Dirichlet learning and parameter information gain against aif's, on random models."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _reference import random_config  # noqa: E402

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif import learning  # noqa: E402
from aif.efe import EFEOptions, InfoGain, Novelty, Utility  # noqa: E402
from aif.errors import ModelError, ObservationError, ParameterError, PolicyError, StrategyError  # noqa: E402
from aif_deep import learning as dl  # noqa: E402

TOL = 1e-10


def models(seed, n):
    """Random models with Dirichlet counts; half with B_dependencies (interactions between factors)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        c = random_config(rng)
        nf = len(c["num_states"])
        B_deps = None
        if rng.random() < 0.5:
            B_deps = [sorted({f} | {int(g) for g in rng.choice(nf, rng.integers(0, nf + 1), replace=False)})
                      for f in range(nf)]
        model = aif.random_model(rng, c["num_states"], c["num_obs"], c["num_controls"],
                                 A_dependencies=c["A_dependencies"], B_dependencies=B_deps,
                                 concentration=float(rng.choice([0.3, 1.0])), dirichlet=True)
        yield rng, model


def t64(arrays):
    return [torch.tensor(np.asarray(a), dtype=torch.float64) for a in arrays]  # copies (a model's arrays are read-only)


def dev(a, b):
    """Largest deviation relative to max(1, |reference|): counts near zero give novelty weights up to ~1e9."""
    return max(float((np.abs(np.asarray(x) - y.detach().numpy()) / np.maximum(1.0, np.abs(x))).max())
               for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("wnorm", [learning.WNORM_LEGACY, learning.WNORM_SPM, learning.WNORM_EXACT],
                         ids=["legacy", "spm", "exact"])
def test_parameter_info_gain_terms_equal_aif(wnorm):
    terms = (Utility(), InfoGain(), Novelty("A", wnorm), Novelty("B", wnorm))
    worst, largest = 0.0, 0.0
    for rng, model in models(0, 30):
        tm = aif_deep.TabularModel.from_aif(model, device="cpu")
        qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
        policies = aif.enumerate_policies(model.num_controls, int(rng.integers(1, 4)))[:200]
        options = EFEOptions()
        G, ref = aif.expected_free_energy(model, qs, policies, terms=terms, options=options)
        G_t, got = aif_deep.expected_free_energy(tm, t64(qs), policies, terms=terms, options=options)
        names = ("pA_info_gain", "pB_info_gain")
        worst = max(worst, dev([G] + [ref[k] for k in names], [G_t] + [got[k] for k in names]))
        largest = max(largest, float(np.abs(ref["pB_info_gain"]).max()))
    assert worst < TOL, worst
    assert largest > 1e-3  # the terms are not trivially zero


def test_parameter_info_gain_for_a_batch_of_agents_equals_each_agent():
    rng, model = next(models(1, 1))
    counts = [aif.random_model(np.random.default_rng(k), model.num_states, model.num_obs, model.num_controls,
                               A_dependencies=model.A_dependencies, B_dependencies=model.B_dependencies,
                               dirichlet=True) for k in range(3)]
    tm = aif_deep.TabularModel.from_aif(counts, device="cpu")
    qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    policies = aif.enumerate_policies(model.num_controls, 2)
    terms = (Novelty("A"), Novelty("B"))
    G_t, _ = aif_deep.expected_free_energy(tm, t64(qs), policies, terms=terms)
    for k, m in enumerate(counts):
        G, _ = aif.expected_free_energy(m, qs, policies, terms=terms)
        assert np.abs(G - G_t[k].numpy()).max() < TOL


def test_updates_equal_aif_for_a_batch():
    worst = 0.0
    for rng, model in models(2, 30):
        n = 3
        obs = [rng.integers(o, size=n) for o in model.num_obs]
        qs = [rng.dirichlet(np.ones(s), size=n) for s in model.num_states]
        qs_prev = [rng.dirichlet(np.ones(s), size=n) for s in model.num_states]
        action = np.stack([rng.integers(u, size=n) for u in model.num_controls], -1)
        lr, forgetting = float(rng.uniform(0.1, 2)), float(rng.choice([1.0, 0.9]))
        prior = [p * 0.5 for p in model.pA]
        pA = dl.update_A([torch.as_tensor(np.stack([p] * n)) for p in model.pA], [torch.as_tensor(o) for o in obs],
                         t64(qs), lr, forgetting, A_dependencies=model.A_dependencies,
                         prior=[np.stack([p] * n) for p in prior])
        pB = dl.update_B([torch.as_tensor(np.stack([p] * n)) for p in model.pB], t64(qs), t64(qs_prev),
                         torch.as_tensor(action), lr, forgetting, B_dependencies=model.B_dependencies)
        pD = dl.update_D([torch.as_tensor(np.stack([p] * n)) for p in model.pD], t64(qs), lr, forgetting)
        for k in range(n):
            ref_A = learning.update_A(model.pA, [int(o[k]) for o in obs], [q[k] for q in qs], lr, forgetting,
                                      A_dependencies=model.A_dependencies, prior=prior)
            ref_B = learning.update_B(model.pB, [q[k] for q in qs], [q[k] for q in qs_prev], action[k], lr,
                                      forgetting, B_dependencies=model.B_dependencies)
            ref_D = learning.update_D(model.pD, [q[k] for q in qs], lr, forgetting)
            worst = max(worst, dev(ref_A, [p[k] for p in pA]), dev(ref_B, [p[k] for p in pB]),
                        dev(ref_D, [p[k] for p in pD]))
    assert worst < TOL, worst


def test_probability_observations_and_gradients():
    _, model = next(models(3, 1))
    qo = [np.full(o, 1.0 / o) for o in model.num_obs]
    qs = t64([np.full(s, 1.0 / s) for s in model.num_states])
    for q in qs:
        q.requires_grad_(True)
    ref = learning.update_A(model.pA, qo, [q.detach().numpy() for q in qs], A_dependencies=model.A_dependencies)
    got = dl.update_A(t64(model.pA), t64(qo), qs, A_dependencies=model.A_dependencies)
    assert dev(ref, got) < TOL
    sum(p.sum() for p in got).backward()
    used = sorted({f for deps in model.A_dependencies for f in deps})
    assert all(qs[f].grad is not None and torch.isfinite(qs[f].grad).all() for f in used)


def test_bad_input_raises_named_errors():
    _, model = next(models(4, 1))
    pA, pB = t64(model.pA), t64(model.pB)
    qs = t64([np.full(s, 1.0 / s) for s in model.num_states])
    obs = [0] * len(pA)
    with pytest.raises(ParameterError, match="lr"):
        dl.update_A(pA, obs, qs, lr=-1.0, A_dependencies=model.A_dependencies)
    with pytest.raises(ParameterError, match="forgetting"):
        dl.update_D(t64(model.pD), qs, forgetting=0.0)
    with pytest.raises(ModelError, match=r"pA\[0\] has a negative entry"):
        dl.update_A([-p for p in pA], obs, qs, A_dependencies=model.A_dependencies)
    with pytest.raises(ModelError, match="list"):
        dl.update_A(pA[0], obs, qs)
    with pytest.raises(ObservationError, match="outcome"):
        dl.update_A(pA, [model.num_obs[0]] + obs[1:], qs, A_dependencies=model.A_dependencies)
    with pytest.raises(ObservationError, match="entries"):
        dl.update_A(pA, obs + [0], qs, A_dependencies=model.A_dependencies)
    with pytest.raises(PolicyError, match="out of range"):
        dl.update_B(pB, qs, qs, torch.tensor([u for u in model.num_controls]), B_dependencies=model.B_dependencies)
    with pytest.raises(PolicyError, match="integer"):
        dl.update_B(pB, qs, qs, torch.zeros(len(pB)), B_dependencies=model.B_dependencies)
    plain = aif_deep.TabularModel.from_aif(aif.GenerativeModel(A=model.A, B=model.B, C=model.C, D=model.D,
                                                               A_dependencies=model.A_dependencies,
                                                               B_dependencies=model.B_dependencies), device="cpu")
    with pytest.raises(ParameterError, match="no pA"):
        aif_deep.expected_free_energy(plain, qs, aif.enumerate_policies(model.num_controls, 1),
                                      terms=(Utility(), Novelty("A")))
    with pytest.raises(ModelError, match="pB"):
        plain.replace(pB=[p[..., :1] for p in pB])


def test_novelty_prefers_rarely_counted_transitions():
    """A two-state, two-action world where action 1 was never tried: its B novelty is larger."""
    pB = np.ones((2, 2, 2))
    pB[:, :, 0] = 50.0
    model = aif.GenerativeModel(A=[np.eye(2)], B=None, pB=[pB], C=[np.zeros(2)], D=[np.array([0.5, 0.5])])
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    G, terms = aif_deep.expected_free_energy(tm, t64(model.D), aif.enumerate_policies([2], 1),
                                             terms=(Novelty("B"),))
    assert terms["pB_info_gain"][1] > terms["pB_info_gain"][0] > 0
    assert G[1] < G[0]


def _learnable_grid(env):
    """The grid's model with A and B learnable from random prior counts (uniform counts make EFE ties, which
    the two libraries may break differently at the last bit)."""
    model = env.generative_model(learn_B=True)
    rng = np.random.default_rng(7)
    pB = [p.copy() for p in model.pB]
    pB[0] = rng.uniform(0.2, 1.0, pB[0].shape)
    return model.replace(pA=[a * 20.0 + rng.uniform(0.2, 1.0, a.shape) for a in model.A], A=None, pB=pB, B=None)


def _learning_runs(n_agents, steps, reset_at):
    """aif.Agents learning A and B online on a slippery grid, each stepping its own environment; returns the
    agents, the observations they saw ``(steps, n_agents)`` and their actions ``(steps, n_agents)``."""
    from aif.envs import GridWorld

    agents, observations, actions = [], [], []
    for k in range(n_agents):
        env = GridWorld((3, 3), slip=0.3, terminate_at_goal=False)
        model = _learnable_grid(env)
        agent = aif.Agent(model, policy_horizon=2, efe_terms=(Utility(), InfoGain(), Novelty("B")),
                          learning=aif.Learning(lr=1.0, forgetting=0.95))
        obs, _ = env.reset(seed=k)
        seen, taken = [], []
        for t in range(steps):
            if t == reset_at and k % 2 == 0:  # agents 0, 2, ... start a new episode here
                obs, _ = env.reset(seed=100 + k)
                agent.reset()
            seen.append(int(obs[0]))
            a = agent.step([int(obs[0])])
            taken.append(int(a[0]))
            obs, *_ = env.step(int(a[0]))
        agents.append(agent)
        observations.append(seen)
        actions.append(taken)
    return agents, np.array(observations).T, np.array(actions).T


def test_online_learning_agent_equals_aif_agents_for_a_batch():
    n, steps, reset_at = 3, 12, 7
    ref, observations, actions = _learning_runs(n, steps, reset_at)
    from aif.envs import GridWorld

    model = _learnable_grid(GridWorld((3, 3), slip=0.3, terminate_at_goal=False))
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    agent = aif_deep.Agent(tm, policy_horizon=2, efe_terms=(Utility(), InfoGain(), Novelty("B")),
                           batch_shape=(n,), learning=aif.Learning(lr=1.0, forgetting=0.95))
    for t in range(steps):
        if t == reset_at:
            agent.reset(agents=torch.arange(n) % 2 == 0)
        a = agent.step([torch.as_tensor(observations[t])])
        assert (a[:, 0].numpy() == actions[t]).all(), t
    for k in range(n):
        assert dev(ref[k].model.pB, [p[k] for p in agent.model.pB]) < TOL
        assert dev(ref[k].model.pA, [p[k] for p in agent.model.pA]) < TOL
        assert dev(ref[k].model.B, [b[k] for b in agent.model.B]) < TOL
    assert not torch.equal(agent.model.pB[0][0], agent.model.pB[0][1])  # each agent learned its own counts


def test_learning_settings_are_checked():
    tm = aif_deep.TabularModel.from_aif(aif.envs.TMaze().generative_model(), device="cpu")
    with pytest.raises(ParameterError, match="no pB"):
        aif_deep.Agent(tm, learning=aif.Learning(learn_A=False))
    with pytest.raises(ParameterError, match="no pD"):  # offline / D learning runs in aif, with its checks
        aif_deep.Agent(tm, learning=aif.Learning(online=False, learn_A=False, learn_B=False, learn_D=True))
    with pytest.raises(StrategyError, match="learning must be a learner strategy"):
        aif_deep.Agent(tm, learning={"lr": 1.0})


def test_a_learning_agent_saved_and_loaded_continues_identically(tmp_path):
    from aif.envs import GridWorld

    model = _learnable_grid(GridWorld((3, 3), slip=0.3, terminate_at_goal=False))
    settings = dict(policy_horizon=2, efe_terms=(Utility(), InfoGain(), Novelty("B")), batch_shape=(2,),
                    learning=aif.Learning(lr=1.0, forgetting=0.9))
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), **settings)
    obs = np.random.default_rng(0).integers(9, size=(10, 2))
    for t in range(5):
        agent.step([torch.as_tensor(obs[t])])
    aif_deep.save_agent(tmp_path / "agent.pt", agent)
    loaded = aif_deep.load_agent(tmp_path / "agent.pt")
    assert loaded.learning == agent.learning
    for t in range(5, 10):
        assert torch.equal(agent.step([torch.as_tensor(obs[t])]), loaded.step([torch.as_tensor(obs[t])]))
    for name in ("pA", "pB"):
        pairs = zip(getattr(agent.model, name), getattr(loaded.model, name), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("mask_zeros", [True, False])
def test_zero_counts_as_aif(mask_zeros):
    """Structural zeros: the torch updates equal aif's (left at zero, or learned with mask_zeros=False), and an
    Agent learning from counts with zeros keeps them as aif.Agent does."""
    rng = np.random.default_rng(4)
    for seed in range(10):
        model = aif.random_model(np.random.default_rng(seed), [3, 2], [4, 3], [2, 2], dirichlet=True)
        pA, pB = [p.copy() for p in model.pA], [p.copy() for p in model.pB]
        for p in pA + pB:
            p[1:][rng.random(p[1:].shape) < 0.3] = 0.0  # zeros below the first row: no column sums to 0
        qs, qs_prev = ([rng.dirichlet(np.ones(s)) for s in model.num_states] for _ in range(2))
        obs, action = [int(rng.integers(o)) for o in model.num_obs], np.array([1, 0])
        t = lambda xs: [torch.tensor(x) for x in xs]  # noqa: E731
        ours = learning.update_A(pA, obs, qs, lr=0.7, forgetting=0.9, mask_zeros=mask_zeros)
        theirs = dl.update_A(t(pA), obs, t(qs), lr=0.7, forgetting=0.9, mask_zeros=mask_zeros)
        ours += learning.update_B(pB, qs, qs_prev, action, lr=0.7, mask_zeros=mask_zeros)
        theirs += dl.update_B(t(pB), t(qs), t(qs_prev), torch.tensor(action), lr=0.7, mask_zeros=mask_zeros)
        for x, y, before in zip(ours, theirs, pA + pB, strict=True):
            np.testing.assert_allclose(y.numpy(), x, atol=1e-12)
            assert not mask_zeros or (x[before == 0] == 0).all()
    model = aif.envs.TMaze().generative_model(learn_A=True)
    pA = [p.copy() for p in model.pA]
    pA[1][0, 1:3] = 0.0  # no "no reward" outcome in the arms: a structural zero
    model = model.replace(pA=pA, A=None)
    settings = dict(learning=aif.Learning(lr=0.5, learn_B=False, mask_zeros=mask_zeros))
    agents = aif.Agent(model, **settings), aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"),
                                                          **settings)
    for obs in ([0, 0, 0], [1, 1, 0], [1, 2, 1], [2, 1, 1]):
        for agent in agents:
            agent.step(obs)
    np.testing.assert_allclose(agents[1].model.pA[1].numpy(), agents[0].model.pA[1], atol=1e-12)
    assert (agents[0].model.pA[1][0, 1:3] == 0).all() == mask_zeros
    with pytest.raises(ModelError, match="a negative entry"):
        dl.update_D([torch.tensor([1.0, -1.0])], [torch.tensor([0.5, 0.5])])
    with pytest.raises(ModelError, match="sum to 0.0 in the column"):
        dl.update_D([torch.zeros(2)], [torch.tensor([0.5, 0.5])])


@pytest.mark.parametrize("wnorm", [aif.WNORM_SPM12_TRIAL, aif.WNORM_LEGACY, aif.WNORM_EXACT])
def test_torch_novelty_weights_equal_aif_including_the_scale(wnorm):
    from aif_deep.learning import novelty_weights

    a = np.random.default_rng(0).gamma(2.0, 1.0, (3, 4))
    np.testing.assert_allclose(novelty_weights(torch.tensor(a), 0, wnorm).numpy(), aif.spm_wnorm(a, wnorm), atol=1e-12)
