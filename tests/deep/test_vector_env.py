"""aif.envs.POMDPVectorEnv (N copies of a tabular task sampled at once) and the batched agent loop it feeds.

Evidence: with the uniforms a single environment draws, every copy's states, observations, rewards and
terminations equal the single environment's exactly; the frequencies of many copies match the task's D, B and A;
Gymnasium's vector API (spaces, seeding, autoreset); errors; aif_deep.rollout over the vector environment; and
aif_deep's thread policy (one intra-op thread for small calls, the user's setting restored).
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import aif
import aif_deep
from aif.envs import CueChaining, GridWorld, POMDPVectorEnv, TMaze
from aif.envs.tmaze import CUE, LEFT_ARM, RIGHT_ARM
from aif.errors import CallOrderError, ParameterError, PolicyError


class Stacked:
    """A stand-in for the vector environment's generator: ``random((n, k))`` stacks the ``k`` numbers each of ``n``
    single environments' generators would draw, in the order of the copies."""

    def __init__(self, generators: list[np.random.Generator]) -> None:
        self.generators = generators

    def random(self, size: tuple[int, int]) -> np.ndarray:
        n, k = size
        assert n == len(self.generators)
        return np.stack([g.random(k) for g in self.generators])


TASKS = {
    "tmaze": lambda: TMaze(reward_prob=0.8, cue_validity=0.7),
    "grid with slip": lambda: GridWorld((3, 3), walls=[(1, 1)], slip=0.3, terminate_at_goal=False),
    "cued grid": lambda: GridWorld((3, 3), goals=[(0, 2), (2, 2)], cue_location=(2, 0), terminate_at_goal=False),
    "cue chaining": lambda: CueChaining(),
}


@pytest.mark.parametrize("task", TASKS)
def test_copies_equal_single_environments_given_their_uniforms(task):
    N, steps = 6, 25
    singles = [TASKS[task]() for _ in range(N)]
    first = [e.reset(seed=10 + i) for i, e in enumerate(singles)]
    vec = POMDPVectorEnv(TASKS[task](), N)
    vec.np_random = Stacked([np.random.default_rng(10 + i) for i in range(N)])  # what reset(seed=10 + i) seeds
    obs, info = vec.reset()
    assert np.array_equal(obs, np.stack([o for o, _ in first]))
    assert np.array_equal(info["state"], np.array([i["state"] for _, i in first]))
    actions = np.random.default_rng(0).integers(vec.single_action_space.n, size=(steps, N))
    for a in actions:
        out = [e.step(int(u)) for e, u in zip(singles, a, strict=True)]
        obs, reward, terminated, truncated, info = vec.step(a)
        assert np.array_equal(obs, np.stack([o[0] for o in out]))
        assert np.array_equal(reward, np.array([o[1] for o in out]))
        assert np.array_equal(terminated, np.array([o[2] for o in out]))
        assert not truncated.any()
        assert np.array_equal(info["state"], np.array([o[4]["state"] for o in out]))


def test_reset_options_are_the_tasks():
    vec = POMDPVectorEnv(TMaze(), 5)
    _, info = vec.reset(seed=0, options={"condition": 1})
    assert (info["state"][:, 1] == 1).all() and (info["state"][:, 0] == 0).all()
    _, info = vec.reset(options={"state": (3, 0)})
    assert (info["state"] == [3, 0]).all()
    cc = POMDPVectorEnv(CueChaining(), 4)
    _, info = cc.reset(seed=1, options={"cue2_state": 2, "reward_condition": 0})
    assert (info["state"][:, 1:] == [2, 0]).all()
    with pytest.raises(ParameterError, match="condition"):
        vec.reset(options={"condition": 2})
    with pytest.raises(ParameterError, match="state"):
        vec.reset(options={"state": (4, 0)})


