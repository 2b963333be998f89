"""The compiled step (``aif.fast``) against the NumPy path: the same beliefs, G, terms, q(pi), actions and priors
on random models, and a clear fallback wherever the kernel does not cover the agent or the step."""

import copy

import numpy as np
import pytest

import aif
from aif import fast
from aif.efe import Guards
from aif.envs import GridWorld, TMaze
from aif.errors import ObservationError
from aif.maths import LEGACY

pytest.importorskip("numba")

TOL = 1e-12


pytestmark = pytest.mark.usefixtures("compiled_kernel")


def agent_pair(monkeypatch, model, **kwargs):
    """The same agent twice: with the compiled step, and on the NumPy path (``AIF_FAST=0``)."""
    monkeypatch.setenv(fast.ENV_VAR, "1")
    compiled = aif.Agent(model, **kwargs)
    monkeypatch.setenv(fast.ENV_VAR, "0")
    reference = aif.Agent(model, **{k: copy.deepcopy(v) if k == "rng" else v for k, v in kwargs.items()})
    monkeypatch.delenv(fast.ENV_VAR)
    assert compiled._fast is not None and reference._fast is None
    return compiled, reference


def assert_same(a, b):
    for q_a, q_b in zip(a.qs, b.qs, strict=True):
        np.testing.assert_allclose(q_a, q_b, rtol=0, atol=TOL)
    np.testing.assert_allclose(a.q_pi, b.q_pi, rtol=0, atol=TOL)
    scale = max(1.0, float(np.abs(b.G).max()))
    np.testing.assert_allclose(a.G, b.G, rtol=0, atol=TOL * scale)
    assert list(a.terms) == list(b.terms)
    for name in b.terms:
        np.testing.assert_allclose(a.terms[name], b.terms[name], rtol=0, atol=TOL * scale)
    np.testing.assert_array_equal(a.action, b.action)
    assert a.action.dtype == b.action.dtype
    for p_a, p_b in zip(a.prior, b.prior, strict=True):
        np.testing.assert_allclose(p_a, p_b, rtol=0, atol=TOL)
    assert a.t == b.t


SHAPES = [  # num_states, num_obs, num_controls, A_dependencies, B_dependencies
    ([4], [3], [3], None, None),
    ([3, 2], [4, 2, 3], [3, 1], None, None),
    ([3, 2, 2], [3, 4], [2, 2, 1], [[0, 2], [1]], [[0], [1, 0], [2]]),
    ([2, 3], [5], [2, 3], [[1, 0]], [[0, 1], [1]]),
]

SETTINGS = [  # Agent keyword arguments
    {},
    {"inference": aif.FixedPoint.pymdp(), "efe": aif.EFEOptions.pymdp(), "gamma": 1.0},
    {"inference": aif.FixedPoint.pymdp_legacy(), "efe_terms": (aif.Risk(), aif.Ambiguity())},
    {"inference": aif.Exact(), "efe_terms": (aif.Utility(),), "selection": aif.Selection(sampling="marginal")},
    {"efe_terms": (aif.Ambiguity(), aif.Utility(), aif.Risk()), "selection": aif.Selection("stochastic"),
     "rng": np.random.default_rng(3), "alpha": 4.0},
    {"selection": aif.Selection("stochastic", "marginal"), "rng": np.random.default_rng(5), "gamma": 2.0},
]


@pytest.mark.parametrize("shape", range(len(SHAPES)))
@pytest.mark.parametrize("settings", range(len(SETTINGS)))
def test_compiled_step_equals_numpy_path(monkeypatch, shape, settings):
    """Random models (several factors and modalities, sparse A and B dependencies, uncontrolled factors), every
    inference method and selection the kernel covers, horizons 1 to 3: ten steps of both paths agree."""
    S, O, U, A_deps, B_deps = SHAPES[shape]
    rng = np.random.default_rng(10 * shape + settings)
    model = aif.random_model(rng, S, O, U, A_deps, B_deps, concentration=0.5, C_scale=2.0)
    horizon = 1 + (shape + settings) % 3
    compiled, reference = agent_pair(monkeypatch, model, policy_horizon=horizon, **SETTINGS[settings])
    assert fast.reason(compiled) is None
    for _ in range(10):
        obs = [int(rng.integers(n)) for n in O]
        compiled.step(obs)
        reference.step(obs)
        assert_same(compiled, reference)
    assert compiled.terms["utility"].base is not None  # it ran the kernel (views of its output), not the NumPy path


