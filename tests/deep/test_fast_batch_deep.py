"""The compiled batched step of ``aif_deep.Agent`` (``aif_deep.fast``) against the torch cycle: the same beliefs, G,
terms, q(pi), actions and priors on random models, the same rollouts, and a clear fallback wherever it does not
apply."""

import numpy as np
import pytest
import torch

import aif
import aif.fast
import aif_deep
from aif.envs import GridWorld, POMDPVectorEnv, TMaze
from aif_deep import fast

pytest.importorskip("numba")

TOL = 1e-12


@pytest.fixture(scope="module", autouse=True)
def kernels():
    """The kernels, made once (numba loads them from its cache after the first run on a machine); afterwards both
    modules are left as they were, so that agents of later test files in this process keep the torch cycle."""
    saved = (aif.fast._kernels, dict(aif.fast._state), fast._batch, dict(fast._state))
    assert fast.compile(), (aif.fast.status(), fast.status())
    yield
    aif.fast._kernels, fast._batch = saved[0], saved[2]
    aif.fast._state.update(saved[1])
    fast._state.update(saved[3])


def deep_pair(monkeypatch, model, batch, **kwargs):
    """The same batch of agents twice: with the compiled step, and on the torch cycle (``AIF_FAST=0``)."""
    tabular = aif_deep.TabularModel.from_aif(model, device="cpu")
    seed = kwargs.pop("seed", None)

    def generator():
        return None if seed is None else torch.Generator().manual_seed(seed)

    monkeypatch.setenv(aif.fast.ENV_VAR, "1")
    compiled = aif_deep.Agent(tabular, batch_shape=batch, rng=generator(), **kwargs)
    monkeypatch.setenv(aif.fast.ENV_VAR, "0")
    reference = aif_deep.Agent(tabular, batch_shape=batch, rng=generator(), **kwargs)
    monkeypatch.delenv(aif.fast.ENV_VAR)
    assert compiled._fast is not None and reference._fast is None
    return compiled, reference


def assert_same(a, b):
    for q_a, q_b in zip(a.qs, b.qs, strict=True):
        torch.testing.assert_close(q_a, q_b, rtol=0, atol=TOL)
    torch.testing.assert_close(a.q_pi, b.q_pi, rtol=0, atol=TOL)
    scale = max(1.0, float(b.G.abs().max()))
    torch.testing.assert_close(a.G, b.G, rtol=0, atol=TOL * scale)
    assert set(a.terms) == set(b.terms)
    for name in b.terms:
        torch.testing.assert_close(a.terms[name], b.terms[name], rtol=0, atol=TOL * scale)
    torch.testing.assert_close(a.action, b.action, rtol=0, atol=0)
    for p_a, p_b in zip(a.prior, b.prior, strict=True):
        torch.testing.assert_close(p_a, p_b, rtol=0, atol=TOL)
    assert (a.t, a.steps) == (b.t, b.steps)


SHAPES = [  # num_states, num_obs, num_controls, A_dependencies, B_dependencies
    ([4], [3], [3], None, None),
    ([3, 2], [4, 2, 3], [3, 1], None, None),
    ([3, 2, 2], [3, 4], [2, 2, 1], [[0, 2], [1]], [[0], [1, 0], [2]]),
    ([2, 3], [5], [2, 3], [[1, 0]], [[0, 1], [1]]),
]

SETTINGS = [  # Agent keyword arguments
    {},
    {"inference": aif.FixedPoint.pymdp(), "efe": aif.EFEOptions.pymdp(), "gamma": 1.0},
    {"inference": aif.FixedPoint(schedule="parallel", tol=None, num_iter=5),
     "efe_terms": (aif.Risk(), aif.Ambiguity())},
    {"inference": aif.Exact(), "efe_terms": (aif.Utility(),), "selection": aif.Selection(sampling="marginal")},
    {"efe_terms": (aif.Ambiguity(), aif.Utility(), aif.Risk()), "selection": aif.Selection("stochastic"),
     "seed": 3, "alpha": 4.0},
    {"selection": aif.Selection("stochastic", "marginal"), "seed": 5, "gamma": 2.0},
]


