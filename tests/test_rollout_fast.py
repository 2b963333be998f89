"""``aif.rollout``'s record of the compiled agent (``aif.fast``): it keeps each step's output array instead of copying
the agent's arrays, and the Trajectory must hold exactly what the agent held after each step, whichever path each
step took; ``AgentWrapper``'s shortcuts must give what its general code gives."""

import copy

import gymnasium as gym
import numpy as np
import pytest

import aif
from aif import fast
from aif.envs import GridWorld, TMaze
from aif.envs.wrappers import AgentWrapper
from aif.rollout import as_agent_env

pytest.importorskip("numba")


pytestmark = pytest.mark.usefixtures("compiled_kernel")


@pytest.fixture(autouse=True)
def step_by_step(monkeypatch):
    """This module tests the step-by-step loop's record; whole compiled episodes (``aif.fast.run_episode``, which
    would take these rollouts) are tested in tests/test_fast_episode.py."""
    monkeypatch.setattr(fast, "EPISODES", False)


class Meddle(gym.Wrapper):
    """Changes the agent between steps: a new gamma after step 3 (new kernel tables), a preprocess (a step on the
    NumPy path) from step 6 to 8, then neither."""

    def __init__(self, env, agent):
        super().__init__(env)
        self.agent, self.count = agent, 0

    def step(self, action):
        self.count += 1
        if self.count == 3:
            self.agent.gamma = 4.0
        self.agent.preprocess = (lambda o: o) if self.count in (6, 7, 8) else None
        return self.env.step(action)


def by_hand(agent, env, steps, seed):
    """The loop ``rollout`` runs, copying the agent's arrays after every step: what its Trajectory must hold."""
    obs, _ = env.reset(seed=seed)
    agent.reset()
    rows = []
    for _ in range(steps):
        action = agent.step(obs).copy()
        rows.append((action, [q.copy() for q in agent.qs], agent.q_pi.copy(), agent.G.copy(),
                     {k: v.copy() for k, v in agent.terms.items()}, agent._fast is not None and agent._fast.last))
        obs, *_ = env.step(action)
    return rows


def assert_holds(traj, rows):
    assert traj.actions.dtype == np.int64 and traj.q_pi.flags.c_contiguous
    np.testing.assert_array_equal(traj.actions, [r[0] for r in rows], strict=True)
    for f, q in enumerate(traj.qs):
        assert q.flags.c_contiguous
        np.testing.assert_array_equal(q, [r[1][f] for r in rows], strict=True)
    np.testing.assert_array_equal(traj.q_pi, [r[2] for r in rows], strict=True)
    np.testing.assert_array_equal(traj.G, [r[3] for r in rows], strict=True)
    assert list(traj.terms) == list(rows[0][4])
    for name, values in traj.terms.items():
        assert values.flags.c_contiguous
        np.testing.assert_array_equal(values, [r[4][name] for r in rows], strict=True)


@pytest.mark.parametrize("task", ["tmaze", "grid", "stochastic", "meddled", "blocks", "ends early"])
def test_trajectory_holds_each_steps_arrays(monkeypatch, task):
    """Every step compiled (one layout, split at once), stochastic selection, and a rollout whose steps change
    layout and path midway: the Trajectory equals the agent's arrays copied after each step, bit for bit."""
    env = (GridWorld((4, 4), start=(0, 0), goals=[(3, 3)], terminate_at_goal=task == "ends early")
           if task in ("grid", "ends early") else TMaze())
    kwargs = {"policy_horizon": 2} if task == "grid" else {}
    if task == "blocks":  # the compiled steps' rows in several blocks of aif.fast.FastStep.record
        monkeypatch.setattr(fast, "BLOCK_ROWS", 7)
    if task == "stochastic":
        kwargs.update(selection=aif.Selection("stochastic"), rng=np.random.default_rng(1))
    agent = aif.Agent(env.generative_model(), **kwargs)
    assert agent._fast is not None
    twin = copy.deepcopy(agent)
    wrapped = as_agent_env(copy.deepcopy(env), agent.model)
    if task == "meddled":
        traj = aif.rollout(agent, Meddle(as_agent_env(env, agent.model), agent), 12, seed=3, progress=False)
        rows = by_hand(twin, Meddle(wrapped, twin), 12, seed=3)
        paths = [r[5] is not None for r in rows]
        assert not all(paths) and any(paths)  # both paths were taken
        assert len({id(r[5][1]) for r in rows if r[5]}) >= 2  # new kernel tables (gamma changed)
    else:
        written = []  # the blocks the rollout's steps were written in (aif.fast.FastStep.record)
        record = agent._fast.record
        agent._fast.record = lambda steps, defer=None: written.extend(record(steps, defer)) or written
        traj = aif.rollout(agent, env, 30, seed=3, progress=False)
        rows = by_hand(twin, wrapped, len(traj.actions), seed=3)
        assert all(r[5] is not None for r in rows)
        assert (len(traj.actions) < 30) == (task == "ends early") and traj.terminated == (task == "ends early")
        assert len(written) == (5 if task == "blocks" else 1)
        assert sum(block[3] for block in written) == len(traj.actions)
    assert agent._fast.left == 0 and not agent._fast.blocks  # the record stopped with the rollout
    assert_holds(traj, rows)
    assert_same_agent(agent, twin)  # the arrays a deferred record handed over at the end are the last step's
    assert traj.observations.dtype == np.int64 and all(o.dtype == np.int64 for o in traj.obs_by_modality)


