"""Run an agent in an environment and keep a record of every step.

``rollout(agent, env, steps, rng)`` resets both, then repeats: the agent infers its state from the
observation, scores its policies by expected free energy and picks an action; the environment steps. The
returned ``Trajectory`` holds what the agent saw, believed, weighed and did.

Three additions follow pymdp 1.0's ``pymdp.envs.rollout.rollout``:

- ``policy_search``: a function that replaces the agent's planning at every step (pymdp's ``policy_search``),
  whose per-step ``info`` is kept in ``Trajectory.search_info``.
- ``resume``: continue the episode where a rollout stopped (pymdp's ``initial_carry``). An aif agent and a
  Gymnasium environment are stateful objects that keep their own state between calls, so what the loop carries
  from one call to the next is only what is in flight between them: the observation the agent has not acted on
  yet (``Trajectory.carry``). ``rollout(agent, env, n)`` then ``rollout(agent, env, m, resume=traj.carry)``
  takes exactly the steps of ``rollout(agent, env, n + m)``; ``copy.deepcopy`` of the agent and the environment
  branches the episode.
- ``record``: per-step copies of the prior each step started from (pymdp's ``empirical_prior``) and of the
  model's arrays after each step (pymdp records ``A``, ``pA``, ``B``, ``pB`` when the agent learns online).

The agent may be an ``aif.Agent`` or an ``aif_deep.Agent`` (whose beliefs are torch tensors), and the
observations indices or arrays (images for a neural model): everything is kept as NumPy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium as gym
import numpy as np
from tqdm import tqdm  # plain tqdm: tqdm.auto warns in notebooks without ipywidgets

from . import fast as fast_module
from .agent import Agent, PolicySearch, atomic
from .checks import check_choice, check_index
from .envs.wrappers import AgentWrapper
from .errors import CallOrderError, ParameterError, PolicyError, StrategyError

# Runs at least this long show a progress bar unless ``progress=False``.
PROGRESS_MIN_STEPS = 500

# What ``rollout(..., record=...)`` can keep per step: the prior the step started from, and model arrays after it.
RECORDS = ("prior", "A", "B", "pA", "pB")

@dataclass(frozen=True)
class Carry:
    """Where a rollout stopped: what ``rollout(..., resume=carry)`` continues from.

    The agent (beliefs, prior, learned model, generator) and the environment (hidden state, generator) keep their
    own state; the carry holds what is between them. Resume with the agent and the environment as the rollout left
    them, or with ``copy.deepcopy`` of both to branch the episode.

    Attributes:
        observation: the environment's last observation, not yet acted on, as the (wrapped) environment gave it.
        state: the environment's hidden state with it (``info["state"]``), or ``None``.
        steps: the agent's step count ``agent.t`` when the rollout stopped (checked when resuming).
        ended: the environment ended the episode (terminated or truncated): there is nothing to resume.
    """

    observation: Any
    state: Any
    steps: int
    ended: bool = False


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One episode, or part of one, step by step (``T`` steps taken, ``M`` modalities, ``F`` factors, ``P``
    policies).

    Attributes:
        observations: int ``(T + 1, M)``: the observation before each step and the last one after it, when
            every modality is observed as one index; ``None`` when some are arrays (use ``obs_by_modality``).
        actions: int ``(T, F)``: the agent's action vector at each step.
        qs: one array ``(T, num_states[f])`` per factor: the posterior after each observation.
        q_pi: ``(T, P)``: the posterior over policies at each step.
        G: ``(T, P)``: the expected free energy of each policy (lower is better); NaN at the steps where a
            ``policy_search`` returned no ``G``.
        terms: name -> ``(T, P)``: the EFE terms at each step (``risk``, ``ambiguity``, ``utility``,
            ``state_info_gain``, and parameter terms when the agent computes them); empty with a ``policy_search``
            (whose ``info`` is in ``search_info``).
        rewards: ``(T,)``: the environment's reward after each action.
        states: int ``(T + 1, F_env)``: the environment's hidden states when it reports them as
            ``info["state"]`` (the environments in ``aif.envs`` do), else ``None``.
        policies: int ``(P, horizon, F)``: the policies the columns of ``q_pi``, ``G`` and ``terms`` refer to.
        terminated, truncated: how the episode ended (both false when it ran for all the steps asked).
        obs_by_modality: one array ``(T + 1, *shape_m)`` per modality: the observations as the environment
            gave them (``shape_m`` is ``()`` for an index, e.g. ``(8, 8)`` for an image).
        search_info: name -> ``(T, ...)``: what the ``policy_search`` returned as ``info`` at each step.
        records: name -> one array ``(T, *shape)`` per factor (``"prior"``, ``"B"``, ``"pB"``) or modality
            (``"A"``, ``"pA"``), for the names given to ``rollout(..., record=)``: the prior each step started
            from (``(T, S_f)``; with an inference method over time, the prior of the step's window, ``(T, P, S_f)``
            once it is held per policy), and the model's arrays after each step.
        start: the agent's step count before the first step (0 for a new episode, ``carry.steps`` when resumed).
        carry: where the rollout stopped, for ``rollout(..., resume=carry)``.
    """

    observations: np.ndarray | None
    actions: np.ndarray
    qs: tuple
    q_pi: np.ndarray
    G: np.ndarray
    terms: dict = field(repr=False)
    rewards: np.ndarray
    states: np.ndarray | None
    policies: np.ndarray = field(repr=False)
    terminated: bool = False
    truncated: bool = False
    obs_by_modality: tuple = field(default=(), repr=False)
    search_info: dict = field(default_factory=dict, repr=False)
    records: dict = field(default_factory=dict, repr=False)
    start: int = 0
    carry: Carry | None = field(default=None, repr=False)

    @property
    def num_steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def total_reward(self) -> float:
        return float(self.rewards.sum())

    def step_terms(self, t: int) -> dict:
        """The EFE terms at step ``t``: name -> ``(P,)``."""
        return {name: values[t] for name, values in self.terms.items()}

    def join(self, later: Trajectory) -> Trajectory:
        """This trajectory followed by ``later``, a rollout resumed from ``self.carry``: the trajectory of one
        rollout that took the steps of both (``later``'s first observation is this one's last)."""
        if not isinstance(later, Trajectory):
            raise StrategyError(f"later must be an aif.Trajectory, got {type(later).__name__}")
        stopped = self.start + self.num_steps
        if self.terminated or self.truncated or later.start != stopped:
            raise ParameterError(f"later starts at step {later.start}, but this trajectory "
                                 f"{'ended' if self.terminated or self.truncated else 'stopped'} at step {stopped}: "
                                 "join a rollout resumed from this one's carry")
        if not np.array_equal(self.policies, later.policies):
            raise PolicyError(f"later has policies {later.policies.shape} that are not this trajectory's "
                              f"{self.policies.shape}")
        for name in ("terms", "search_info", "records"):
            if getattr(self, name).keys() != getattr(later, name).keys():
                raise ParameterError(f"later's {name} has {sorted(getattr(later, name))}, this trajectory's "
                                     f"{sorted(getattr(self, name))}")

        def steps(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # (T_a, ...) + (T_b, ...)
            return np.concatenate([a, b])

        def points(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:  # (T_a + 1) + (T_b + 1) - 1
            return None if a is None or b is None else np.concatenate([a[:-1], b])

        def priors(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # (T_a, S_f) or (T_a, P, S_f) + the same of T_b
            shape = np.broadcast_shapes(a.shape[1:], b.shape[1:])
            return steps(*(np.broadcast_to(x.reshape(len(x), *[1] * (len(shape) + 1 - x.ndim), *x.shape[1:]),
                                           (len(x), *shape)) for x in (a, b)))

        return Trajectory(
            observations=points(self.observations, later.observations),
            actions=steps(self.actions, later.actions),
            qs=tuple(map(steps, self.qs, later.qs)),
            q_pi=steps(self.q_pi, later.q_pi),
            G=steps(self.G, later.G),
            terms={name: steps(values, later.terms[name]) for name, values in self.terms.items()},
            rewards=steps(self.rewards, later.rewards),
            states=points(self.states, later.states),
            policies=self.policies,
            terminated=later.terminated,
            truncated=later.truncated,
            obs_by_modality=tuple(map(points, self.obs_by_modality, later.obs_by_modality)),
            search_info={name: steps(values, later.search_info[name]) for name, values in self.search_info.items()},
            records={name: tuple(map(priors if name == "prior" else steps, arrays, later.records[name]))
                     for name, arrays in self.records.items()},
            start=self.start,
            carry=later.carry,
        )


def default_policy_search(agent: Agent, qs: list,
                          rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The agent's own planning as a ``policy_search`` (pymdp 1.0's ``default_policy_search``).

    Args:
        agent: the ``aif.Agent`` whose step it is.
        qs: its posterior, one ``(num_states[f],)`` per factor (``agent.qs``, which ``infer_policies`` reads).
        rng: its generator (``agent.rng``; a planner reads it itself).

    Returns:
        ``(q_pi, G, terms)``: ``agent.infer_policies()``, each ``(P,)``, and its EFE terms, name -> ``(P,)``.
    """
    q_pi, G = agent.infer_policies()
    return q_pi, G, dict(agent.terms)


def rollout(agent: Any, env: Any, steps: int, rng: np.random.Generator | None = None, *, seed: int | None = None,
            options: dict | None = None, progress: bool | None = None, policy_search: PolicySearch | None = None,
            resume: Carry | None = None, record: Sequence[str] = ()) -> Trajectory:
    """Run ``agent`` in ``env`` for up to ``steps`` actions.

    Args:
        agent: an ``aif.Agent`` or ``aif_deep.Agent`` with an unbatched model (anything with ``reset()``,
            ``step(obs) -> action`` and the attributes ``qs``, ``q_pi``, ``G``, ``terms``, ``policies``,
            ``model``, ``prior``, ``t``; arrays or CPU tensors).
        env: a Gymnasium environment with discrete observations; it is wrapped in ``AgentWrapper`` for the
            agent's model unless it is one already or wraps one (e.g. ``aif_deep.training.NoisyGridImages``,
            whose observations are images).
        steps: the most actions to take; the episode stops earlier when the environment ends it.
        rng: ``np.random.Generator`` that seeds the environment's reset (when ``seed`` is not given).
        seed: the environment's reset seed (takes precedence over ``rng``).
        options: passed to ``env.reset`` (e.g. ``{"condition": 1}`` in the T-maze).
        progress: show a tqdm bar; by default only for runs of ``PROGRESS_MIN_STEPS`` steps or more.
        policy_search: ``policy_search(agent, qs, rng) -> (q_pi, G, info)``, called at each step of an
            ``aif.Agent`` with a one-step inference method, after ``agent.infer_states(obs)``, in place of
            ``agent.infer_policies()``: ``qs`` is the new posterior (``agent.qs``) and ``rng`` the agent's
            generator (``agent.rng``, ``None`` without one). It returns ``q_pi`` ``(P,)``, a distribution over
            ``agent.policies`` (over ``agent.plan.policies`` when it called ``agent.infer_policies()`` with a
            planner), ``G`` ``(P,)`` (finite) or ``None``, and ``info``, a dict of name -> array, the same names
            and shapes at every step (kept in ``Trajectory.search_info``). The agent then selects its action from
            ``q_pi`` as its ``Selection`` says. ``default_policy_search`` is the agent's own planning.
        resume: a ``Trajectory.carry``: continue that episode (no reset of the agent or the environment) from the
            observation where it stopped. ``rng``, ``seed`` and ``options``, which are for the reset, must then be
            left out.
        record: names from ``RECORDS`` to keep per step in ``Trajectory.records``: ``"prior"`` (the prior each
            step started from), ``"A"``, ``"B"``, ``"pA"``, ``"pB"`` (the model's arrays after each step: with
            online learning, the counts after that step's update). Copies: counts can be large.

    Returns:
        ``Trajectory``.
    """
    if not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and steps >= 1):
        raise ParameterError(f"steps must be at least 1, got {steps!r}")
    if not all(hasattr(agent, name) for name in ("reset", "step", "model")):  # an aif or aif_deep Agent
        raise StrategyError(f"agent must be an aif.Agent or aif_deep.Agent, got {type(agent).__name__}")
    if not isinstance(env, gym.Env):
        raise StrategyError(f"env must be a gymnasium.Env, got {type(env).__name__}")
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise StrategyError(f"rng must be a np.random.Generator, got {type(rng).__name__}")
    seed = None if seed is None else check_index(seed, "seed")
    if options is not None and not isinstance(options, dict):
        raise ParameterError(f"options must be a dict or None, got {options!r}")
    if policy_search is not None:
        _check_search(agent, policy_search)
    model_records, priors = _check_record(agent, record)
    if resume is not None:
        _check_resume(agent, resume, rng, seed, options)
    env = as_agent_env(env, agent.model)
    if seed is None and rng is not None:
        seed = int(rng.integers(2**31 - 1))
    show = steps >= PROGRESS_MIN_STEPS if progress is None else bool(progress)

    if resume is None:
        agent.reset()
        obs, info = env.reset(seed=seed, options=options)
        state = info.get("state")
    else:
        obs, state = resume.observation, resume.state
    start = agent.t
    observations, states = [obs], [state]
    actions, rewards = [], []
    # What the agent believed and weighed at each step. A step of the compiled agent (aif.fast) left all of it in
    # one array, a row of the blocks it writes while it records (``FastStep.record``), kept as it is (``compiled``,
    # step -> (out, tables)); any other step is copied here, array by array, into ``copied`` (step -> (qs, q_pi, G,
    # terms)).
    # an aif.Agent's compiled step (aif.fast; an aif_deep.Agent's batched one keeps its own arrays), not with a search
    fast = getattr(agent, "_fast", None) if policy_search is None else None
    fast = fast if isinstance(fast, fast_module.FastStep) else None
    compiled: dict[int, tuple] = {}
    copied: dict[int, tuple] = {}
    search_info: dict[str, list] = {}
    first_info: dict | None = None  # name -> shape of the search's info at the first step
    terminated = truncated = False
    first = 0  # the first step the loop below takes (after a compiled episode that stopped short)
    if (fast is not None and priors is None and not model_records
            and fast_module.episode_reason(agent, env, obs) is None):
        # The whole episode in compiled calls, the agent's steps and the environment's (aif.fast.run_episode)
        with tqdm(total=steps, desc="rollout", unit="step", leave=False) if show else nullcontext() as bar:
            done = fast_module.run_episode(agent, env, obs, steps, bar)
        if done.ended or done.steps == steps:
            return _compiled_trajectory(agent, env, done, start)
        # an observation the agent's kernel refuses: the loop below takes that step (and raises the NumPy path's
        # error), after the compiled steps' records
        first = done.steps
        observations, states = done.observations.tolist(), list(map(tuple, done.states.tolist()))
        obs = observations[-1]
        actions, rewards = list(done.actions), done.rewards.tolist()
        compiled.update({t: (done.out[t], done.tables) for t in range(first)})
    if fast is not None:
        # An environment of this package never sees the agent: the agent's arrays can wait for the episode's end
        # (``FastStep.record``), unless the loop reads them (the prior or the model recorded at each step). The
        # ``finally`` below stops the record, so a loop that raises also leaves the agent at its last step.
        alone = (type(env) is AgentWrapper and type(env.env).__module__.startswith("aif.envs.") and priors is None
                 and not model_records)
        fast.record(steps, agent if alone else None)
    try:
        for t in tqdm(range(first, steps), desc="rollout", unit="step", leave=False) if show else range(first, steps):
            if priors is not None:
                priors.append([_copy(p) for p in agent.prior])
            if policy_search is None:
                action = agent.step(obs)
            else:
                action, found = _search_step(agent, obs, policy_search, start + t, first_info)
                first_info = _shapes(found) if first_info is None else first_info
                for name, value in found.items():
                    search_info.setdefault(name, []).append(value)
            if fast is not None and fast.last is not None:
                compiled[t] = fast.last  # its action is a new array or a row of a block too, never written again
            else:
                action = _copy(action)
                q_pi = _copy(agent.q_pi)
                copied[t] = ([_copy(q) for q in agent.qs], q_pi,
                             np.full(q_pi.shape, np.nan) if agent.G is None else _copy(agent.G),
                             {name: _copy(values) for name, values in agent.terms.items()})
            actions.append(action)
            for name, rows in model_records.items():
                rows.append([_copy(x) for x in getattr(agent.model, name)])
            obs, reward, terminated, truncated, info = env.step(action)
            observations.append(obs)
            states.append(info.get("state"))
            rewards.append(reward)
            if terminated or truncated:
                break
    finally:
        blocks = fast.record(0) if fast is not None else []

    qs, q_pi, G, terms = _beliefs(compiled, copied, len(actions), blocks)
    if len(blocks) == 1 and blocks[0][3] == len(actions) and blocks[0][0].deterministic:
        # every step's action, in one block: the arrays ``actions`` holds (a copy: the agent's action is its last row)
        actions = blocks[0][2][:len(actions)].copy()
    has_states = all(s is not None for s in states)
    by_modality = _by_modality(observations, env)  # (T + 1, *shape_m) per modality; shape_m = () for an index
    indices = all(o.ndim == 1 for o in by_modality)
    records = model_records if priors is None else {"prior": priors, **model_records}
    return Trajectory(
        observations=np.stack(by_modality, -1).astype(np.int64) if indices else None,
        actions=np.array(actions, dtype=np.int64),
        qs=qs,
        q_pi=q_pi,
        G=G,
        terms=terms,
        rewards=np.array(rewards, dtype=float),
        states=np.array(states, dtype=np.int64) if has_states else None,
        policies=np.array(agent.policies),
        terminated=bool(terminated),
        truncated=bool(truncated),
        obs_by_modality=by_modality,
        search_info={name: np.stack(values) for name, values in search_info.items()},
        # the prior of an agent over time is one (S_f,) for all policies until its window moves, then (P, S_f)
        records={name: tuple(np.stack(np.broadcast_arrays(*per_index) if name == "prior" else per_index)
                             for per_index in zip(*rows, strict=True)) for name, rows in records.items()},
        start=start,
        carry=Carry(observation=obs, state=states[-1], steps=agent.t, ended=bool(terminated or truncated)),
    )


def _compiled_trajectory(agent: Any, env: AgentWrapper, done: Any, start: int) -> Trajectory:
    """The Trajectory of an episode taken by ``aif.fast.run_episode`` (``done``, an ``aif.fast.Episode``): the
    arrays the step-by-step loop would stack, from the episode's blocks."""
    qs, q_pi, G, terms = _contiguous(done.tables.split(done.out))
    observations = done.observations
    last_state = tuple(done.states[-1].tolist())
    return Trajectory(
        observations=observations.copy(),
        actions=done.actions.copy(),  # (the agent's action is a view of its last row)
        qs=qs,
        q_pi=q_pi,
        G=G,
        terms=terms,
        rewards=done.rewards,
        states=done.states,
        policies=np.array(agent.policies),
        terminated=done.ended,
        truncated=False,
        obs_by_modality=tuple(observations.T.copy()),
        start=start,
        carry=Carry(observation=observations[-1].tolist(), state=last_state, steps=agent.t, ended=done.ended),
    )


def _beliefs(compiled: dict[int, tuple], copied: dict[int, tuple], T: int,
             blocks: list[list]) -> tuple[tuple, np.ndarray, np.ndarray, dict]:
    """``(qs, q_pi, G, terms)`` of ``T`` steps, each stacked over the steps (``Trajectory``'s fields), from the
    steps of the compiled agent (step -> ``(out, tables)`` of ``aif.fast.FastStep.last``), the blocks it wrote them
    in (``FastStep.record``) and the copied steps (step -> ``(qs, q_pi, G, terms)``)."""
    if blocks and len(compiled) == T and sum(b[3] for b in blocks) == T and all(b[0] is blocks[0][0] for b in blocks):
        # every step compiled with one layout, its rows in order: the blocks are the episode
        out = blocks[0][1][:T] if len(blocks) == 1 else np.concatenate([b[1][:b[3]] for b in blocks])
        return _contiguous(blocks[0][0].split(out))
    steps = [copied[t] if t in copied else compiled[t][1].split(compiled[t][0]) for t in range(T)]
    return (tuple(np.array(per_factor) for per_factor in zip(*(s[0] for s in steps), strict=True)),
            np.array([s[1] for s in steps]), np.array([s[2] for s in steps]),
            {name: np.array([s[3][name] for s in steps]) for name in steps[0][3]} if steps else {})


def _contiguous(split: tuple) -> tuple[tuple, np.ndarray, np.ndarray, dict]:
    """``aif.fast.Tables.split`` of a ``(T, size)`` block as contiguous copies (copies always: with ``T = 1`` a
    field's view is contiguous already, and the agent's arrays are views of the block's last row)."""
    qs, q_pi, G, terms = split
    return tuple(q.copy() for q in qs), q_pi.copy(), G.copy(), {name: v.copy() for name, v in terms.items()}


def _by_modality(observations: list, env: gym.Env) -> tuple[np.ndarray, ...]:
    """The observations ``(T + 1)`` as one array ``(T + 1, *shape_m)`` per modality."""
    if type(env) is AgentWrapper:  # lists of Python ints, one per modality: one conversion
        block = np.array(observations)  # (T + 1, M)
        if block.dtype == np.int64 and block.ndim == 2:
            return tuple(block.T.copy())
    return tuple(np.stack([_copy(o[m]) for o in observations]) for m in range(len(observations[0])))


def _check_search(agent: Any, policy_search: Any) -> None:
    """A ``policy_search`` is a callable."""
    if not callable(policy_search):
        raise StrategyError(f"policy_search must be a function (agent, qs, rng) -> (q_pi, G, info), "
                            f"got {type(policy_search).__name__}")


def _check_record(agent: Any, record: Any) -> tuple[dict[str, list], list | None]:
    """Empty per-step lists for the names in ``record``: model array name -> list, and the priors' list (or
    ``None`` when the prior is not recorded)."""
    if isinstance(record, str) or not isinstance(record, (tuple, list)):
        raise ParameterError(f"record must be a tuple of names from {RECORDS}, got {record!r}")
    names = [check_choice(name, "record", RECORDS) for name in record]
    if len(set(names)) != len(names):
        raise ParameterError(f"record names a quantity twice: {record!r}")
    for name in names:
        if name != "prior" and getattr(agent.model, name, None) is None:
            raise ParameterError(f"record {name!r}: the agent's model has no {name}"
                                 f"{' (Dirichlet counts)' if name.startswith('p') else ''}")
    return {name: [] for name in names if name != "prior"}, [] if "prior" in names else None


def _check_resume(agent: Any, resume: Any, rng: Any, seed: Any, options: Any) -> None:
    """``resume`` is a carry of an episode that has not ended, for an agent as the rollout left it."""
    if not isinstance(resume, Carry):
        raise StrategyError(f"resume must be a Trajectory's carry (aif.rollout.Carry), got {type(resume).__name__}")
    if resume.ended:
        raise CallOrderError(f"resume: the episode ended at step {resume.steps} (terminated or truncated); start a "
                             "new one without resume")
    given = [name for name, value in (("rng", rng), ("seed", seed), ("options", options)) if value is not None]
    if given:
        raise ParameterError(f"{', '.join(given)} given with resume: they are for the environment's reset, and a "
                             "resumed rollout continues the episode without one")
    if agent.t != resume.steps:
        raise CallOrderError(f"resume: the agent has taken {agent.t} steps, but the carry was left after "
                             f"{resume.steps}: resume with the agent (or a copy of it) as that rollout left it")


@atomic
def _search_step(agent: Agent, obs: Any, policy_search: PolicySearch, t: int,
                 first: dict | None) -> tuple[np.ndarray, dict]:
    """``agent.step(obs)`` with ``agent.infer_policies(search=policy_search)``, all or nothing (``atomic``: a
    wrong return leaves the agent as it was before the step). Returns the action and the search's info, whose
    names and shapes must be those of ``first`` (name -> shape at the first step; ``None`` there)."""
    agent.infer_states(obs)
    agent.infer_policies(search=policy_search)
    info = cast(dict, agent.search_info)
    if first is not None and _shapes(info) != first:
        raise ParameterError(f"policy_search at step {t} returned info of names and shapes {_shapes(info)}, but "
                             f"{first} at the first step: the same at every step")
    return agent.sample_action(), info


def _shapes(info: dict) -> dict:
    """name -> shape of each array of ``info``."""
    return {name: v.shape for name, v in info.items()}


def _copy(x: Any) -> np.ndarray:
    """A NumPy copy of an array or a CPU tensor (``np.asarray`` first: ``np.array(tensor)`` passes ``copy=`` to
    ``Tensor.__array__``, which NumPy 2 warns about for torch versions whose ``__array__`` has no ``copy``)."""
    return np.asarray(x).copy()


def as_agent_env(env: gym.Env, model: Any) -> gym.Env:
    """``env`` wrapped in ``AgentWrapper.for_model(env, model)``, unless it is an ``AgentWrapper`` or a wrapper
    around one (e.g. ``NoisyGridImages``, which shows the wrapped grid's cells as images): then it already
    takes the agent's actions, and its observations are the agent's."""
    inner = env
    while isinstance(inner, gym.Wrapper):
        if isinstance(inner, AgentWrapper):
            return env
        inner = inner.env
    return AgentWrapper.for_model(env, model)