def _frequencies(x: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(x, minlength=n) / len(x)


def _close(freq: np.ndarray, p: np.ndarray, n: int) -> bool:
    """Within 5 standard errors of a binomial count of ``n`` draws, for every outcome."""
    return bool((np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12).all())


def test_frequencies_follow_the_tasks_arrays():
    N = 20_000
    task = TMaze(reward_prob=0.8, cue_validity=0.7)
    vec = POMDPVectorEnv(task, N)
    obs, info = vec.reset(seed=3)
    assert _close(_frequencies(info["state"][:, 1], 2), task.D[1], N)  # the condition from D
    # away from the cue, the cue outcome is uniform noise: A[2][:, centre, c]
    assert _close(_frequencies(obs[:, 2], 2), np.full(2, 0.5), N)
    obs, reward, *_ = vec.step(np.full(N, CUE))
    cond = info["state"][:, 1]
    valid = (obs[:, 2] == cond).mean()  # at the cue, the cue names the condition with probability cue_validity
    assert abs(valid - 0.7) <= 5 * math.sqrt(0.21 / N)
    obs, reward, *_ = vec.step(np.full(N, RIGHT_ARM))
    rewarded = (reward[cond == 0] > 0).mean(), (reward[cond == 1] > 0).mean()
    assert abs(rewarded[0] - 0.8) <= 5 * math.sqrt(0.16 / (cond == 0).sum())
    assert abs(rewarded[1] - 0.2) <= 5 * math.sqrt(0.16 / (cond == 1).sum())
    # a slipping grid: the next location from B's column
    grid = GridWorld((3, 3), slip=0.3, terminate_at_goal=False)
    vec = POMDPVectorEnv(grid, N)
    vec.reset(seed=4)
    obs, *_ = vec.step(np.full(N, 3))  # right from (0, 0)
    assert _close(_frequencies(obs[:, 0], 9), grid.B[0][:, 0, 3], N)


def test_vector_api():
    task = TMaze()
    vec = POMDPVectorEnv(task, 4)
    assert vec.num_envs == 4 and vec.single_observation_space == task.observation_space
    assert vec.single_action_space == task.action_space
    assert vec.observation_space == gym.vector.utils.batch_space(task.observation_space, 4)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, info = vec.reset(seed=5)
    assert obs.dtype == np.int64 and vec.observation_space.contains(obs)
    assert info["state"].shape == (4, 2) and info["_state"].all()
    vec.action_space.seed(0)
    obs2, reward, terminated, truncated, info = vec.step(vec.action_space.sample())
    assert vec.observation_space.contains(obs2) and reward.shape == (4,) and reward.dtype == np.float64
    assert terminated.dtype == bool and truncated.shape == (4,)
    again = POMDPVectorEnv(task, 4)  # the same seed, the same episode
    assert np.array_equal(again.reset(seed=5)[0], obs)
    assert "POMDPVectorEnv(TMaze, num_envs=4)" == repr(vec)


def test_autoreset_and_truncation():
    grid = GridWorld((1, 2), start=(0, 0), goals=[(0, 1)])  # one step right reaches the goal and ends
    vec = POMDPVectorEnv(grid, 3, max_episode_steps=2)
    vec.reset(seed=0)
    obs, reward, terminated, truncated, _ = vec.step(np.array([3, 4, 4]))  # right, stay, stay
    assert terminated.tolist() == [True, False, False] and reward.tolist() == [1.0, 0.0, 0.0]
    assert obs[:, 0].tolist() == [1, 0, 0] and not truncated.any()
    obs, reward, terminated, truncated, _ = vec.step(np.array([4, 4, 3]))  # copy 0 resets (its action ignored)
    assert obs[:, 0].tolist() == [0, 0, 1] and reward.tolist() == [0.0, 0.0, 1.0]
    assert terminated.tolist() == [False, False, True] and truncated.tolist() == [False, True, True]
    assert vec.elapsed_steps.tolist() == [0, 2, 2]
    obs, *_ = vec.step(np.array([4, 4, 4]))  # copies 1 and 2 reset
    assert obs[:, 0].tolist() == [0, 0, 0] and vec.elapsed_steps.tolist() == [1, 0, 0]
    manual = POMDPVectorEnv(grid, 2, autoreset_mode="Disabled")
    manual.reset(seed=0)
    manual.step(np.array([3, 4]))
    with pytest.raises(CallOrderError, match="reset them"):
        manual.step(np.array([4, 4]))
    obs, _ = manual.reset(options={"reset_mask": np.array([True, False])})
    assert obs[:, 0].tolist() == [0, 0]
    manual.step(np.array([4, 4]))


def test_errors():
    with pytest.raises(ParameterError, match="POMDPEnv"):
        POMDPVectorEnv(gym.make("CartPole-v1"), 2)
    with pytest.raises(ParameterError, match="num_envs"):
        POMDPVectorEnv(TMaze(), 0)
    with pytest.raises(ParameterError, match="max_episode_steps"):
        POMDPVectorEnv(TMaze(), 2, max_episode_steps=0)
    with pytest.raises(ParameterError, match="autoreset_mode"):
        POMDPVectorEnv(TMaze(), 2, autoreset_mode=AutoresetMode.SAME_STEP)
    vec = POMDPVectorEnv(TMaze(), 2)
    with pytest.raises(CallOrderError, match="reset"):
        vec.step(np.array([0, 0]))
    with pytest.raises(CallOrderError, match="whole"):
        vec.reset(options={"reset_mask": np.array([True, False])})
    vec.reset(seed=0)
    for bad in (np.array([0, 4]), np.array([0]), np.array([0.0, 1.0]), np.array([-1, 0]), "left"):
        with pytest.raises(PolicyError, match="actions"):
            vec.step(bad)
    with pytest.raises(ParameterError, match="options"):
        vec.reset(options=[("condition", 0)])
    with pytest.raises(ParameterError, match="not supported"):
        vec.reset(options={"D": TMaze().D})
    for mask in (np.array([False, False]), np.array([1, 0]), np.array([True])):
        with pytest.raises(ParameterError, match="reset_mask"):
            vec.reset(options={"reset_mask": mask})


def test_rollout_of_a_batch_of_agents_over_the_vector_env():
    """The agents visit the cue first and then the baited arm (the behaviour a person can check), and an agent's
    record is what the environment returned."""
    task = TMaze()
    N = 16
    agent = aif_deep.Agent(aif_deep.TabularModel.from_aif(task.generative_model(), device="cpu"), batch_shape=(N,))
    vec = POMDPVectorEnv(task, N)
    traj = aif_deep.rollout(agent, vec, 3, seed=2)
    locations = traj.observations[:, :, 0]
    assert (locations[:, 1] == CUE).all()
    conditions = vec.states[:, 1]
    assert (locations[:, 2] == np.where(conditions == 0, RIGHT_ARM, LEFT_ARM)).all()
    assert traj.actions.shape == (N, 3, 2) and (traj.actions[:, 0, 0] == CUE).all()
    # the same loop, step by step, with the agent's public calls
    agent.reset()
    obs, _ = vec.reset(seed=2)
    for t in range(3):
        action = agent.step(obs)
        assert np.array_equal(action.numpy(), traj.actions[:, t])
        obs, *_ = vec.step(action[:, 0].numpy())


def test_small_calls_run_on_one_thread_and_restore_the_setting():
    seen = []

    def value(qs):  # a TerminalValue is called inside the agent's step: it sees the thread setting there
        seen.append(torch.get_num_threads())
        return torch.zeros(qs[0].shape[:-1], dtype=qs[0].dtype)

    task = TMaze()
    model = aif_deep.TabularModel.from_aif(task.generative_model(), device="cpu")
    terms = (*aif.efe.DEFAULT_TERMS, aif.TerminalValue(value, 1.0))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        agent = aif_deep.Agent(model, batch_shape=(4,), efe_terms=terms)
        agent.step(np.zeros((4, 3), dtype=np.int64))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_large_calls_keep_the_callers_threads_up_to_the_free_cores(monkeypatch):
    from aif_deep import threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for free, inside in ((2, 2), (1, 1)):  # an idle machine, a busy one
            monkeypatch.setattr(threads, "free_cores", lambda free=free: free)
            with threads.threads_for(threads.SMALL_WORK):
                assert torch.get_num_threads() == inside
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="inside"), threads.threads_for(0):
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2  # restored when the body raises
        assert threads.free_cores() >= 1
    finally:
        torch.set_num_threads(before)