def assert_same_agent(agent, twin):
    """The agent's arrays after its last step, bit for bit."""
    assert agent.t == twin.t
    np.testing.assert_array_equal(agent.action, twin.action, strict=True)
    for name in ("qs", "prior"):
        for a, b in zip(getattr(agent, name), getattr(twin, name), strict=True):
            np.testing.assert_array_equal(a, b, strict=True)
    np.testing.assert_array_equal(agent.q_pi, twin.q_pi, strict=True)
    np.testing.assert_array_equal(agent.G, twin.G, strict=True)
    assert list(agent.terms) == list(twin.terms)
    for name in agent.terms:
        np.testing.assert_array_equal(agent.terms[name], twin.terms[name], strict=True)


def test_deferred_record_hands_over_the_last_step():
    """``FastStep.record(steps, agent)``: the agent's arrays wait; they are the last step's when the record stops,
    when a step leaves the compiled path, and when an observation is refused (the steps before it kept)."""
    env = TMaze()
    agent = aif.Agent(env.generative_model())
    twin = copy.deepcopy(agent)
    fast_step = agent._fast
    untouched = agent.qs
    fast_step.record(10, agent)
    observations = [[0, 0, 0], [3, 0, 1], [1, 1, 0], [2, 2, 0]]
    for obs in observations[:2]:
        agent.step(list(obs))
        twin.step(list(obs))
    assert agent.qs is untouched and agent.t == 2  # deferred
    with pytest.raises(aif.errors.ObservationError):
        agent.step([0, 7, 0])
    assert_same_agent(agent, twin)
    agent.step(list(observations[2]))  # still recording, deferred again
    twin.step(list(observations[2]))
    agent.step([np.eye(4)[2], np.eye(3)[0], np.eye(2)[0]])  # a probability vector: the NumPy path reads the arrays
    twin.step([np.eye(4)[2], np.eye(3)[0], np.eye(2)[0]])
    assert_same_agent(agent, twin)
    agent.step(list(observations[3]))
    twin.step(list(observations[3]))
    blocks = fast_step.record(0)
    assert_same_agent(agent, twin)
    assert sum(block[3] for block in blocks) == 4


def test_rollout_that_raises_leaves_the_deferred_agent_at_its_last_step(monkeypatch):
    """An environment's step that raises in the middle of a deferred rollout: the agent's arrays are handed over
    (those of its last step, as an agent stepped without deferring), and the next rollout starts afresh."""
    env = TMaze()
    agent = aif.Agent(env.generative_model())
    twin = copy.deepcopy(agent)
    seen = []
    step = TMaze.step

    def failing(self, action):
        if len(seen) == 3:
            raise RuntimeError("the environment failed")
        out = step(self, action)
        seen.append(out[0].tolist())
        return out

    monkeypatch.setattr(TMaze, "step", failing)  # still a class of aif.envs: the rollout defers
    with pytest.raises(RuntimeError, match="failed"):
        aif.rollout(agent, env, 10, seed=0, progress=False)
    assert agent._fast.deferred is None and agent._fast.pending is None and agent.t == 4
    twin.reset()
    first = TMaze()
    twin.step(first.reset(seed=0)[0].tolist())
    for obs in seen:
        twin.step(obs)
    assert_same_agent(agent, twin)
    monkeypatch.setattr(TMaze, "step", step)
    traj = aif.rollout(agent, env, 3, seed=1, progress=False)
    np.testing.assert_array_equal(traj.q_pi[-1], agent.q_pi, strict=True)