@pytest.mark.parametrize("settings", [0, 1, 3])
def test_skipped_work_gives_the_same_numbers(monkeypatch, settings):
    """The modalities whose work the policy scoring skips (``aif.fast._flags``): an identity A (q(o) is the predicted
    belief), a certain but not identity A (no ambiguity), modalities reading the factors of the one before (their
    joint reused), beside a noisy one; several factors, a deterministic B (``aif.fast._moves``: next states) and a
    noisy one, horizons 1 to 3."""
    rng = np.random.default_rng(20 + settings)
    base = aif.random_model(rng, [4, 3], [4, 3, 5, 2], [3, 2], [[0], [1], [0, 1], [0, 1]], [[0], [1, 0]],
                            concentration=0.5, C_scale=2.0)
    certain = np.zeros((5, 4, 3))  # each (s0, s1) shows one outcome for sure
    certain[rng.integers(5, size=(4, 3)), np.arange(4)[:, None], np.arange(3)[None, :]] = 1.0
    B0 = np.zeros((4, 4, 3))
    B0[rng.integers(4, size=(4, 3)), np.arange(4)[:, None], np.arange(3)[None, :]] = 1.0  # deterministic moves
    model = base.replace(A=[np.eye(4), np.eye(3), certain, base.A[3]], B=[B0, base.B[1]])
    expected = [1 | 2, 1 | 2, 2, 4]  # A_IDENTITY | A_CERTAIN, ..., A_CERTAIN, A_SAME_DEPS
    assert fast._moves(model.B)[0] == [1, 0]  # B[0]'s moves as next states, B[1] as rows
    for horizon in (1, 2, 3):
        compiled, reference = agent_pair(monkeypatch, model, policy_horizon=horizon, **SETTINGS[settings])
        assert fast._flags(model, [fast.column_entropy(A_m, compiled.efe.guards.likelihood) for A_m in model.A]
                           ) == expected
        for _ in range(6):
            obs = [int(rng.integers(n)) for n in model.num_obs]
            compiled.step(obs)
            reference.step(obs)
            assert_same(compiled, reference)
        assert compiled._fast.last is not None  # the kernel ran


def test_habits_time_varying_preferences_and_horizon(monkeypatch):
    """E with a ruled-out policy, C with a column per step (read at min(t, T - 1)), and a precision so large that
    gamma G overflows (q(pi) falls back to the argmin of the allowed policies)."""
    rng = np.random.default_rng(7)
    base = aif.random_model(rng, [3, 2], [3, 2], [3, 2])
    P = 6**2
    E = rng.dirichlet(np.ones(P))
    E[0] = 0.0
    E /= E.sum()
    C = [rng.normal(size=(3, 2)), rng.normal(size=(2, 3))]
    for gamma in (16.0, 1e308):
        model = base.replace(E=E, C=C)
        compiled, reference = agent_pair(monkeypatch, model, policy_horizon=2, gamma=gamma)
        for _ in range(4):
            obs = [int(rng.integers(3)), int(rng.integers(2))]
            compiled.step(obs)
            reference.step(obs)
            assert_same(compiled, reference)
        assert compiled.q_pi[0] == 0.0


def test_rollout_trajectories_identical(monkeypatch):
    """The T-maze and the grid world: whole rollouts with the compiled step and without it choose the same actions
    and hold the same beliefs."""
    tmaze = TMaze()
    grid = GridWorld((4, 4), start=(0, 0), goals=[(3, 3)], terminate_at_goal=False)
    for env, horizon in ((tmaze, 1), (grid, 2)):
        compiled, reference = agent_pair(monkeypatch, env.generative_model(), policy_horizon=horizon)
        a = aif.rollout(compiled, env, 40, seed=1, progress=False)
        b = aif.rollout(reference, env, 40, seed=1, progress=False)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_allclose(a.q_pi, b.q_pi, rtol=0, atol=TOL)
        for q_a, q_b in zip(a.qs, b.qs, strict=True):
            np.testing.assert_allclose(q_a, q_b, rtol=0, atol=TOL)


def test_fallback_rules(monkeypatch):
    """Each rule of ``aif.fast``'s docstring names the reason, and such an agent's steps run the NumPy path."""
    rng = np.random.default_rng(0)
    model = aif.random_model(rng, [3, 2], [3, 2], [3, 1], dirichlet=True)
    monkeypatch.setenv(fast.ENV_VAR, "1")
    cases = {
        "learning": dict(learning=aif.Learning()),
        "planner": dict(planner=aif.planning.SophisticatedInference(depth=1)),
        "NumPy path: inference": dict(inference=aif.MarginalMessagePassing()),
        "term": dict(efe_terms=(aif.Utility(), aif.InfoGain(), aif.Novelty("A"))),
        "joint": dict(efe_terms=(aif.Utility(), aif.InfoGain(joint=True))),
        "floor": dict(efe=aif.EFEOptions.pymdp_legacy()),
        "preprocess": dict(preprocess=lambda o: o),
    }
    words = {"learning": "learning", "planner": "planner", "NumPy path: inference": "inference is",
             "term": "EFE term", "joint": "EFE term", "floor": "state floor", "preprocess": "preprocess"}
    for case, kwargs in cases.items():
        agent = aif.Agent(model, **kwargs)
        why = fast.reason(agent)
        assert why is not None and words[case] in why, (case, why)
    big = aif.random_model(rng, [17, 16, 16], [2], [1, 1, 1])
    assert "MAX_JOINT" in fast.reason(aif.Agent(big))
    assert "max_bytes" in fast.reason(aif.Agent(model, inference=aif.Exact(max_bytes=40)))
    # the pymdp.legacy guards without the state floor are covered
    assert fast.reason(aif.Agent(model, efe=aif.EFEOptions(guards=Guards(outcome=LEGACY)))) is None
    monkeypatch.setenv(fast.ENV_VAR, "0")
    assert aif.Agent(model)._fast is None and "AIF_FAST=0" in fast.reason(aif.Agent(model))


