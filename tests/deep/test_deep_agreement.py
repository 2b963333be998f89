"""aif_deep against aif: state inference, EFE and its terms, q(pi), actions, on many random models.

Float64 on the CPU must equal aif to 1e-10; float32 on CUDA to 1e-4 (skipped without a GPU).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _reference import random_case, random_config  # noqa: E402

import aif  # noqa: E402
import aif_deep  # noqa: E402
from aif.errors import ModelError, ObservationError, ParameterError, PolicyError  # noqa: E402

TOL = 1e-10
METHODS = {"default": aif.FixedPoint(), "legacy": aif.FixedPoint.pymdp_legacy(), "pymdp": aif.FixedPoint.pymdp(),
           "exact": aif.Exact()}
OPTIONS = {"exact": (aif.EFEOptions(), aif.DEFAULT_TERMS), "pymdp": (aif.EFEOptions.pymdp(), aif.DEFAULT_TERMS),
           "legacy": (aif.EFEOptions.pymdp_legacy(), aif.DEFAULT_TERMS),
           "joint": (aif.EFEOptions(), (aif.Utility(), aif.InfoGain(joint=True)))}
TERMS = ("risk", "ambiguity", "utility", "state_info_gain")


def cases(seed, n):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        config = random_config(rng)
        model, obs, prior = random_case(rng, config, concentration=float(rng.choice([0.3, 1.0])))
        yield rng, model, obs, prior


def t64(arrays):
    return [torch.as_tensor(a, dtype=torch.float64) for a in arrays]


def max_dev(a, b):
    return max(float(np.abs(np.asarray(x) - y.detach().cpu().numpy()).max()) for x, y in zip(a, b, strict=True))


def test_infer_states_equals_aif_for_every_method():
    worst = dict.fromkeys(METHODS, 0.0)
    for _, model, obs, prior in cases(0, 60):
        tm = aif_deep.TabularModel.from_aif(model, device="cpu")
        for name, method in METHODS.items():
            expected = aif.infer_states(model, obs, prior, method)
            got = aif_deep.infer_states(tm, obs, t64(prior), method)
            worst[name] = max(worst[name], max_dev(expected, got))
    assert max(worst.values()) < TOL, worst


def test_efe_terms_and_q_pi_equal_aif_under_every_option():
    worst = 0.0
    for rng, model, obs, prior in cases(1, 40):
        tm = aif_deep.TabularModel.from_aif(model, device="cpu")
        qs = aif.infer_states(model, obs, prior)
        policies = aif.enumerate_policies(model.num_controls, int(rng.integers(1, 4)))
        for options, efe_terms in OPTIONS.values():
            G, terms = aif.expected_free_energy(model, qs, policies, efe_terms, options=options)
            G_t, terms_t = aif_deep.expected_free_energy(tm, t64(qs), policies, efe_terms, options=options)
            worst = max(worst, max_dev([G] + [terms[k] for k in TERMS], [G_t] + [terms_t[k] for k in TERMS]))
            q_pi = aif.policy_posterior(G, gamma=3.0)
            worst = max(worst, max_dev([q_pi], [aif_deep.policy_posterior(G_t, gamma=3.0)]))
        for chosen in [(aif.Risk(), aif.Ambiguity()), (aif.Utility(),), (aif.InfoGain(), aif.Ambiguity())]:
            G, _ = aif.expected_free_energy(model, qs, policies, terms=chosen)
            G_t, _ = aif_deep.expected_free_energy(tm, t64(qs), policies, terms=chosen)
            worst = max(worst, max_dev([G], [G_t]))
    assert worst < TOL


def test_batch_of_models_and_beliefs_equals_each_member():
    """Agents with their own parameters (one batched TabularModel), beliefs with an extra leading trial axis."""
    rng = np.random.default_rng(2)
    for _ in range(6):
        config = random_config(rng)
        members = [random_case(rng, config) for _ in range(5)]
        models = [m for m, _, _ in members]
        tm = aif_deep.TabularModel.from_aif(models, device="cpu")
        assert tm.batch_shape == (5,)
        # obs (K=2, N=5, M), priors (K, N, S_f)
        obs = np.array([[[int(rng.integers(o)) for o in models[0].num_obs] for _ in models] for _ in range(2)])
        priors = [rng.dirichlet(np.ones(s), size=(2, 5)) for s in models[0].num_states]
        qs = aif_deep.infer_states(tm, torch.as_tensor(obs), t64(priors))
        policies = aif.enumerate_policies(models[0].num_controls, 2)
        G, terms = aif_deep.expected_free_energy(tm, qs, policies)
        assert G.shape == (2, 5, len(policies))
        for k in range(2):
            for n, model in enumerate(models):
                q_ref = aif.infer_states(model, list(obs[k, n]), [p[k, n] for p in priors])
                assert max_dev(q_ref, [q[k, n] for q in qs]) < TOL
                G_ref, terms_ref = aif.expected_free_energy(model, q_ref, policies)
                assert max_dev([G_ref, terms_ref["risk"]], [G[k, n], terms["risk"][k, n]]) < TOL


def test_probability_observations_and_time_varying_preferences():
    rng = np.random.default_rng(3)
    model = aif.random_model(rng, [3, 2], [4, 3], [2, 2])
    C = [rng.normal(size=(4, 3)), rng.normal(size=3)]
    model = model.replace(C=C)
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    obs = [rng.dirichlet(np.ones(4)), 1]
    qs = aif.infer_states(model, obs)
    assert max_dev(qs, aif_deep.infer_states(tm, [torch.as_tensor(obs[0]), obs[1]])) < TOL
    policies = aif.enumerate_policies(model.num_controls, 4)
    G, _ = aif.expected_free_energy(model, qs, policies)
    assert max_dev([G], [aif_deep.expected_free_energy(tm, t64(qs), policies)[0]]) < TOL


def test_action_selection_matches_aif():
    rng = np.random.default_rng(4)
    model = aif.random_model(rng, [3, 2], [3], [3, 2])
    policies = aif.enumerate_policies(model.num_controls, 2)
    q_pi = rng.dirichlet(np.ones(len(policies)) * 0.5)
    q_t = torch.as_tensor(q_pi)
    for sampling in ("full", "marginal"):
        for mode in ("deterministic", "stochastic"):
            ref = aif.action_probabilities(q_pi, policies, mode, 2.0, sampling)
            got = aif_deep.action_probabilities(q_t, policies, mode, 2.0, sampling)
            assert max_dev(ref if sampling == "marginal" else [ref], got if sampling == "marginal" else [got]) < TOL
        assert (aif_deep.select_action(q_t, policies, sampling=sampling).numpy()
                == aif.select_action(q_pi, policies, sampling=sampling)).all()
        # ln p(action) under stochastic selection, against aif's probabilities.
        for action in [(0, 0), (2, 1), (1, 0)]:
            probs = aif.action_probabilities(q_pi, policies, "stochastic", 2.0, sampling)
            if sampling == "full":
                expected = probs[(policies[:, 0] == action).all(-1)].sum()
            else:
                expected = probs[0][action[0]] * probs[1][action[1]]
            got = aif_deep.action_log_probability(q_t, policies, torch.tensor(action), 2.0, sampling)
            assert abs(float(got) - np.log(expected)) < TOL
    # Stochastic draws follow the probabilities (8000 draws of a batch, seeded).
    gen = torch.Generator().manual_seed(0)
    draws = aif_deep.select_action(q_t.expand(8000, -1), policies, "stochastic", gen, alpha=1.0, sampling="marginal")
    freq = np.bincount(draws[:, 0].numpy(), minlength=3) / 8000
    assert np.abs(freq - aif.action_marginals(q_pi, policies)[0]).max() < 0.03


def test_predict_equals_aif():
    for rng, model, obs, prior in cases(5, 20):
        tm = aif_deep.TabularModel.from_aif(model, device="cpu")
        action = np.array([int(rng.integers(u)) for u in model.num_controls])
        expected = aif.predict(model, prior, action)
        assert max_dev(expected, aif_deep.predict(tm, t64(prior), torch.as_tensor(action))) < TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the float32 GPU agreement runs on a GPU")
def test_float32_on_cuda_agrees_with_aif_to_1e_4():
    assert aif_deep.default_device().type == "cuda"
    worst = 0.0
    for rng, model, obs, prior in cases(6, 30):
        tm = aif_deep.TabularModel.from_aif(model, dtype=torch.float32)
        assert tm.device.type == "cuda"
        q_ref = aif.infer_states(model, obs, prior)
        qs = aif_deep.infer_states(tm, obs, [torch.tensor(p, dtype=torch.float32, device="cuda") for p in prior])
        policies = aif.enumerate_policies(model.num_controls, int(rng.integers(1, 4)))
        G, terms = aif.expected_free_energy(model, q_ref, policies)
        G_t, terms_t = aif_deep.expected_free_energy(tm, qs, policies)
        q_pi = aif.policy_posterior(G)
        got = [G_t, aif_deep.policy_posterior(G_t)] + [terms_t[k] for k in TERMS]
        worst = max(worst, max_dev(q_ref, qs), max_dev([G, q_pi] + [terms[k] for k in TERMS], got))
    assert worst < 1e-4


def test_bad_input_names_the_argument():
    rng = np.random.default_rng(7)
    model = aif.random_model(rng, [3, 2], [4, 2], [2, 2])
    tm = aif_deep.TabularModel.from_aif(model, device="cpu")
    with pytest.raises(ObservationError, match="out of range for modality 0"):
        aif_deep.infer_states(tm, [4, 0])
    with pytest.raises(ObservationError, match="2 modalities"):
        aif_deep.infer_states(tm, [1])
    with pytest.raises(PolicyError, match="factor 1, which has 2 controls"):
        aif_deep.expected_free_energy(tm, tm.D, np.array([[[0, 2]]]))
    with pytest.raises(aif.errors.StrategyError, match="EFE terms are objects"):
        aif_deep.expected_free_energy(tm, tm.D, np.array([[[0, 1]]]), terms=("utility",))
    with pytest.raises(ParameterError, match="gamma"):
        aif_deep.policy_posterior(torch.zeros(3), gamma=-1.0)
    other = aif.random_model(rng, [3, 3], [4, 2], [2, 2])
    with pytest.raises(ModelError, match="num_states"):
        aif_deep.TabularModel.from_aif([model, other], device="cpu")