@pytest.mark.parametrize("shape", range(len(SHAPES)))
@pytest.mark.parametrize("settings", range(len(SETTINGS)))
def test_compiled_batch_equals_torch_cycle(monkeypatch, shape, settings):
    """Random models (several factors and modalities, sparse A and B dependencies, uncontrolled factors), the
    inference methods and selections the kernel covers, horizons 1 to 3, a batch of 6 agents (some seeing the same
    outcomes): eight steps of both paths agree, and the stochastic draws are the same."""
    S, O, U, A_deps, B_deps = SHAPES[shape]
    rng = np.random.default_rng(10 * shape + settings)
    model = aif.random_model(rng, S, O, U, A_deps, B_deps, concentration=0.5, C_scale=2.0)
    horizon = 1 + (shape + settings) % 3
    compiled, reference = deep_pair(monkeypatch, model, (6,), policy_horizon=horizon, **SETTINGS[settings])
    assert fast.reason(compiled) is None
    for _ in range(8):
        obs = np.stack([rng.integers(n, size=3).repeat(2) for n in O], -1)  # (6, M): agents in pairs
        compiled.step(obs)
        reference.step(obs)
        assert_same(compiled, reference)
        assert compiled._fast.last is not None  # it ran the kernel, not the torch cycle


def test_habits_time_varying_preferences_and_batch_shape(monkeypatch):
    """E with a ruled-out policy, C with a column per step, and a batch of two dimensions."""
    rng = np.random.default_rng(7)
    base = aif.random_model(rng, [3, 2], [3, 2], [3, 2])
    E = rng.dirichlet(np.ones(6**2))
    E[0] = 0.0
    model = base.replace(E=E / E.sum(), C=[rng.normal(size=(3, 2)), rng.normal(size=(2, 3))])
    compiled, reference = deep_pair(monkeypatch, model, (2, 3), policy_horizon=2)
    for _ in range(4):
        obs = np.stack([rng.integers(3, size=(2, 3)), rng.integers(2, size=(2, 3))], -1)
        compiled.step(obs)
        reference.step(obs)
        assert_same(compiled, reference)
        assert compiled.qs[0].shape == (2, 3, 3) and compiled.action.shape == (2, 3, 2)
    assert (compiled.q_pi[..., 0] == 0).all()


def test_agents_with_equal_inputs_are_stepped_once(monkeypatch):
    """With ``ONCE`` (the default) the kernel steps each distinct (observation, prior) once and copies its output to
    the agents with the same inputs: the same bytes as stepping every agent."""
    model = TMaze().generative_model()
    compiled, other = deep_pair(monkeypatch, model, (64,))
    monkeypatch.setenv(aif.fast.ENV_VAR, "1")
    every = aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), batch_shape=(64,))
    envs = POMDPVectorEnv(TMaze(), 64)
    obs, _ = envs.reset(seed=0)
    for _ in range(6):
        monkeypatch.setattr(fast, "ONCE", True)
        compiled.step(obs)
        monkeypatch.setattr(fast, "ONCE", False)
        every.step(obs)
        out_once, out_every = compiled._fast.last[0], every._fast.last[0]
        assert out_once.tobytes() == out_every.tobytes()
        obs, *_ = envs.step(compiled.action[:, 0].numpy())
    assert compiled._fast.stepped < every._fast.stepped == 6 * 64


