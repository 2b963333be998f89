"""Whole episodes in compiled calls (``aif.fast.run_episode``, taken by ``aif.rollout``): the agent's compiled step
and the environment's, in one loop. Everything must be what the step-by-step loop gives, to the bit: the
Trajectory, the agent and the environment after it, and the environment's generator."""

import copy
import dataclasses

import numpy as np
import pytest

import aif
from aif import fast
from aif.envs import (
    Bandit,
    CueChaining,
    ExploreExploit,
    GeneralizedTMaze,
    GraphWorld,
    GridWorld,
    PymdpTMaze,
    RandomDotMotion,
    SceneConstruction,
    SimplifiedTMaze,
    TMaze,
)
from aif.envs.pomdp import POMDPEnv
from aif.errors import ObservationError, ParameterError, StrategyError
from aif.rollout import Trajectory, as_agent_env

pytest.importorskip("numba")

WALLS = ((1, 1), (1, 2), (1, 3), (3, 1), (3, 2), (3, 3))


pytestmark = pytest.mark.usefixtures("compiled_kernel")


@pytest.fixture
def episodes(monkeypatch):
    """Counts the compiled episodes run."""
    calls = []
    run = fast.run_episode
    monkeypatch.setattr(fast, "run_episode", lambda *a, **k: calls.append(1) or run(*a, **k))
    return calls


def assert_same(a, b, where=""):
    """Equal to the bit, with the same types, dtypes and shapes, through dicts, lists and tuples."""
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, strict=True, err_msg=where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def assert_same_run(first, second):
    """Two ``(trajectory, agent, env)``: the same Trajectory, agent arrays, environment and generator."""
    (t1, a1, e1), (t2, a2, e2) = first, second
    for f in dataclasses.fields(Trajectory):
        x, y = getattr(t1, f.name), getattr(t2, f.name)
        if f.name == "carry":
            assert_same(dataclasses.asdict(x), dataclasses.asdict(y), "carry")
        else:
            assert_same(x, y, f.name)
    for name in ("qs", "q_pi", "G", "terms", "action", "prior", "t"):
        assert_same(getattr(a1, name), getattr(a2, name), f"agent.{name}")
    assert_same(e1.state, e2.state, "env.state")
    assert_same(e1.obs, e2.obs, "env.obs")
    assert e1.np_random.bit_generator.state == e2.np_random.bit_generator.state


def both(monkeypatch, make_env, make_agent, steps, **kwargs):
    """``aif.rollout`` step by step, then with compiled episodes, on fresh copies."""
    runs = []
    for compiled in (False, True):
        monkeypatch.setattr(fast, "EPISODES", compiled)
        env = make_env()
        agent = make_agent(env)
        runs.append((aif.rollout(agent, env, steps, **{"progress": False, **kwargs}), agent, env))
    return runs


def agent_for(horizon=1, **kwargs):
    return lambda env: aif.Agent(env.generative_model(), policy_horizon=horizon, **kwargs)


TASKS = {
    "T-maze": (TMaze, agent_for(), 300),
    "grid H=1": (lambda: GridWorld((5, 5), start=(0, 0), goals=[(4, 4)], walls=WALLS, terminate_at_goal=False),
                 agent_for(), 700),  # three calls: 64, 256, 380 steps
    "grid H=3": (lambda: GridWorld((5, 5), start=(0, 0), goals=[(4, 4)], walls=WALLS, terminate_at_goal=False),
                 agent_for(3), 100),
    "grid ends at the goal": (lambda: GridWorld((5, 5), start=(0, 0), goals=[(4, 4)], terminate_at_goal=True),
                              agent_for(), 1000),
    "slippery grid": (lambda: GridWorld((4, 4), start=(0, 0), goals=[(3, 3)], slip=0.3, terminate_at_goal=False),
                      agent_for(2), 150),
    "cued goals": (lambda: GridWorld((4, 4), start=(0, 0), goals=[(3, 3), (0, 3)], cue_location=(2, 0)),
                   agent_for(2), 100),
    "exact inference": (TMaze, agent_for(2, inference=aif.Exact()), 20),
}


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("seed", [0, 5])
def test_episode_equals_the_step_by_step_loop(monkeypatch, episodes, task, seed):
    make_env, make_agent, steps = TASKS[task]
    runs = both(monkeypatch, make_env, make_agent, steps, seed=seed)
    assert len(episodes) == 1
    assert_same_run(*runs)
    traj = runs[1][0]
    assert traj.terminated == (task == "grid ends at the goal") and traj.num_steps <= steps
    assert not np.shares_memory(traj.actions, runs[1][1].action)  # the agent's action is a view of the blocks


def test_episode_with_the_episodes_own_arrays_and_options(monkeypatch, episodes):
    """``reset(options={"A": ...})`` gives the episode other arrays (new CDF tables); a condition option."""
    for options in ({"A": TMaze(reward_prob=0.6, cue_validity=0.8).A}, {"condition": 1}):
        runs = both(monkeypatch, TMaze, agent_for(2), 40, seed=3, options=options)
        assert_same_run(*runs)
    assert len(episodes) == 2