def test_rollout_defers_only_where_nothing_reads_the_agent(monkeypatch):
    """An environment of this package, nothing recorded per step: deferred; a wrapper of the caller's (which may read
    the agent) or ``record=("prior",)``: every step hands its arrays over."""
    deferred = []
    record = fast.FastStep.record

    def spy(self, steps, defer=None):
        deferred.append(defer is not None)
        return record(self, steps, defer)

    monkeypatch.setattr(fast.FastStep, "record", spy)
    env = TMaze()
    agent = aif.Agent(env.generative_model())
    aif.rollout(agent, env, 5, seed=0, progress=False)
    aif.rollout(agent, Meddle(as_agent_env(env, agent.model), agent), 5, seed=0, progress=False)
    aif.rollout(agent, env, 5, seed=0, progress=False, record=("prior",))
    assert deferred == [True, False, False, False, False, False]  # (each rollout also stops its record)


def test_agent_wrapper_shortcuts_equal_its_general_code():
    """An integer observation array with indices from 0 becomes the same list of Python ints as the general
    conversion; actions of any array-like form give the same environment action."""
    wrapper = AgentWrapper.for_model(TMaze(), TMaze().generative_model())
    for obs in (np.array([1, 2, 0]), np.array([3, 0, 1], dtype=np.uint8)):
        fast_obs = wrapper.observation(obs)
        assert fast_obs == [int(o) for o in obs] and all(type(o) is int for o in fast_obs)
    assert wrapper.observation(np.array([1.0, 2.0, 0.0])) == [1, 2, 0]  # floats: the general conversion
    for action in (np.array([2, 0]), [2, 0], np.array([[2, 0]]), (2, 0)):
        assert wrapper.env_action(action) == 2 and type(wrapper.env_action(action)) is int
    with pytest.raises(aif.errors.PolicyError, match="expected one per factor"):
        wrapper.env_action(np.array([1, 0, 0]))
    shifted = AgentWrapper(gym.wrappers.TransformObservation(
        TMaze(), lambda o: o + 1, gym.spaces.MultiDiscrete([4, 3, 2], start=[1, 1, 1])))
    assert shifted.observation(np.array([2, 3, 1])) == [1, 2, 0]


@pytest.mark.parametrize("obs", [[2**70], [-1], [3], [True], [1.0], [np.int64(5)]])
def test_compiled_step_refuses_what_check_obs_refuses(obs):
    """A list goes to the kernel without check_obs when it holds Python ints only; every bad index still gets
    check_obs's error (out of range, beyond int64, a bool or a float), and the agent is unchanged."""
    agent = aif.Agent(aif.random_model(np.random.default_rng(4), [3], [3], [2]))
    assert agent._fast is not None
    with pytest.raises(aif.errors.ObservationError, match="out of range|not an outcome index"):
        agent.step(obs)
    assert agent.t == 0 and agent._fast.last is None


@pytest.mark.parametrize("steps", [1, 5])
def test_trajectory_shares_no_memory_with_the_agent(steps):
    """The Trajectory's arrays are the rollout's own (as on the NumPy path, which copies): the agent's arrays after a
    compiled rollout are views of its blocks' last row, and an edit of one must not show in the other."""
    env = TMaze()
    agent = aif.Agent(env.generative_model())
    traj = aif.rollout(agent, env, steps, seed=0, progress=False)
    agent_arrays = [agent.action, agent.q_pi, agent.G, *agent.qs, *agent.prior, *agent.terms.values()]
    traj_arrays = [traj.actions, traj.q_pi, traj.G, *traj.qs, *traj.terms.values()]
    assert not any(np.shares_memory(a, b) for a in agent_arrays for b in traj_arrays)


def test_public_entry_points_name_bad_input():
    env = TMaze()
    agent = aif.Agent(env.generative_model())
    for bad in (-1, 2.0, True, "3"):
        with pytest.raises(aif.errors.ParameterError, match="steps"):
            agent._fast.record(bad)
    assert agent._fast.record(np.int64(2)) == [] and agent._fast.left == 2 and type(agent._fast.left) is int
    agent._fast.record(0)
    assert fast.reason(object()) == "object is not an aif.Agent"
    traj = aif.rollout(agent, env, np.int64(3), seed=0, progress=False)
    assert len(traj.actions) == 3
