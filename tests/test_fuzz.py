"""Fuzz: the cycle's public functions of both packages, and both Agents, driven with malformed inputs.

Each case starts from a valid call and replaces one argument by a malformed value drawn by hypothesis (NaN, inf,
negative, unnormalised, wrong shape or length, wrong type, a string, None, a fraction where an index goes, an
index out of range). The call must either return a finite result or raise the library's own error (``AifError``,
a ``ValueError`` or ``TypeError`` subclass); any other exception (a raw IndexError, AttributeError, numpy or
torch error) fails the test. A bounded budget (derandomised, no database) keeps it in CI.
"""

import numpy as np
import pytest
from _fuzz import check, fuzz_settings, run
from hypothesis import given
from hypothesis import strategies as st

import aif
from aif.errors import AifError

torch = pytest.importorskip("torch")
import aif_deep  # noqa: E402

SETTINGS = fuzz_settings(30)

MODEL = aif.random_model(np.random.default_rng(0), [3, 2], [3, 2], [2, 2], [[0, 1], [1]], [[0], [1]],
                         dirichlet=True)
TMODEL = aif_deep.TabularModel.from_aif(MODEL, device="cpu")
QS = [np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.4])]
POLICIES = aif.enumerate_policies(MODEL.num_controls, 1)
Q_PI = np.full(len(POLICIES), 1.0 / len(POLICIES))

BAD_SCALARS = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e308, 2.5, -3, 10**6, "x", None, True, [], [0, 1]]


def bad_vector(n):
    """A malformed probability vector of intended length ``n``."""
    return st.one_of(
        st.sampled_from(BAD_SCALARS),
        st.builds(lambda v, i: np.where(np.arange(n) == i, v, 1.0 / n), st.sampled_from([np.nan, np.inf, -0.5, 2.0]),
                  st.integers(0, n - 1)),
        st.builds(lambda k: np.full(k, 1.0 / max(k, 1)), st.sampled_from([0, n - 1, n + 1])),
        st.just(np.ones((n, n)) / n), st.just(np.zeros(n)), st.just(["a"] * n))


def bad_beliefs():
    return st.one_of(
        st.sampled_from(BAD_SCALARS),
        st.builds(lambda q: [q, QS[1]], bad_vector(3)),
        st.builds(lambda q: [QS[0], q], bad_vector(2)),
        st.just([QS[0]]), st.just([*QS, QS[1]]), st.just(np.stack([QS[0][:2], QS[1]])))


def bad_obs():
    return st.one_of(
        st.sampled_from(BAD_SCALARS),
        st.builds(lambda o: [o, 0], st.sampled_from([-1, 3, 2.5, np.nan, "a", None, [0.5, 0.5], [0.2, 0.2, 0.2]])),
        st.builds(lambda o: [0, o], st.sampled_from([-1, 2, 1.5, np.inf, [1.0, 0.5], [0.3, 0.3, 0.4]])),
        st.just([0]), st.just([0, 0, 0]), st.just([[0, 1], [1, 0]]))


def bad_policies():
    return st.one_of(
        st.sampled_from(BAD_SCALARS),
        st.just(np.zeros((2, 1, 3), int)), st.just(np.full((2, 1, 2), 5)), st.just(np.full((2, 1, 2), -1)),
        st.just(np.full((2, 1, 2), 0.5)), st.just(np.zeros((0, 1, 2), int)), st.just(np.zeros((2, 0, 2), int)),
        st.just(np.zeros((2, 2), int)))


def bad_action():
    return st.one_of(st.sampled_from(BAD_SCALARS), st.just(np.array([0.5, 1.0])), st.just(np.array([2, 0])),
                     st.just(np.array([0, -1])), st.just(np.array([0, 0, 0])), st.just(np.array([np.nan, 0])))


def _tensors(qs):
    return [torch.as_tensor(q) if isinstance(q, np.ndarray) and q.dtype.kind == "f" else q for q in qs] \
        if isinstance(qs, list) else qs