def test_resumed_episodes_join_into_one(monkeypatch, episodes):
    """``rollout(n)`` then ``rollout(m, resume=carry)``: the steps of ``rollout(n + m)``, compiled or not."""
    make_env = TASKS["slippery grid"][0]
    runs = both(monkeypatch, make_env, agent_for(2), 90, seed=2)
    env = make_env()
    agent = agent_for(2)(env)
    head = aif.rollout(agent, env, 30, seed=2, progress=False)
    tail = aif.rollout(agent, env, 60, resume=head.carry, progress=False)
    assert_same_run(runs[1], (head.join(tail), agent, env))
    assert_same_run(*runs)
    assert len(episodes) == 3


def test_an_observation_the_agent_cannot_take_raises_as_step_by_step(monkeypatch, episodes):
    """A model with fewer outcomes than the environment shows (a 4x5 grid's agent in a 5x5 grid): the episode
    stops before the step that sees cell 20 or beyond, and the loop's next step raises the NumPy path's error;
    the agent, the environment and its generator are where the step-by-step loop leaves them."""
    outcomes = []
    for compiled in (False, True):
        monkeypatch.setattr(fast, "EPISODES", compiled)
        env = GridWorld((5, 5), start=(0, 0), goals=[(4, 4)], terminate_at_goal=False)
        model = GridWorld((4, 5), start=(0, 0), goals=[(3, 4)]).generative_model()
        model = aif.GenerativeModel(model.A, model.B, C=[np.linspace(0, 4, 20)], D=model.D)
        agent = aif.Agent(model)
        with pytest.raises(ObservationError) as error:
            aif.rollout(agent, env, 50, seed=0, progress=False)
        outcomes.append((str(error.value), agent.t, [q.copy() for q in agent.qs], env.state,
                         env.np_random.bit_generator.state))
    assert len(episodes) == 1 and outcomes[0][1] > 0
    assert_same(outcomes[0][:4], outcomes[1][:4])
    assert outcomes[0][4] == outcomes[1][4]


class Bonus(GridWorld):
    """A reward of its own, without tables of its own: stepped by its methods."""

    def reward(self, state, obs):
        return 2.0


class Tabled(Bonus):
    def reward_tables(self):
        state_reward, outcome_reward, ends = super().reward_tables()
        return np.full_like(state_reward, 2.0), outcome_reward, ends


def test_a_task_whose_reward_is_not_tabled_is_stepped_by_its_methods(monkeypatch, episodes):
    grid = dict(shape=(4, 4), start=(0, 0), goals=[(3, 3)], terminate_at_goal=False)
    runs = both(monkeypatch, lambda: Bonus(**grid), agent_for(), 20, seed=1)
    assert not episodes and (runs[1][0].rewards == 2.0).all()
    env = Bonus(**grid)
    agent = agent_for()(env)
    obs, _ = as_agent_env(env, agent.model).reset(seed=0)
    assert "without its own reward_tables" in fast.episode_reason(agent, as_agent_env(env, agent.model), obs)
    runs = both(monkeypatch, lambda: Tabled(**grid), agent_for(), 20, seed=1)
    assert len(episodes) == 1 and (runs[1][0].rewards == 2.0).all()
    assert_same_run(*runs)


@pytest.mark.parametrize("change", ["instance reward", "stochastic selection", "not reset", "priors recorded"])
def test_episode_reason_names_what_keeps_the_loop_step_by_step(monkeypatch, episodes, change):
    env = TMaze()
    agent = aif.Agent(env.generative_model(), selection=aif.Selection("stochastic") if "stochastic" in change
                      else aif.Selection(), rng=np.random.default_rng(0))
    wrapped = as_agent_env(env, agent.model)
    obs = wrapped.reset(seed=0)[0] if change != "not reset" else [0, 0, 0]
    if change == "instance reward":
        env.reward = lambda state, obs: 5.0
    if change == "priors recorded":
        assert fast.episode_reason(agent, wrapped, obs) is None
        traj = aif.rollout(agent, env, 5, seed=0, progress=False, record=("prior",))
        assert not episodes and len(traj.records["prior"][0]) == 5
        return
    why = fast.episode_reason(agent, wrapped, obs)
    assert why is not None and {"instance reward": "replaces", "stochastic selection": "stochastic",
                                "not reset": "not reset"}[change] in why
    if change != "not reset":
        aif.rollout(agent, env, 5, seed=0, progress=False)
        assert not episodes


