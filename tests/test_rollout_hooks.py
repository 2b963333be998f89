"""``aif.rollout``'s policy-search hook, resuming from a carry and per-step records (pymdp 1.0's ``rollout`` with
``policy_search``, ``initial_carry`` and its ``info``), against pymdp 1.0's rollout and against plain rollouts."""

import copy
import dataclasses
import importlib
import os
import sys
import types

import gymnasium as gym
import numpy as np
import pytest

import aif
from aif.envs import AgentWrapper, GridWorld, POMDPEnv, TMaze
from aif.errors import CallOrderError, ParameterError, PolicyError, StrategyError
from aif.rollout import Carry, Trajectory, default_policy_search, rollout

STEP_FIELDS = ("actions", "q_pi", "G", "rewards")
POINT_FIELDS = ("observations", "states")


def assert_same(a: Trajectory, b: Trajectory) -> None:
    """Two trajectories hold the same numbers, exactly."""
    for name in (*STEP_FIELDS, *POINT_FIELDS):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("qs", "obs_by_modality"):
        for x, y in zip(getattr(a, name), getattr(b, name), strict=True):
            np.testing.assert_array_equal(x, y, err_msg=name)
    for name in ("terms", "search_info"):
        assert getattr(a, name).keys() == getattr(b, name).keys()
        for key, x in getattr(a, name).items():
            np.testing.assert_array_equal(x, getattr(b, name)[key], err_msg=f"{name}[{key}]")
    assert a.records.keys() == b.records.keys()
    for key, arrays in a.records.items():
        for x, y in zip(arrays, b.records[key], strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"records[{key}]")
    assert (a.terminated, a.truncated, a.start, a.carry.steps) == (b.terminated, b.truncated, b.start, b.carry.steps)


# ---------------------------------------------------------------- pymdp 1.0's rollout

def pymdp_rollout_modules():
    """pymdp 1.0's ``pymdp.envs.rollout`` and ``pymdp.envs.env``, in float64.

    Loaded without running ``pymdp/envs/__init__.py`` when the package is not imported yet: its T-maze module
    rotates three 2000 x 2000 images at import (about 10 s of CPU). A later ``import pymdp.envs`` in the session
    finds these two modules in ``sys.modules`` and uses them.
    """
    from _reference import jax64

    jax64()
    import pymdp

    if "pymdp.envs" in sys.modules:
        return importlib.import_module("pymdp.envs.rollout"), importlib.import_module("pymdp.envs.env")
    package = types.ModuleType("pymdp.envs")
    package.__path__ = [os.path.join(os.path.dirname(pymdp.__file__), "envs")]
    sys.modules["pymdp.envs"] = package
    try:
        return importlib.import_module("pymdp.envs.rollout"), importlib.import_module("pymdp.envs.env")
    finally:
        del sys.modules["pymdp.envs"]


class Replay(gym.Env):
    """The observations of a pymdp rollout, in order; each action must be pymdp's at that step."""

    def __init__(self, observations, actions, num_obs, num_controls):
        self.observations, self.actions = observations, actions  # (T + 1, M), (T + 1, F)
        self.observation_space = gym.spaces.MultiDiscrete(num_obs)
        self.action_space = gym.spaces.MultiDiscrete(num_controls)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self.observations[0], {}

    def step(self, action):
        np.testing.assert_array_equal(action, self.actions[self.t], err_msg=f"action at step {self.t}")
        self.t += 1
        return self.observations[min(self.t, len(self.observations) - 1)], 0.0, False, False, {}


class PlanBeforeLearning:
    """A ``policy_search`` that plans with the model as it was before this step's learning update, as pymdp 1.0's
    rollout does (it plans, then learns); an ``aif.Agent`` learns from the observation before it plans."""

    def __init__(self, model):
        self.model = model  # before the first update

    def __call__(self, agent, qs, rng):
        G, terms = aif.expected_free_energy(self.model, qs, agent.policies, terms=agent.efe_terms, options=agent.efe)
        q_pi = aif.policy_posterior(G, self.model.E, agent.gamma)
        self.model = agent.model  # this step's update: the next step plans with it
        return q_pi, G, terms