@pytest.mark.parametrize("stochastic", [False, True])
def test_rollouts_equal_torch_cycle(monkeypatch, stochastic):
    """Whole ``rollout``s over the vector environment (the T-maze with episodes that end and reset, and the grid
    world at horizon 2): the same observations, actions and rewards, and the same beliefs to rounding."""
    selection = aif.Selection("stochastic") if stochastic else aif.Selection()
    tmaze, grid = TMaze(), GridWorld((3, 3), start=(0, 0), goals=[(2, 2)])
    for task, horizon, limit in ((tmaze, 1, 4), (grid, 2, None)):
        compiled, reference = deep_pair(monkeypatch, task.generative_model(), (24,), policy_horizon=horizon,
                                        selection=selection, seed=11)
        a = aif_deep.rollout(compiled, POMDPVectorEnv(task, 24, max_episode_steps=limit), 12, seed=2)
        b = aif_deep.rollout(reference, POMDPVectorEnv(task, 24, max_episode_steps=limit), 12, seed=2)
        for name in ("observations", "actions", "rewards", "ended"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        for x, y in ((a.q_pi, b.q_pi), (a.G, b.G), *zip(a.qs, b.qs, strict=True)):
            assert x.shape == y.shape and x.flags.c_contiguous
            np.testing.assert_allclose(x, y, rtol=0, atol=TOL * max(1.0, np.abs(y).max()))
        for x, y in zip(a.obs_by_modality, b.obs_by_modality, strict=True):
            np.testing.assert_array_equal(x, y)
        assert_same(compiled, reference)


def test_rollout_mixing_compiled_and_torch_steps(monkeypatch):
    """A rollout whose steps alternate between the compiled step and the torch cycle records what the agent held
    after each step, as a rollout on the torch cycle alone."""
    task = TMaze()
    compiled, reference = deep_pair(monkeypatch, task.generative_model(), (8,))
    real = fast.BatchStep.step
    calls = {"n": 0}

    def every_other(self, agent, obs, out=None):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            self.last = None
            return None
        return real(self, agent, obs, out)

    monkeypatch.setattr(fast.BatchStep, "step", every_other)
    a = aif_deep.rollout(compiled, POMDPVectorEnv(task, 8), 9, seed=4)
    b = aif_deep.rollout(reference, POMDPVectorEnv(task, 8), 9, seed=4)
    np.testing.assert_array_equal(a.actions, b.actions)
    for x, y in ((a.q_pi, b.q_pi), (a.G, b.G), *zip(a.qs, b.qs, strict=True)):
        np.testing.assert_allclose(x, y, rtol=0, atol=TOL * max(1.0, np.abs(y).max()))


def test_rollout_records_in_blocks(monkeypatch):
    """The compiled steps' outputs written into several blocks of rows, an episode that ends before ``steps``, and a
    new gamma in the middle of a rollout (new tables: the steps are assembled one by one): the same records as the
    torch cycle."""
    task = TMaze()

    class NewGamma(POMDPVectorEnv):
        def step(self, actions):
            self.count = getattr(self, "count", 0) + 1
            if self.count == 4:
                self.agent.gamma = 3.0
            return super().step(actions)

    for blocks, change in ((3 * 8 * 36, False), (1, False), (1 << 20, True)):
        monkeypatch.setattr(aif_deep.agent, "BLOCK_ELEMENTS", blocks)
        compiled, reference = deep_pair(monkeypatch, task.generative_model(), (8,))
        trajectories = []
        for agent in (compiled, reference):
            envs = (NewGamma if change else POMDPVectorEnv)(task, 8, max_episode_steps=7)
            envs.agent = agent
            trajectories.append(aif_deep.rollout(agent, envs, 10, seed=5))
        a, b = trajectories
        assert a.num_steps == b.num_steps == 7  # every episode ended: the rollout stops
        assert compiled.gamma == (3.0 if change else 16.0)
        np.testing.assert_array_equal(a.actions, b.actions)
        for x, y in ((a.q_pi, b.q_pi), (a.G, b.G), *zip(a.qs, b.qs, strict=True)):
            assert x.shape == y.shape and x.flags.c_contiguous
            np.testing.assert_allclose(x, y, rtol=0, atol=TOL * max(1.0, np.abs(y).max()))


def test_fallback_rules(monkeypatch):
    """Each rule of ``aif_deep.fast``'s docstring names the reason, and such an agent's steps run the torch cycle."""
    rng = np.random.default_rng(0)
    model = aif.random_model(rng, [3, 2], [3, 2], [3, 1], dirichlet=True).replace(pD=None)
    tabular = aif_deep.TabularModel.from_aif(model, device="cpu")
    monkeypatch.setenv(aif.fast.ENV_VAR, "1")
    cases = {
        "learning": (tabular, dict(learning=aif.Learning())),
        "planner": (tabular, dict(planner=aif.planning.SophisticatedInference(depth=1))),
        "NumPy-only": (tabular, dict(inference=aif.MarginalMessagePassing())),
        "tensor": (tabular, dict(gamma=torch.full((4,), 2.0, dtype=torch.float64))),
        "float64": (aif_deep.TabularModel.from_aif(model, device="cpu", dtype=torch.float32), {}),
        "batch of parameters": (aif_deep.TabularModel.from_aif([model] * 4, device="cpu"), {}),
        "gradients": (tabular.replace(C=[c.clone().requires_grad_() for c in tabular.C]), {}),
        "aif.fast: the EFE term": (tabular, dict(efe_terms=(aif.Utility(), aif.InfoGain(), aif.Novelty("A")))),
        "aif.fast: EFEOptions.guards": (tabular, dict(efe=aif.EFEOptions.pymdp_legacy())),
        "preprocess": (tabular, dict(preprocess=lambda o: o)),
    }
    for words, (m, kwargs) in cases.items():
        agent = aif_deep.Agent(m, batch_shape=(4,), **kwargs)
        why = fast.reason(agent)
        assert why is not None and words in why, (words, why)
        if "aif.fast" in words or words in ("tensor", "gradients"):
            assert agent._fast is not None  # built with the hook; every step falls back
            agent.step(np.zeros((4, 2), dtype=np.int64))
            assert agent._fast.last is None and agent.qs[0].shape == (4, 3)
    agent = aif_deep.Agent(tabular, batch_shape=(4,))
    assert fast.reason(agent) is None
    monkeypatch.setenv(aif.fast.ENV_VAR, "0")
    assert aif_deep.Agent(tabular, batch_shape=(4,))._fast is None and "AIF_FAST=0" in fast.reason(agent)


def test_other_observations_and_changed_settings(monkeypatch):
    """A list of per-modality observations (with a probability vector) runs that step on the torch cycle, and the
    next index array is compiled again from the prior it left; a prior changed in place, a masked reset, a new gamma
    or model between steps is read at the next step."""
    rng = np.random.default_rng(2)
    model = aif.random_model(rng, [3, 2], [3, 2], [3, 2])
    compiled, reference = deep_pair(monkeypatch, model, (3,), policy_horizon=2)
    probs = torch.tensor([[0.2, 0.5, 0.3]] * 3, dtype=torch.float64)
    for obs in (np.array([[0, 1]] * 3), [probs, torch.tensor([1, 0, 1])], np.array([[2, 0], [1, 1], [0, 1]]),
                np.array([[1, 1]] * 3, dtype=np.uint8)):
        compiled.step(obs)
        reference.step(obs)
        assert_same(compiled, reference)
        assert (compiled._fast.last is not None) == (isinstance(obs, np.ndarray) and obs.dtype.kind in "iu")
    for agent in (compiled, reference):  # a prior changed in place
        agent.prior[1][0] = torch.tensor([0.9, 0.1], dtype=torch.float64)
    compiled.step(np.array([[1, 0]] * 3))
    reference.step(np.array([[1, 0]] * 3))
    assert_same(compiled, reference)
    other = aif_deep.TabularModel.from_aif(aif.random_model(rng, [3, 2], [3, 2], [3, 2]), device="cpu")
    for agent in (compiled, reference):
        agent.reset(agents=np.array([True, False, True]))
        agent.gamma = 3.0
        agent.model = other
    for obs in (np.array([[1, 1]] * 3), np.array([[0, 0], [2, 1], [0, 0]])):
        compiled.step(obs)
        reference.step(obs)
        assert_same(compiled, reference)


def test_bad_observation_gets_torch_error_and_leaves_agent_unchanged(monkeypatch):
    model = aif.random_model(np.random.default_rng(4), [3], [3], [2])
    compiled, reference = deep_pair(monkeypatch, model, (3,))
    compiled.step(np.array([[0], [1], [2]]))
    before = [compiled.t, compiled.q_pi, *compiled.qs, *compiled.prior]
    with pytest.raises(Exception) as caught:
        compiled.step(np.array([[0], [3], [1]]))
    with pytest.raises(type(caught.value), match="out of range"):
        reference.step(np.array([[0], [3], [1]]))
    after = [compiled.t, compiled.q_pi, *compiled.qs, *compiled.prior]
    assert all(x is y for x, y in zip(after, before, strict=True))


def test_path_is_chosen_when_the_agent_is_built(monkeypatch):
    """An agent built before the kernels were ready keeps the torch cycle after they are."""
    tabular = aif_deep.TabularModel.from_aif(TMaze().generative_model(), device="cpu")
    monkeypatch.setattr(aif.fast, "_kernels", None)
    early = aif_deep.Agent(tabular, batch_shape=(2,))
    assert early._fast is None and "not compiled" in fast.reason(early)
    monkeypatch.undo()
    assert aif_deep.Agent(tabular, batch_shape=(2,))._fast is not None
    assert fast.reason(early) is None and early._fast is None


def test_saved_and_loaded_compiled_agent_goes_on_as_the_torch_cycle(monkeypatch, tmp_path):
    """``save_agent`` of a compiled agent (its beliefs are views of the kernel's output) and ``load_agent`` give an
    agent that continues as the torch cycle's does (the loaded agent takes the compiled step too)."""
    model = aif.random_model(np.random.default_rng(6), [3, 2], [3, 2], [3, 2])
    compiled, reference = deep_pair(monkeypatch, model, (4,), policy_horizon=2)
    obs = np.array([[0, 1], [2, 0], [1, 1], [0, 1]])
    for agent in (compiled, reference):
        agent.step(obs)
    aif_deep.save_agent(tmp_path / "agent.npz", compiled)
    loaded = aif_deep.load_agent(tmp_path / "agent.npz")
    assert loaded._fast is not None
    for agent in (loaded, reference):
        agent.step(obs[::-1].copy())
    assert loaded._fast.last is not None
    assert_same(loaded, reference)


def test_unbatched_agent(monkeypatch):
    """``batch_shape=()`` (the drop-in for ``aif.Agent``): an outcome index array ``(M,)`` takes the compiled step, with
    the torch cycle's shapes."""
    model = aif.random_model(np.random.default_rng(1), [3, 2], [3, 2], [3, 2])
    compiled, reference = deep_pair(monkeypatch, model, ())
    for obs in ([0, 1], [2, 0], [1, 1]):
        compiled.step(np.array(obs))
        reference.step(np.array(obs))
        assert compiled._fast.last is not None and compiled.action.shape == (2,) and compiled.qs[0].shape == (3,)
        assert_same(compiled, reference)


def test_step_writes_only_into_an_output_array_the_loop_reads_as_it_is(monkeypatch):
    """``BatchStep.step(out=)``: a float64 C-contiguous writable array of the right shape is written; anything else
    (another dtype, a strided view, a read-only array) is left alone and the step writes a new array (numba would
    compile its loop again for another dtype or layout), with the same results."""
    model = aif.random_model(np.random.default_rng(2), [3, 2], [4, 2], [3, 1])
    compiled, reference = deep_pair(monkeypatch, model, (4,))
    batch_step = compiled._fast
    size = batch_step.tables_for(compiled).size
    obs = np.array([[0, 1], [3, 0], [0, 1], [2, 1]])
    read_only = np.zeros((4, size))
    read_only.flags.writeable = False
    for out in (np.zeros((4, size), np.float32), np.zeros((4, 2 * size))[:, ::2], read_only, np.zeros((4, size))):
        before = out.copy()
        action = batch_step.step(compiled, obs, out)  # as aif_deep.rollout calls it
        assert action is not None
        compiled.action = action
        compiled._acted()
        reference.step(torch.from_numpy(obs))
        assert_same(compiled, reference)
        written = batch_step.last[0]
        if out.dtype == np.float64 and out.flags.c_contiguous and out.flags.writeable:
            assert written is out
        else:
            assert written is not out and written.dtype == np.float64
            np.testing.assert_array_equal(out, before, strict=True)


def test_rollout_shares_no_memory_with_the_agent(monkeypatch):
    """One agent, one step: the rollout's beliefs are its own arrays, not views of the block row the agent's
    tensors view."""
    task = TMaze()
    compiled, _ = deep_pair(monkeypatch, task.generative_model(), (1,))
    traj = aif_deep.rollout(compiled, POMDPVectorEnv(task, 1), 1, seed=0)
    for x in (traj.q_pi, traj.G, *traj.qs):
        assert x.flags.c_contiguous
        for y in (compiled.q_pi, compiled.G, *compiled.qs, *compiled.prior):
            assert not np.shares_memory(x, y.numpy())


def test_aif_rollout_takes_a_compiled_deep_agent(monkeypatch):
    """``aif.rollout`` of one ``aif_deep.Agent`` with the compiled batched step (``agent._fast`` is a ``BatchStep``,
    not ``aif.fast``'s ``FastStep``): the agent's own step, the same trajectory as on the torch cycle (it used to
    raise AttributeError looking for ``FastStep.record``)."""
    env = TMaze()
    compiled, torch_cycle = deep_pair(monkeypatch, env.generative_model(), ())
    assert isinstance(compiled._fast, fast.BatchStep)
    runs = [aif.rollout(agent, env, 12, seed=3, progress=False) for agent in (compiled, torch_cycle)]
    np.testing.assert_array_equal(runs[0].actions, runs[1].actions)
    np.testing.assert_array_equal(runs[0].observations, runs[1].observations)
    np.testing.assert_allclose(runs[0].q_pi, runs[1].q_pi, atol=TOL)
    for a, b in zip(runs[0].qs, runs[1].qs, strict=True):
        np.testing.assert_allclose(a, b, atol=TOL)