def test_run_episode_refuses_what_it_cannot_run():
    env = TMaze()
    agent = aif.Agent(env.generative_model(), selection=aif.Selection("stochastic"), rng=np.random.default_rng(0))
    wrapped = as_agent_env(env, agent.model)
    obs = wrapped.reset(seed=0)[0]
    with pytest.raises(StrategyError, match="stochastic action selection"):
        fast.run_episode(agent, wrapped, obs, 5)
    agent = aif.Agent(env.generative_model())
    for steps in (0, 2.0, True):
        with pytest.raises(ParameterError, match="steps must be an integer"):
            fast.run_episode(agent, wrapped, obs, steps)
    assert agent.t == 0 and env.state is not None


def test_progress_bar_over_a_compiled_episode(monkeypatch, episodes, capsys):
    runs = both(monkeypatch, TMaze, agent_for(), 600, seed=0, progress=None)  # by default a bar from 500 steps
    assert_same_run(*runs)
    assert "rollout" in capsys.readouterr().err and len(episodes) == 1


OTHER_TASKS = {
    "bandit": (lambda: Bandit([0.8, 0.3]), 60),
    "explore-exploit": (ExploreExploit, 5),
    "explore-exploit, end state": (lambda: ExploreExploit(end_state=True), 5),
    "generalized T-maze": (GeneralizedTMaze, 12),
    "graph world": (lambda: GraphWorld([(0, 1), (1, 2), (2, 3), (3, 0)], object_location=2), 30),
    "pymdp T-maze": (PymdpTMaze, 20),
    "simplified T-maze": (SimplifiedTMaze, 20),
    "cue chaining": (CueChaining, 15),
    "scene construction": (SceneConstruction, 12),
    "random dot motion": (RandomDotMotion, 12),
}


@pytest.mark.parametrize("task", list(OTHER_TASKS))
def test_every_task_of_aif_envs_runs_compiled_episodes(monkeypatch, episodes, task):
    make_env, steps = OTHER_TASKS[task]
    runs = both(monkeypatch, make_env, lambda env: aif.Agent(env.generative_model()), steps, seed=1)
    assert len(episodes) == 1
    assert_same_run(*runs)


REWARD_TASKS = {
    **{name: make for name, (make, _) in OTHER_TASKS.items()},
    "T-maze": TMaze,
    "grid": lambda: GridWorld((3, 4), goals=[(2, 3)], walls=[(1, 1)]),
    "grid ending at the goal": lambda: GridWorld((3, 3), goals=[(0, 2)], terminate_at_goal=True),
    "cued goals": lambda: GridWorld((3, 3), goals=[(2, 2), (0, 2)], cue_location=(1, 0), terminate_at_goal=True),
    "POMDPEnv": lambda: POMDPEnv(TMaze().A, TMaze().B, TMaze().D),
}


@pytest.mark.parametrize("task", list(REWARD_TASKS))
def test_reward_tables_are_reward_and_terminal(task):
    """``reward_tables`` against ``reward`` and ``terminal`` at every joint state and every outcome combination."""
    env = REWARD_TASKS[task]()
    state_reward, outcome_reward, ends = env.reward_tables()
    if np.prod(env.num_obs) <= 200:  # every combination of outcomes
        grids = np.meshgrid(*[np.arange(n) for n in env.num_obs], indexing="ij")
        outcomes = np.array(grids).reshape(len(env.num_obs), -1)
    else:  # every outcome of every modality, with random outcomes of the others
        outcomes = np.random.default_rng(0).integers(0, env.num_obs, (4 * max(env.num_obs), len(env.num_obs))).T
        for m, n in enumerate(env.num_obs):
            outcomes[m, :n] = np.arange(n)
    for j in range(int(np.prod(env.num_states))):
        state = tuple(int(s) for s in np.unravel_index(j, env.num_states))
        assert bool(ends[j]) == env.terminal(state)
        for obs in outcomes.T:
            table = state_reward[j]
            for m, o in enumerate(obs):
                table += outcome_reward[m][o]
            assert table == env.reward(state, obs)


def test_reward_tables_of_the_wrong_shape_are_refused():
    class Wrong(TMaze):
        def reward_tables(self):
            state_reward, outcome_reward, ends = super().reward_tables()
            return state_reward[:-1], outcome_reward, ends

    env = Wrong()
    env.reset(seed=0)
    with pytest.raises(ParameterError, match=r"reward_tables\(\) returned arrays of shapes"):
        fast.EnvTables(env)


def test_a_deep_copy_branches_a_compiled_episode(monkeypatch, episodes):
    """``copy.deepcopy`` of the agent and the environment mid-episode: both branches continue as the original."""
    env = TMaze()
    agent = agent_for(2)(env)
    head = aif.rollout(agent, env, 10, seed=4, progress=False)
    twin_agent, twin_env = copy.deepcopy(agent), copy.deepcopy(env)
    tail = aif.rollout(agent, env, 15, resume=head.carry, progress=False)
    branch = aif.rollout(twin_agent, twin_env, 15, resume=copy.deepcopy(head.carry), progress=False)
    assert_same_run((tail, agent, env), (branch, twin_agent, twin_env))
    assert len(episodes) == 3