def test_rollout_matches_pymdp_1_rollout_with_online_learning_and_a_policy_search():
    """pymdp 1.0's ``rollout`` of two random models (one batch; A and B learned online, a custom ``policy_search``
    with its own info) and aif's rollout of ``Agent.pymdp`` on the same observations: beliefs, the prior of each
    step, q(pi), G, actions, and A, B, pA, pB after each step, to 1e-12 (measured: 9e-16)."""
    pymdp_rollout, pymdp_env = pymdp_rollout_modules()
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    from pymdp.agent import Agent as JaxAgent

    rng = np.random.default_rng(7)
    models = [aif.random_model(rng, [3], [4], [3], dirichlet=True) for _ in range(2)]  # small: XLA compiles it
    m, steps = models[0], 5

    def batch(name):  # list over factors / modalities of (2, ...), stacked by NumPy (each jnp op compiles)
        return [jnp.asarray(np.stack(arrays)) for arrays in zip(*(getattr(k, name) for k in models), strict=True)]

    def search(agent, qs, key):  # as pymdp's own test does: the default search, an entry added to its info
        q_pi, info = pymdp_rollout.default_policy_search(agent, qs, key)
        return q_pi, {**info, "custom_flag": jnp.ones((agent.batch_size,))}

    env = pymdp_env.PymdpEnv(A_dependencies=m.A_dependencies, B_dependencies=m.B_dependencies)

    def run(arrays, key):  # one jitted program: built eagerly, the agent alone compiles some 40 small XLA programs
        agent = JaxAgent(**arrays, A_dependencies=m.A_dependencies, B_dependencies=m.B_dependencies,
                         num_controls=m.num_controls, learn_A=True, learn_B=True, batch_size=2)
        no_action = -jnp.ones((2, m.num_factors), dtype=jnp.int64)  # pymdp's int32 default does not scan in float64
        return pymdp_rollout.rollout(agent, env, steps, key, initial_carry={"action": no_action},
                                     policy_search=search, env_params={k: arrays[k] for k in "ABD"})[1]

    optimize = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)  # XLA's compile time is most of this test's time
    try:
        info = jax.jit(run)({k: batch(k) for k in ("A", "B", "C", "D", "pA", "pB")}, jr.PRNGKey(3))
    finally:
        jax.config.update("jax_disable_most_optimizations", optimize)
    info = jax.tree_util.tree_map(np.asarray, info)
    assert (info["custom_flag"] == 1).all()

    for b, model in enumerate(models):  # pymdp's rollout takes steps + 1 actions
        observations = np.stack([o[b, :, 0] for o in info["observation"]], -1)  # (steps + 1, M)
        replay = AgentWrapper(Replay(observations, info["action"][b], model.num_obs, model.num_controls),
                              model.num_controls, control_factors=range(model.num_factors))  # every factor's action
        ours = rollout(aif.Agent.pymdp(model, learning=aif.Learning(mask_zeros=False)), replay, steps + 1,
                       policy_search=PlanBeforeLearning(model), record=("prior", "A", "B", "pA", "pB"))
        np.testing.assert_array_equal(ours.actions, info["action"][b])
        np.testing.assert_allclose(ours.q_pi, info["qpi"][b], rtol=0, atol=1e-12, err_msg="q_pi")
        np.testing.assert_allclose(ours.G, -info["neg_efe"][b], rtol=0, atol=1e-12, err_msg="G")
        for f in range(model.num_factors):
            np.testing.assert_allclose(ours.qs[f], info["qs"][f][b], rtol=0, atol=1e-12, err_msg="qs")
            np.testing.assert_allclose(ours.records["prior"][f], info["empirical_prior"][f][b], rtol=0, atol=1e-12,
                                       err_msg="prior")
        for name in ("A", "B", "pA", "pB"):
            for x, y in zip(ours.records[name], info[name], strict=True):
                np.testing.assert_allclose(x, y[b], rtol=0, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------- the policy-search hook

def test_default_policy_search_is_the_agents_own_step():
    """``default_policy_search`` (``agent.infer_policies()``) reproduces the plain rollout: a deterministic agent
    enumerating policies, a stochastic one, one with a planner; its EFE terms are the search's info."""
    env = TMaze()
    model = env.generative_model()
    for make in (lambda: aif.Agent(model, policy_horizon=2),
                 lambda: aif.Agent(model, selection=aif.Selection("stochastic"), alpha=2.0,
                                   rng=np.random.default_rng(5)),
                 lambda: aif.Agent(model, planner=aif.planning.SophisticatedInference(depth=2))):
        plain = rollout(make(), env, 4, seed=1)
        searched = rollout(make(), env, 4, seed=1, policy_search=default_policy_search)
        assert searched.terms == {}
        assert_same(plain, dataclasses.replace(searched, terms=searched.search_info, search_info={}))


def test_policy_search_replaces_the_planning():
    """The action follows the search's q(pi); its info is kept per step; G may be left out (NaN)."""
    env = TMaze()
    model = env.generative_model()
    agent = aif.Agent(model)
    P = len(agent.policies)

    def go_to_the_cue(agent, qs, rng):  # policy 3 is "move to the cue"
        return np.eye(P)[3], None, {"belief_max": np.array([q.max() for q in qs]), "step": agent.t}

    traj = rollout(agent, env, 3, seed=0, policy_search=go_to_the_cue)
    np.testing.assert_array_equal(traj.actions[:, 0], [3, 3, 3])
    assert np.isnan(traj.G).all() and traj.terms == {}
    np.testing.assert_array_equal(traj.search_info["step"], [0, 1, 2])
    assert traj.search_info["belief_max"].shape == (3, model.num_factors)
    np.testing.assert_array_equal(traj.q_pi, np.eye(P)[[3, 3, 3]])


def _bad_search(found):
    return lambda agent, qs, rng: found(len(agent.policies))


@pytest.mark.parametrize("found, error, match", [
    (lambda P: np.ones(P) / P, StrategyError, "returned ndarray; expected a tuple"),
    (lambda P: (np.ones(P) / P, None), StrategyError, "of length 2"),
    (lambda P: (np.ones(P + 1) / (P + 1), None, {}), PolicyError, "step 0: q_pi has shape"),
    (lambda P: (np.ones(P), None, {}), PolicyError, "step 0: q_pi is not a probability vector: it sums to 3"),
    (lambda P: (np.ones(P) / P, np.zeros(P + 1), {}), PolicyError, r"G has shape \(4,\), expected \(3,\)"),
    (lambda P: (np.ones(P) / P, np.full(P, np.nan), {}), PolicyError, "G has a non-finite entry"),
    (lambda P: (np.ones(P) / P, None, ["x"]), StrategyError, "info of type list"),
    (lambda P: (np.ones(P) / P, None, {"x": "text"}), ParameterError, r"info\['x'\] must be numbers"),
])
def test_a_wrong_policy_search_return_is_named_and_leaves_the_agent_as_it_was(found, error, match):
    env = POMDPEnv(*_arrays())
    model = _learning_model()
    agent = aif.Agent(model, learning=aif.Learning())
    with pytest.raises(error, match=match):
        rollout(agent, env, 2, seed=0, policy_search=_bad_search(found))
    # the failed step is undone: no step counted, no counts learned from its observation
    assert agent.t == 0 and agent.qs is None
    for x, y in zip(agent.model.pA, model.pA, strict=True):
        np.testing.assert_array_equal(x, y)


def test_policy_search_info_must_keep_its_names_and_shapes():
    env = TMaze()
    agent = aif.Agent(env.generative_model())
    with pytest.raises(ParameterError, match=r"step 1 returned info of names and shapes \{'b': \(\)\}, but "
                                             r"\{'a': \(\)\} at the first step"):
        rollout(agent, env, 3, seed=0, policy_search=lambda a, qs, rng: (*a.infer_policies(), {"ab"[a.t]: 1.0}))
    assert agent.t == 1  # the failed step is undone
    with pytest.raises(ParameterError, match=r"step 1 returned info of names and shapes \{'a': \(2,\)\}, but "
                                             r"\{'a': \(1,\)\}"):
        rollout(agent, env, 2, seed=0, policy_search=lambda a, qs, rng: (*a.infer_policies(), {"a": np.ones(a.t + 1)}))


def test_policy_search_needs_a_callable():
    env = TMaze()
    model = env.generative_model()
    with pytest.raises(StrategyError, match="policy_search must be a function"):
        rollout(aif.Agent(model), env, 2, policy_search="efe")
    with pytest.raises(StrategyError, match="search must be a function"):
        agent = aif.Agent(model)
        agent.infer_states([0, 0, 0])
        agent.infer_policies(search=3)


def test_the_default_search_reproduces_an_agent_over_time_and_a_search_sets_its_beliefs():
    env = TMaze()
    model = env.generative_model()
    plain = rollout(aif.Agent.pymdp_legacy_mmp(model, 2), env, 4, seed=3)
    searched = rollout(aif.Agent.pymdp_legacy_mmp(model, 2), env, 4, seed=3, policy_search=default_policy_search)
    np.testing.assert_array_equal(plain.actions, searched.actions)
    np.testing.assert_allclose(plain.q_pi, searched.q_pi, atol=0)
    for q, r in zip(plain.qs, searched.qs, strict=True):
        np.testing.assert_allclose(q, r, atol=0)
    # a search that puts all weight on one policy: the present belief is that policy's
    agent = aif.Agent(model, 2, inference=aif.MarginalMessagePassing(), inference_horizon=2)
    agent.infer_states(env.reset(seed=0)[0])
    one = np.eye(len(agent.policies))[5]
    agent.infer_policies(search=lambda a, qs, rng: (one, None, {"n": 1.0}))
    for q, q_seq in zip(agent.qs, agent.qs_seq, strict=True):
        np.testing.assert_allclose(q, q_seq[5, agent.present], atol=1e-15)
    assert agent.terms == {} and agent.G is None and agent.search_info == {"n": 1.0}


# ---------------------------------------------------------------- resuming

def _arrays():
    rng = np.random.default_rng(11)
    model = aif.random_model(rng, [3, 2], [3, 2], [3, 1], concentration=0.5)
    return model.A, model.B, model.D


def _learning_model():
    A, B, D = _arrays()
    return aif.GenerativeModel(A, B, C=[np.array([1.0, 0.0, -1.0]), np.zeros(2)], D=D,
                               pA=[2.0 * a for a in A], pB=[2.0 * b for b in B])


AGENTS = {
    "deterministic": (lambda: aif.Agent(aif.GenerativeModel(*_arrays()[:2], D=_arrays()[2]), policy_horizon=2), {}),
    "stochastic": (lambda: aif.Agent(aif.GenerativeModel(*_arrays()[:2], D=_arrays()[2]), alpha=4.0,
                                     selection=aif.Selection("stochastic", "marginal"),
                                     rng=np.random.default_rng(2)), {}),
    "learning, searched, recorded": (lambda: aif.Agent.pymdp(_learning_model(), learning=aif.Learning(lr=0.5)),
                                     dict(policy_search=default_policy_search, record=("prior", "pA", "pB", "B"))),
    "over time": (lambda: aif.Agent.pymdp_legacy_mmp(aif.GenerativeModel(*_arrays()[:2], D=_arrays()[2]),
                                                     policy_sep_prior=True), dict(record=("prior",))),
}


@pytest.mark.parametrize("name", AGENTS)
def test_resumed_rollouts_take_the_steps_of_one_rollout(name):
    """rollout(2), then rollout(1) and rollout(3) resumed, joined, equal rollout(6) exactly: the agent (beliefs,
    learned counts, generator), the environment (state, generator) and the observation carried over."""
    make, kwargs = AGENTS[name]
    whole = rollout(make(), POMDPEnv(*_arrays()), 6, seed=4, **kwargs)
    agent, env = make(), POMDPEnv(*_arrays())
    parts = [rollout(agent, env, 2, seed=4, **kwargs)]
    for steps in (1, 3):
        parts.append(rollout(agent, env, steps, resume=parts[-1].carry, **kwargs))
    assert [p.start for p in parts] == [0, 2, 3]
    joined = parts[0].join(parts[1]).join(parts[2])
    assert_same(joined, whole)
    if name == "over time":  # the window's prior is D at first, then one per policy: broadcast to (T, P, S_f)
        assert joined.records["prior"][0].shape == (6, len(agent.policies), 3)
        np.testing.assert_array_equal(joined.records["prior"][0][0], np.broadcast_to(agent.model.D[0], (3, 3)))


def test_copies_of_the_agent_and_environment_branch_an_episode():
    """A carry resumed with deep copies of the agent and the environment gives what the originals give."""
    make, kwargs = AGENTS["learning, searched, recorded"]
    agent, env = make(), POMDPEnv(*_arrays())
    first = rollout(agent, env, 3, seed=8, **kwargs)
    branch_agent, branch_env = copy.deepcopy(agent), copy.deepcopy(env)
    assert_same(rollout(branch_agent, branch_env, 4, resume=first.carry, **kwargs),
                rollout(agent, env, 4, resume=first.carry, **kwargs))
    for x, y in zip(branch_agent.model.pB, agent.model.pB, strict=True):
        np.testing.assert_array_equal(x, y)


def test_resume_refuses_an_ended_episode_a_moved_agent_and_reset_arguments():
    grid = GridWorld((1, 3), start=(0, 0), goals=[(0, 2)])
    ended = rollout(aif.Agent(grid.generative_model(), policy_horizon=2), grid, 10, seed=0)
    assert ended.terminated and ended.carry.ended
    with pytest.raises(CallOrderError, match="the episode ended at step 2"):
        rollout(aif.Agent(grid.generative_model()), grid, 2, resume=ended.carry)

    env = TMaze()
    agent = aif.Agent(env.generative_model())
    carry = rollout(agent, env, 2, seed=0).carry
    for given in (dict(seed=1), dict(rng=np.random.default_rng(0)), dict(options={"condition": 1})):
        with pytest.raises(ParameterError, match=f"{next(iter(given))} given with resume"):
            rollout(agent, env, 1, resume=carry, **given)
    with pytest.raises(StrategyError, match="resume must be a Trajectory's carry"):
        rollout(agent, env, 1, resume={"observation": [0, 0, 0]})
    agent.step([0, 0, 0])
    with pytest.raises(CallOrderError, match="the agent has taken 3 steps, but the carry was left after 2"):
        rollout(agent, env, 1, resume=carry)
    agent.reset()
    with pytest.raises(CallOrderError, match="has taken 0 steps"):
        rollout(agent, env, 1, resume=carry)


def test_join_needs_a_rollout_resumed_from_this_one():
    env = TMaze()
    agent = aif.Agent(env.generative_model())
    first = rollout(agent, env, 2, seed=0)
    other = rollout(aif.Agent(env.generative_model()), TMaze(), 2, seed=0)
    with pytest.raises(ParameterError, match="later starts at step 0, but this trajectory stopped at step 2"):
        first.join(other)
    with pytest.raises(StrategyError, match="later must be an aif.Trajectory"):
        first.join(first.carry)
    assert isinstance(first.carry, Carry) and first.carry.observation == [int(o) for o in first.observations[-1]]


# ---------------------------------------------------------------- records

def test_records_hold_each_steps_prior_and_the_counts_after_it():
    """The prior of step t + 1 is B (as learned by then) applied to the posterior and action of step t; the first
    is D; pA and pB after the last step are the agent's; a model without learning keeps its arrays."""
    model = _learning_model()
    agent = aif.Agent(model, learning=aif.Learning())
    traj = rollout(agent, POMDPEnv(*_arrays()), 4, seed=2, record=("prior", "pA", "pB", "A"))
    prior = traj.records["prior"]
    for f in range(model.num_factors):
        np.testing.assert_array_equal(prior[f][0], model.D[f])
    for t in range(1, 4):
        learned = aif.GenerativeModel([x[t - 1] for x in traj.records["A"]], [b[t - 1] / b[t - 1].sum(0)
                                                                               for b in traj.records["pB"]], D=model.D)
        expected = aif.predict(learned, [q[t - 1] for q in traj.qs], traj.actions[t - 1])
        for f in range(model.num_factors):
            np.testing.assert_allclose(prior[f][t], expected[f], rtol=0, atol=1e-14)
    for name in ("pA", "pB"):
        for x, y, start in zip(traj.records[name], getattr(agent.model, name), getattr(model, name), strict=True):
            assert x.shape == (4, *start.shape)
            np.testing.assert_array_equal(x[-1], y)
            assert not np.array_equal(x[-1], start)  # learned
    fixed = rollout(aif.Agent(model), POMDPEnv(*_arrays()), 3, seed=2, record=("A",))
    for x, a in zip(fixed.records["A"], model.A, strict=True):
        np.testing.assert_array_equal(x, np.broadcast_to(a, (3, *a.shape)))


def test_record_names_are_checked():
    env = TMaze()
    agent = aif.Agent(env.generative_model())
    with pytest.raises(ParameterError, match="record must be a tuple of names"):
        rollout(agent, env, 1, record="prior")
    with pytest.raises(ParameterError, match="record must be 'prior', 'A', 'B', 'pA' or 'pB', got 'qs'"):
        rollout(agent, env, 1, record=("qs",))
    with pytest.raises(ParameterError, match="names a quantity twice"):
        rollout(agent, env, 1, record=("prior", "prior"))
    with pytest.raises(ParameterError, match=r"record 'pA': the agent's model has no pA \(Dirichlet counts\)"):
        rollout(agent, env, 1, record=("pA",))