def test_soft_observation_and_changed_settings(monkeypatch):
    """A probability-vector observation runs that step on the NumPy path, and the next step is compiled again from
    the prior it left; a new ``gamma`` or model between steps is read at the next step."""
    rng = np.random.default_rng(2)
    model = aif.random_model(rng, [3, 2], [3, 2], [3, 2])
    compiled, reference = agent_pair(monkeypatch, model, policy_horizon=2)
    for obs in ([0, 1], [np.array([0.2, 0.5, 0.3]), 1], [2, 0]):
        compiled.step(obs)
        reference.step(obs)
        assert_same(compiled, reference)
    for agent in (compiled, reference):  # a prior vector replaced in the agent's list
        agent.prior[1] = np.array([0.9, 0.1])
    compiled.step([1, 0])
    reference.step([1, 0])
    assert_same(compiled, reference)
    other = aif.random_model(rng, [3, 2], [3, 2], [3, 2])
    for agent in (compiled, reference):
        agent.gamma = 3.0
        agent.model = other
    for obs in ([1, 1], [0, 0]):
        compiled.step(obs)
        reference.step(obs)
        assert_same(compiled, reference)


def test_bad_observation_leaves_agent_unchanged(monkeypatch):
    """The compiled step validates the observation at the boundary (the NumPy path's error) before changing the
    agent."""
    model = aif.random_model(np.random.default_rng(4), [3], [3], [2])
    compiled, _ = agent_pair(monkeypatch, model)
    compiled.step([0])
    before = [compiled.t, compiled.qs, compiled.prior, compiled.q_pi]
    with pytest.raises(ObservationError, match="out of range"):
        compiled.step([3])
    assert all(x is y for x, y in zip([compiled.t, compiled.qs, compiled.prior, compiled.q_pi], before, strict=True))
    assert fast.status() == {"status": "ready", "error": None}


def test_path_is_chosen_when_the_agent_is_built(monkeypatch):
    """Nothing is compiled unless asked; an agent built before the kernel is ready keeps the NumPy path for good
    (so a seeded run gives the same bytes however long compiling takes); AIF_FAST=1 starts compiling in the
    background when the first agent is built."""
    model = aif.random_model(np.random.default_rng(6), [3, 2], [3, 2], [3, 1])
    monkeypatch.setattr(fast, "_kernels", None)
    monkeypatch.setitem(fast._state, "status", "idle")
    before = aif.Agent(model)
    assert before._fast is None and fast.status()["status"] == "idle"
    assert "not compiled" in fast.reason(before)
    monkeypatch.setenv(fast.ENV_VAR, "1")
    during = aif.Agent(model)  # starts the background compilation
    assert during._fast is None and fast.status()["status"] in ("compiling", "ready")
    assert fast.compile()  # waits for the thread
    after = aif.Agent(model)
    assert after._fast is not None
    for obs in ([0, 1], [2, 0], [1, 1]):
        before.step(obs)
        during.step(obs)
        after.step(obs)
        assert_same(after, before)
        assert before.terms["utility"].base is None and after.terms["utility"].base is not None


def test_compile_from_several_threads_makes_the_kernel_once(monkeypatch):
    """Threads that ask at once: one makes the kernel, the others wait for it (background or not), all see it ready."""
    import threading

    made = []
    make = fast._make

    def counted():
        made.append(threading.get_ident())
        threading.Event().wait(0.2)  # a slow compilation: the other threads arrive while it runs
        make()

    monkeypatch.setattr(fast, "_kernels", None)
    monkeypatch.setitem(fast._state, "status", "idle")
    monkeypatch.setattr(fast, "_make", counted)
    results = []
    threads = [threading.Thread(target=lambda b=b: results.append((b, fast.compile(block=b))))
               for b in (False, True) * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fast.compile() and len(made) == 1 and fast.status() == {"status": "ready", "error": None}
    assert len(results) == 6 and all(ready for block, ready in results if block)  # the blocking calls waited


def test_kernels_refuse_a_table_layout_other_than_their_own(monkeypatch):
    """The kernels' table positions are compile-time constants and numba's cache is keyed on aif/_fast_kernels.py
    alone: a layout changed in aif/fast.py only must stop the import rather than load kernels reading the old one."""
    import importlib.util
    from pathlib import Path

    path = Path(fast.__file__).with_name("_fast_kernels.py")

    def load():
        spec = importlib.util.spec_from_file_location("aif._fast_kernels_layout_check", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # (numba compiles at a function's first call: nothing is compiled here)
        return module

    assert load().LAYOUT == (fast.SIZES, fast.INT_TABLES, fast.FLOAT_TABLES)
    swapped = list(fast.INT_TABLES)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    monkeypatch.setattr(fast, "INT_TABLES", tuple(swapped))
    with pytest.raises(ImportError, match="layout"):
        load()