CASES = {
    "infer_states.obs": (bad_obs(), lambda o: aif.infer_states(MODEL, o, QS)),
    "infer_states.prior": (bad_beliefs(), lambda p: aif.infer_states(MODEL, [0, 1], p)),
    "expected_free_energy.qs": (bad_beliefs(), lambda q: aif.expected_free_energy(MODEL, q, POLICIES)),
    "expected_free_energy.policies": (bad_policies(), lambda p: aif.expected_free_energy(MODEL, QS, p)),
    "policy_posterior.G": (bad_vector(4), lambda G: aif.policy_posterior(G, None, 16.0)),
    "policy_posterior.E": (bad_vector(4), lambda E: aif.policy_posterior(np.zeros(4), E, 16.0)),
    "policy_posterior.gamma": (st.sampled_from(BAD_SCALARS), lambda g: aif.policy_posterior(np.zeros(4), None, g)),
    "select_action.q_pi": (bad_vector(4), lambda q: aif.select_action(q, POLICIES)),
    "select_action.policies": (bad_policies(), lambda p: aif.select_action(Q_PI, p)),
    "select_action.alpha": (st.sampled_from(BAD_SCALARS),
                            lambda a: aif.select_action(Q_PI, POLICIES, "stochastic", np.random.default_rng(0), a)),
    "predict.qs": (bad_beliefs(), lambda q: aif.predict(MODEL, q, np.array([0, 1]))),
    "predict.action": (bad_action(), lambda a: aif.predict(MODEL, QS, a)),
    "enumerate_policies.horizon": (st.sampled_from(BAD_SCALARS), lambda h: aif.enumerate_policies([2, 2], h)),
    "update_A.obs": (bad_obs(), lambda o: aif.learning.update_A(MODEL.pA, o, QS)),
    "update_A.qs": (bad_beliefs(), lambda q: aif.learning.update_A(MODEL.pA, [0, 1], q)),
    "update_A.lr": (st.sampled_from(BAD_SCALARS), lambda lr: aif.learning.update_A(MODEL.pA, [0, 1], QS, lr=lr)),
    "update_B.action": (bad_action(), lambda a: aif.learning.update_B(MODEL.pB, QS, QS, a)),
    "deep.infer_states.obs": (bad_obs(), lambda o: aif_deep.infer_states(TMODEL, o, _tensors(QS))),
    "deep.infer_states.prior": (bad_beliefs(), lambda p: aif_deep.infer_states(TMODEL, [0, 1], _tensors(p))),
    "deep.evaluate_policies.qs": (bad_beliefs(), lambda q: aif_deep.evaluate_policies(TMODEL, _tensors(q), POLICIES)),
    "deep.evaluate_policies.policies": (bad_policies(),
                                        lambda p: aif_deep.evaluate_policies(TMODEL, _tensors(QS), p)),
    "deep.policy_posterior.E": (bad_vector(4), lambda E: aif_deep.policy_posterior(torch.zeros(4, dtype=torch.float64),
                                                                                   E, 16.0)),
    "deep.predict.action": (bad_action(), lambda a: aif_deep.predict(TMODEL, _tensors(QS), a)),
    "deep.select_action.q_pi": (bad_vector(4), lambda q: aif_deep.select_action(
        torch.as_tensor(q) if isinstance(q, np.ndarray) and q.dtype.kind == "f" else q, POLICIES)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_public_functions_raise_the_librarys_error_or_return_finite_values(name):
    run(*CASES[name], 30)


AGENT_SETTINGS = st.fixed_dictionaries({}, optional={
    "gamma": st.sampled_from(BAD_SCALARS), "alpha": st.sampled_from(BAD_SCALARS),
    "policy_horizon": st.sampled_from(BAD_SCALARS), "policies": bad_policies(),
    "control_factors": st.sampled_from([[5], [-1], "0", [0.5]]),
    "inference_horizon": st.sampled_from(BAD_SCALARS), "efe_terms": st.sampled_from(["utility", (), [None]]),
})


@pytest.mark.parametrize("package", ["aif", "aif_deep"])
def test_agents_refuse_malformed_settings_and_observations(package):
    Agent, model = (aif.Agent, MODEL) if package == "aif" else (aif_deep.Agent, TMODEL)

    @SETTINGS
    @given(AGENT_SETTINGS, bad_obs())
    def run(kwargs, obs):
        try:
            agent = Agent(model, **kwargs)
        except AifError:
            return
        check(lambda: agent.step(obs))
        assert agent.t in (0, 1)

    run()
