"""The T-maze: an agent starts in the centre; a cue in the bottom arm tells which upper arm is baited.

The layout and indices follow pymdp.legacy's ``TMazeEnv`` (and SPM's ``DEM_demo_MDP_maze``), so models and
results can be compared one to one:

- factor 0, location (4): 0 centre, 1 right arm, 2 left arm, 3 cue location (bottom arm). Action ``u``
  moves the agent to location ``u`` from anywhere.
- factor 1, reward condition (2): 0 reward on the right, 1 reward on the left. It never changes.
- modality 0, location (4): the location, without noise.
- modality 1, reward (3): 0 no reward, 1 reward, 2 loss. In the arm matching the condition, reward with
  probability ``reward_prob`` and loss otherwise; in the other arm the reverse; elsewhere no reward.
- modality 2, cue (2): at the cue location, the condition with probability ``cue_validity``; elsewhere
  uniform noise.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..checks import as_numbers, check_choice, check_fraction, check_positive, check_real
from ..errors import ParameterError
from ..model import GenerativeModel
from .pomdp import POMDPEnv, known_counts, unknown_transitions

CENTRE, RIGHT_ARM, LEFT_ARM, CUE = range(4)
NO_REWARD, REWARD, LOSS = range(3)

LOCATION_NAMES = ("centre", "right arm", "left arm", "cue")
CONDITION_NAMES = ("reward on right", "reward on left")
REWARD_NAMES = ("no reward", "reward", "loss")
REWARDS = (0.0, 1.0, -1.0)  # the environment's reward for each reward outcome
_HOOKS = ("reward", "terminal", "_observe")  # POMDPEnv.step's calls that TMaze.step's shortcut writes out
CUE_NAMES = ("cue right", "cue left")

def tmaze_arrays(reward_prob: float = 0.98, cue_validity: float = 1.0) -> tuple[list, list, list]:
    """The T-maze's A, B and D (as used by the environment and, by default, the agent).

    Returns:
        ``(A, B, D)``: ``A = [(4, 4, 2), (3, 4, 2), (2, 4, 2)]``, ``B = [(4, 4, 4), (2, 2, 1)]``,
        ``D = [(4,), (2,)]`` (start in the centre; either condition with probability 1/2).
    """
    a = check_fraction(reward_prob, "reward_prob")
    v = check_fraction(cue_validity, "cue_validity")
    A_loc = np.zeros((4, 4, 2))
    A_rew = np.zeros((3, 4, 2))
    A_cue = np.zeros((2, 4, 2))
    for c in range(2):
        A_loc[:, :, c] = np.eye(4)
        A_rew[NO_REWARD, [CENTRE, CUE], c] = 1.0
        baited = RIGHT_ARM if c == 0 else LEFT_ARM
        other = LEFT_ARM if c == 0 else RIGHT_ARM
        A_rew[[REWARD, LOSS], baited, c] = a, 1 - a
        A_rew[[REWARD, LOSS], other, c] = 1 - a, a
        A_cue[:, [CENTRE, RIGHT_ARM, LEFT_ARM], c] = 0.5
        A_cue[c, CUE, c] = v
        A_cue[1 - c, CUE, c] = 1 - v
    # B_loc[next, prev, u] = 1 when next == u: every action is "go to location u".
    B_loc = np.broadcast_to(np.eye(4)[:, None, :], (4, 4, 4)).copy()
    B_cond = np.eye(2)[:, :, None]
    D = [np.eye(4)[CENTRE], np.full(2, 0.5)]
    return [A_loc, A_rew, A_cue], [B_loc, B_cond], D


class TMaze(POMDPEnv):
    """The T-maze task as a Gymnasium environment.

    Args:
        reward_prob: probability of reward in the baited arm (and of loss in the other); 0.98 as in the
            pymdp and SPM demos.
        cue_validity: probability that the cue shows the true condition.

    Observation: ``MultiDiscrete([4, 3, 2])`` (location, reward, cue). Action: ``Discrete(4)``, the location
    to go to. Reward: +1 for a reward outcome, -1 for a loss. The episode never ends by itself (as in
    pymdp.legacy); bound it with the number of steps or ``gymnasium.wrappers.TimeLimit``.
    ``reset(options={"condition": 0 | 1})`` fixes the reward condition, otherwise it is drawn uniformly.
    """

    def __init__(self, reward_prob: float = 0.98, cue_validity: float = 1.0) -> None:
        self.reward_prob = check_fraction(reward_prob, "reward_prob")
        self.cue_validity = check_fraction(cue_validity, "cue_validity")
        super().__init__(*tmaze_arrays(reward_prob, cue_validity), control_factor=0)
        # ``step``'s shortcut: this class's own sampling and reward
        self._plain = all(getattr(type(self), name) is getattr(TMaze, name) for name in _HOOKS)
        self._walk = self._plain  # and, from each reset, none of them replaced on the instance (``_initial_state``)

    def _initial_state(self, state, options):
        # (read at each reset rather than at each step: looking into the instance's __dict__ there slows every
        # attribute access of the environment by a fifth, measured)
        self._walk = self._plain and all(getattr(getattr(self, name), "__func__", None) is getattr(TMaze, name)
                                         for name in _HOOKS)
        if "condition" in options:
            state = (state[0], int(check_choice(options["condition"], "options['condition']", (0, 1))))
        return state

    @property
    def condition(self):
        """The current reward condition (0 right, 1 left)."""
        return None if self.state is None else self.state[1]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        """``POMDPEnv.step``: the same draws and results to the bit, in fewer Python operations (its step is part of
        every agent-environment loop we time, benchmarks/bench_loop.py)."""
        if not (self._walk and type(action) is int and 0 <= action < 4 and self._cdfs is self._built[3]
                and self.state is not None and self.render_mode != "human"):
            return super().step(action)  # and anything unusual: None, arrays given to reset
        u = self.np_random.random(5).tolist()  # the location, the condition, then the three observations
        (A_loc, A_rew, A_cue), (B_loc, B_cond), _ = self._cdfs
        loc, condition = self.state
        self.state = state = (bisect_right(B_loc[(loc, action)], u[0]), bisect_right(B_cond[(condition, 0)], u[1]))
        self.obs = obs = np.array([bisect_right(A_loc[state], u[2]), bisect_right(A_rew[state], u[3]),
                                   bisect_right(A_cue[state], u[4])], np.int64)
        return obs, REWARDS[obs[1]], False, False, {"state": state}

    def reward(self, state: Any, obs: Any) -> float:
        return REWARDS[int(obs[1])]

    def reward_tables(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """``POMDPEnv.reward_tables``: the reward of the reward outcome, no end."""
        return self._outcome_rewards(1, dict(enumerate(REWARDS)))

    def generative_model(self, reward_preference: float = 3.0, loss_preference: float = -3.0,
                         reward_prob: float | None = None, cue_validity: float | None = None, learn_A: bool = False,
                         learn_B: bool = False, prior_count: float = 1.0) -> GenerativeModel:
        """The model an agent needs in this maze: pymdp's T-maze demo settings by default.

        Args:
            reward_preference, loss_preference: ``C[1] = [0, reward_preference, loss_preference]``
                (the demo's ``[0, 3, -3]``).
            reward_prob, cue_validity: the agent's beliefs; the environment's values when ``None``
                (give other values for a mismatched model).
            learn_A: the agent does not know the reward contingencies of the arms: ``pA[1]`` holds
                ``prior_count`` for reward and loss in both arms (so ``A[1]`` is 50/50 there), and the
                other counts pin the true values (``1e4`` times the probabilities).
            learn_B: the agent does not know where its actions lead: ``pB[0]`` is uniform with
                ``prior_count`` per entry (so ``B[0]`` is uniform); the condition factor stays known.
            prior_count: the Dirichlet count of an unknown entry.

        Returns:
            ``GenerativeModel`` with ``D = [centre, (1/2, 1/2)]``; ``pA``/``pB`` set when learning.
        """
        A, B, D = tmaze_arrays(self.reward_prob if reward_prob is None else reward_prob,
                               self.cue_validity if cue_validity is None else cue_validity)
        C = [np.zeros(4), np.array([0.0, check_real(reward_preference, "reward_preference"),
                                    check_real(loss_preference, "loss_preference")]), np.zeros(2)]
        prior_count = check_positive(prior_count, "prior_count")
        pA = known_counts(A) if learn_A else None
        if pA is not None:
            pA[1][REWARD:, RIGHT_ARM:LEFT_ARM + 1, :] = prior_count
            # The arrays are the counts' means, except that the floor of the known zeros is left out.
            A[1][:, RIGHT_ARM:LEFT_ARM + 1, :] = np.array([0.0, 0.5, 0.5])[:, None, None]
        return GenerativeModel(A, B, C, D, pA=pA, pB=unknown_transitions(B, prior_count) if learn_B else None)



def _indices(x: Any, name: str, ndim: int, n: int) -> np.ndarray:
    """A non-empty ``ndim``-D array of integers in ``0..n-1`` (``ParameterError``)."""
    a = as_numbers(x, name, ParameterError)
    if a.ndim != ndim or a.size == 0 or not np.isin(a, np.arange(n)).all():
        raise ParameterError(f"{name} must be a non-empty {ndim}-D array of integers in 0..{n - 1}, got {x!r:.200}")
    return a.astype(int)

def summarize_tmaze(locations: ArrayLike, conditions: ArrayLike, rewards: ArrayLike) -> dict:
    """Per-trial outcomes of T-maze runs and their rates.

    Args:
        locations: int ``(K, T + 1)``: observed location at each step of each trial, the start included
            (``Trajectory.observations[:, 0]`` stacked over trials).
        conditions: int ``(K,)``: the reward condition of each trial.
        rewards: ``(K, T)``: the reward after each action.

    Returns:
        dict with per-trial arrays ``cue_first`` (the first move went to the cue), ``first_arm`` (the first
        arm entered, 1 or 2; -1 if none), ``correct_arm`` (it was the baited arm), ``first_arm_reward``
        (the reward on entering it) and ``total_reward``; and the rates ``cue_first_rate``,
        ``correct_arm_rate`` and ``first_arm_reward_rate`` (share of trials rewarded on the first arm entered).
    """
    locations, conditions = _indices(locations, "locations", 2, 4), _indices(conditions, "conditions", 1, 2)
    rewards = as_numbers(rewards, "rewards", ParameterError)
    K, T = locations.shape[0], locations.shape[1] - 1
    if conditions.shape != (K,) or rewards.shape != (K, T) or T < 1 or not np.isfinite(rewards).all():
        raise ParameterError(f"locations {locations.shape}, conditions {conditions.shape} and rewards {rewards.shape} "
                             "must be (K, T + 1), (K,) and finite (K, T) with T >= 1")
    in_arm = (locations[:, 1:] == RIGHT_ARM) | (locations[:, 1:] == LEFT_ARM)
    entered = in_arm.any(axis=1)
    step = np.argmax(in_arm, axis=1)  # first step whose action led into an arm
    rows = np.arange(len(locations))
    first_arm = np.where(entered, locations[rows, step + 1], -1)
    first_arm_reward = np.where(entered, rewards[rows, step], 0.0)
    out = {
        "cue_first": locations[:, 1] == CUE,
        "first_arm": first_arm,
        "correct_arm": first_arm == conditions + 1,
        "first_arm_reward": first_arm_reward,
        "total_reward": rewards.sum(axis=1),
    }
    out["cue_first_rate"] = float(out["cue_first"].mean())
    out["correct_arm_rate"] = float(out["correct_arm"].mean())
    out["first_arm_reward_rate"] = float((first_arm_reward > 0).mean())
    return out
