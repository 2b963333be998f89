"""pymdp 1.0's environments in ``aif.envs``: their arrays equal pymdp's, their agents are the demos', the
``POMDPEnv`` features they brought (env params at reset, ``step(None)``, rendering), and the side-by-side example.

pymdp 1.0 is imported inside the tests that use it, in float64 (``jax64``): importing ``pymdp.envs`` rotates image
assets for seconds, and other test files pay that once per process too.
"""

import importlib.util
import itertools
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from _reference import jax64
from gymnasium.utils.env_checker import check_env

import aif
from aif.envs import (
    GeneralizedTMaze,
    GraphWorld,
    POMDPEnv,
    PymdpTMaze,
    SimplifiedTMaze,
    TMaze,
    connected_clusters,
    knapsack,
    maze_matrix,
)
from aif.errors import CallOrderError, ModelError, ParameterError, PolicyError

matplotlib.use("Agg")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pymdp_envs.py"

TMAZE_SETTINGS = [  # pymdp's defaults, then its tests' and demos' variations
    {},
    dict(reward_probability=0.8, punishment_probability=0.3, cue_validity=0.7, reward_condition=1),
    dict(reward_probability=0.9, dependent_outcomes=True, reward_condition=0, cue_validity=0.6),
    dict(reward_probability=1.0, dependent_outcomes=True, reward_condition=0, cue_validity=0.95),
]
RENDERED = {
    "simplified-tmaze": lambda mode=None: SimplifiedTMaze(render_mode=mode),
    "pymdp-tmaze": lambda mode=None: PymdpTMaze(reward_probability=0.8, render_mode=mode),
    "generalized-tmaze": lambda mode=None: GeneralizedTMaze(render_mode=mode),
    "generalized-tmaze-small": lambda mode=None: GeneralizedTMaze(maze_matrix(small=True), [1, 0], render_mode=mode),
    "graph-world": lambda mode=None: GraphWorld(connected_clusters(3, 2)[0], render_mode=mode),
}


def max_diff(ours, theirs):
    """Largest |ours - theirs| over two lists of arrays of equal shapes (pymdp's in float64, or integers)."""
    worst = 0.0
    for x, y in zip(ours, theirs, strict=True):
        y = np.asarray(y)
        assert x.shape == y.shape and (y.dtype == np.float64 or np.issubdtype(y.dtype, np.integer))
        worst = max(worst, float(np.abs(x - y).max()))
    return worst


def same_process(env, ref):
    assert env.A_dependencies == ref.A_dependencies and env.B_dependencies == ref.B_dependencies
    return max_diff(env.A + env.B + env.D, ref.A + ref.B + ref.D)


# --------------------------------------------------------------------------------------------------------------
# The arrays are pymdp's

@pytest.mark.parametrize("settings", TMAZE_SETTINGS)
def test_tmaze_arrays_equal_pymdp_1(settings):
    jax64()
    from pymdp.envs.tmaze import SimplifiedTMaze as TheirSimplified
    from pymdp.envs.tmaze import TMaze as TheirTMaze

    assert same_process(SimplifiedTMaze(**settings), TheirSimplified(**settings)) == 0.0
    assert same_process(PymdpTMaze(**settings), TheirTMaze(**settings)) == 0.0


def test_generalized_tmaze_arrays_equal_pymdp_1():
    jax64()
    import jax.random as jr
    from pymdp.envs.generalized_tmaze import generate_A, generate_B, generate_D, get_maze_matrix, parse_maze

    def theirs(maze, key):
        info = parse_maze(maze, key)
        (A, A_deps), (B, B_deps) = generate_A(info), generate_B(info)
        return info, A, A_deps, B, B_deps, generate_D(info)

    np.testing.assert_array_equal(maze_matrix(small=True), get_maze_matrix(small=True))
    np.testing.assert_array_equal(maze_matrix(), get_maze_matrix())
    info, A, A_deps, B, B_deps, D = theirs(get_maze_matrix(), jr.PRNGKey(1))
    ours = GeneralizedTMaze(reward_locations=np.asarray(info["reward_locations"]))
    assert ours.A_dependencies == A_deps and ours.B_dependencies == B_deps
    assert max_diff(ours.A + ours.B + ours.D, A + B + D) == 0.0
    # With walls, only the columns of B[0] for wall cells differ (pymdp walks out of a wall; unreachable).
    maze = get_maze_matrix()
    maze[[0, 1, 3], [2, 2, 3]] = 2
    info, A, _, B, _, D = theirs(maze, jr.PRNGKey(2))
    ours = GeneralizedTMaze(maze, reward_locations=np.asarray(info["reward_locations"]))
    assert max_diff(ours.A + ours.B[1:] + ours.D, A + B[1:] + D) == 0.0
    walls = [ours.index(cell) for cell in ours.walls]
    free = np.setdiff1d(np.arange(25), walls)
    np.testing.assert_array_equal(ours.B[0][:, free], np.asarray(B[0])[:, free])
    np.testing.assert_array_equal(ours.B[0][:, walls], np.broadcast_to(np.eye(25)[:, walls, None], (25, 3, 5)))


def test_graph_world_arrays_equal_pymdp_1():
    jax64()
    import networkx as nx
    from pymdp.envs.graph_worlds import GraphEnv, generate_connected_clusters

    for size, links in ((2, 2), (3, 2)):
        graph, names = generate_connected_clusters(size, links)
        edges, our_names = connected_clusters(size, links)
        assert edges == list(graph.edges) and our_names == names["locations"]
    for graph in (generate_connected_clusters(2, 2)[0], nx.gnp_random_graph(5, 0.5, seed=1)):
        L = graph.number_of_nodes()
        # pymdp's builders do not use the instance; calling them skips its random draws of the locations
        (A, A_deps), (B, B_deps) = GraphEnv.generate_A(None, graph), GraphEnv.generate_B(None, graph)
        for obj, agent in ((0, 1), (L, L - 1)):
            D = GraphEnv.generate_D(None, graph, obj, agent)
            ours = GraphWorld(list(graph.edges), L, object_location=obj, agent_location=agent)
            assert ours.A_dependencies == A_deps and ours.B_dependencies == B_deps
            assert max_diff(ours.A + ours.B + ours.D, A + B + D) == 0.0


def test_knapsack_is_the_model_of_pymdp_1_demo():
    """examples/envs/knapsack_demo.ipynb, cell by cell, and the flattening pymdp 1.0's Agent applies to B (one
    joint control axis per factor: ``Agent._flatten_B_action_dims`` reshapes the control axes away). Its q(pi)
    beside pymdp's Agent: ``python examples/pymdp_envs.py --env knapsack`` (1.4e-17; building and compiling that
    Agent takes seconds)."""
    jax64()
    import jax.nn as nn
    from pymdp import distribution

    rng = np.random.default_rng(0)
    n, capacity = 4, 16.0
    weights, values = capacity / n + rng.uniform(0, 5, n), rng.uniform(0, 1, n)
    weights[:2] = [5.0, 11.0]  # a packing exactly at the capacity: within it, in both
    states = {f"s_{i}": {"elements": ["not enclude", "include"], "depends_on": [f"s_{i}"],
                         "controlled_by": [f"a_{i}"]} for i in range(n)}
    states["z"] = {"elements": ["not violated", "violated"], "depends_on": ["z"],
                   "controlled_by": [f"a_{i}" for i in range(n)]}
    theirs = distribution.compile_model({
        "observations": {k: {"elements": v["elements"], "depends_on": [k]} for k, v in states.items()},
        "controls": {f"a_{i}": {"elements": ["not enclude", "include"]} for i in range(n)}, "states": states})
    for a in theirs.A:
        a.data = np.eye(len(a.data))
    for i in range(n):
        b = theirs.B[i].data
        for j in range(b.shape[1]):
            b[:, j] = np.eye(len(b))
        theirs.B[i].data = b
    total = np.sum((np.indices((2,) * n) == 1) * weights.reshape((-1,) + (1,) * n), axis=0)
    exceeded = np.where(total > capacity, 1, 0)
    theirs.B[-1].data = np.stack([np.stack((1 - exceeded, exceeded), axis=0)] * 2, axis=1)
    C = list(nn.softmax(np.stack([np.zeros_like(values), values], axis=-1), axis=-1)) + [np.array([1.0, 0.0])]

    ours = knapsack(weights, values, capacity)
    model = ours.model
    assert model.A_dependencies == [[f] for f in range(n + 1)] == model.B_dependencies
    B = [b.data.reshape(b.data.shape[:2] + (-1,)) for b in theirs.B]  # (S_f, S_f, prod of its controls)
    assert max_diff(model.A + model.B + model.D, [a.data for a in theirs.A] + B + [d.data for d in theirs.D]) == 0.0
    assert max_diff(model.C, C) < 1e-15  # softmax([0, v]): NumPy's and XLA's exp differ in the last bit
    at_capacity = aif.utils.action_to_index([1, 1, 0, 0], [2] * n)  # 5 + 11 = 16: allowed
    assert model.B[-1][0, 0, at_capacity] == 1.0


def test_knapsack_packings_and_the_brute_force_best():
    rng = np.random.default_rng(1)
    for n in (1, 3, 5):
        weights, values, capacity = rng.uniform(1, 6, n), rng.uniform(-0.2, 1, n), 8.0
        problem = knapsack(weights, values, capacity)
        assert problem.policies.shape == (2**n, 1, n + 1)
        for j, bits in enumerate(itertools.product((0, 1), repeat=n)):
            np.testing.assert_array_equal(problem.items(problem.policies[j, 0]), bits)
            assert problem.model.B[-1][1, 0, j] == (np.dot(bits, weights) > capacity)
        feasible = [b for b in itertools.product((0, 1), repeat=n) if np.dot(b, weights) <= capacity]
        best = max(feasible, key=lambda b: np.dot(b, values))
        np.testing.assert_array_equal(problem.best(), best)


# --------------------------------------------------------------------------------------------------------------
# The agents are the demos'

def test_generative_models_are_the_demos_agents():
    # examples/envs/tmaze_demo.ipynb: C[1] = [0, 2, -3], D = [centre, uniform]
    env = PymdpTMaze()
    model = env.generative_model()
    np.testing.assert_array_equal(model.C[1], [0.0, 2.0, -3.0])
    assert not model.C[0].any() and not model.C[2].any()
    np.testing.assert_array_equal(model.D[0], np.eye(5)[0])
    np.testing.assert_array_equal(model.D[1], [0.5, 0.5])
    assert max_diff(model.A + model.B, env.A + env.B) == 0.0
    # its A-learning agent: pA = A + 0.3 on the outcome and cue modalities, A their mean
    learner = env.generative_model(learn_A=True)
    for m in (1, 2):
        np.testing.assert_array_equal(learner.pA[m], env.A[m] + 0.3)
        np.testing.assert_allclose(learner.A[m], learner.pA[m] / learner.pA[m].sum(axis=0), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(learner.A[0], env.A[0])
    # si_tmaze_SIvalidation.ipynb: C[1] = [0, 2, -6], D uniform
    model = SimplifiedTMaze(reward_condition=0).generative_model()
    np.testing.assert_array_equal(model.C[1], [0.0, 2.0, -6.0])
    np.testing.assert_array_equal(model.D[0], np.full(4, 0.25))
    # generalized_tmaze_demo.ipynb: C[-1] = [0, 1, -3] (the last set's outcome only), D uniform
    env = GeneralizedTMaze()
    model = env.generative_model()
    assert model.num_modalities == 7 and model.num_states == [25, 2, 2, 2]
    np.testing.assert_array_equal(model.C[-1], [0.0, 1.0, -3.0])
    assert not any(c.any() for c in model.C[:-1])
    for f, n in enumerate(model.num_states):
        np.testing.assert_array_equal(model.D[f], np.full(n, 1.0 / n))
    # graph_worlds_demo.ipynb: C[1] = [0, 1], D uniform
    model = GraphWorld(connected_clusters(3, 2)[0]).generative_model()
    np.testing.assert_array_equal(model.C[1], [0.0, 1.0])
    np.testing.assert_array_equal(model.D[1], np.full(8, 1.0 / 8))


def test_simplified_tmaze_agent_reads_the_cue_then_takes_the_reward():
    """The SI notebook's vanilla agent (horizon 2, gamma 3): cue first, then the baited arm, in both conditions."""
    for condition in (0, 1):
        env = SimplifiedTMaze(reward_condition=condition)
        agent = aif.Agent.pymdp(env.generative_model(), 2, gamma=3.0)
        trajectory = aif.rollout(agent, env, 3, seed=condition)
        assert trajectory.actions[0, 0] == 3 and list(trajectory.actions[1:, 0]) == [1 + condition] * 2
        assert trajectory.total_reward == 2.0


@pytest.mark.parametrize("name", RENDERED)
def test_check_env_and_the_model_fit_the_environment(name):
    env = RENDERED[name]("rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the one warning check_env gives for any environment not made by gymnasium.make
        warnings.filterwarnings("ignore", message=".*alternative render modes.*spec")
        check_env(env)
    model = aif.check_model(env.generative_model())
    assert model.num_obs == list(env.observation_space.nvec) and model.num_states == env.num_states
    assert model.num_controls == env.num_controls and model.num_controls[0] == env.action_space.n
    assert model.A_dependencies == env.A_dependencies and model.B_dependencies == env.B_dependencies


def test_reset_options_fix_the_hidden_context():
    env = PymdpTMaze()
    for c in (0, 1):
        _, info = env.reset(seed=0, options={"reward_condition": c})
        assert info["state"] == (0, c) and env.condition == c
    env = GeneralizedTMaze(maze_matrix(small=True))
    for locations in ([0, 1], [1, 0]):
        _, info = env.reset(seed=0, options={"reward_locations": locations})
        assert info["state"][1:] == tuple(locations)
    env = GraphWorld(connected_clusters(2, 2)[0])
    obs, info = env.reset(seed=0, options={"agent_location": 2, "object_location": 2})
    assert info["state"] == (2, 2) and obs.tolist() == [2, 1]
    obs, reward, *_ = env.step(3)  # 2 - 3 is an edge: the agent leaves the object
    assert obs.tolist() == [3, 0] and reward == 0.0
    obs, reward, *_ = env.step(0)  # 3 - 0 is not: it stays
    assert obs.tolist() == [3, 0]
    obs, reward, *_ = env.step(2)
    assert obs.tolist() == [2, 1] and reward == 1.0


def test_dynamics_follow_pymdp_layouts():
    env = PymdpTMaze(reward_condition=1, cue_validity=1.0)
    obs, _ = env.reset(seed=0)
    for action, place in ((2, 0), (3, 3), (1, 3), (0, 0), (4, 4), (2, 2)):  # arms only from the middle
        obs, reward, *_ = env.step(action)
        assert obs[0] == place
    assert obs[1] == 1 and reward == 1.0  # reward in the right arm under condition 1
    env.reset(seed=0)
    env.step(3)
    assert env.step(3)[0][2] == 2  # the cue says "right"
    env = SimplifiedTMaze(reward_condition=0, cue_validity=1.0)
    env.reset(seed=0)
    assert env.step(3)[0].tolist() == [3, 0]  # the cue location seen as "cued left"
    obs, reward, *_ = env.step(2)
    assert obs.tolist() == [2, 2] and reward == -1.0  # punishment in the unbaited arm
    env = GeneralizedTMaze(maze_matrix(small=True), reward_locations=[0, 1])
    obs, _ = env.reset(seed=0)
    assert obs.tolist() == [7, 0, 0, 0, 0]  # start (2, 1)
    obs, *_ = env.step(3)  # right, onto set 1's cue: "reward at its second cell"
    assert obs.tolist() == [8, 0, 2, 0, 0]
    obs, reward, *_ = env.step(0)  # up to (1, 2), set 1's first cell: punishment under location 1
    assert obs.tolist() == [5, 0, 0, 0, 2] and reward == -1.0


@pytest.mark.parametrize("bad", [
    lambda: SimplifiedTMaze(cue_validity=1.5),
    lambda: PymdpTMaze(reward_condition=2),
    lambda: GeneralizedTMaze(np.array([[1, 0, 3]])),  # a cue without its reward cells
    lambda: GeneralizedTMaze(np.array([[1, 3, 4, 5, 4]])),  # two cells with one code
    lambda: GeneralizedTMaze(np.array([[3, 4], [5, 0]])),  # no start
    lambda: GeneralizedTMaze(reward_locations=[0, 1]),  # three sets
    lambda: GraphWorld([(0, 1), (1, -2)]),
    lambda: GraphWorld([(0, 1), (1, 5)], num_locations=3),
    lambda: GraphWorld([(0, 1)], object_location=3),
    lambda: GraphWorld([(0, 1)], positions=np.zeros((3, 2))),
    lambda: knapsack([1.0, 2.0], [1.0], 3.0),
    lambda: knapsack([1.0, -2.0], [1.0, 1.0], 3.0),
    lambda: knapsack(np.ones(21), np.ones(21), 3.0),
    lambda: PymdpTMaze().reset(options={"reward_condition": 2}),
    lambda: GraphWorld([(0, 1)]).reset(options={"object_location": 3}),
])
def test_bad_settings_raise(bad):
    with pytest.raises(ParameterError):
        bad()


# --------------------------------------------------------------------------------------------------------------
# POMDPEnv: env params at reset, step(None), rendering

def test_reset_arrays_replace_the_process_for_one_episode():
    env = POMDPEnv([np.eye(3)], [np.eye(3)[:, :, None].repeat(2, axis=2)], [np.eye(3)[0]])
    cycle = np.eye(3)[:, [1, 2, 0]]  # s -> s + 1
    B = [np.stack([np.eye(3), cycle], axis=2)]
    obs, info = env.reset(seed=0, options={"D": [np.eye(3)[2]], "B": B})
    assert info["state"] == (2,) and env.step(1)[0].tolist() == [0]
    A = [np.eye(3)[:, [2, 0, 1]]]  # state s seen as s - 1
    obs, _ = env.reset(seed=0, options={"A": A})
    assert obs.tolist() == [2] and env.step(1)[0].tolist() == [2]  # the built B again: no move
    obs, _ = env.reset(seed=0)  # the built arrays again
    assert obs.tolist() == [0] and env.step(1)[0].tolist() == [0]
    # pymdp's env_params: the same world as an environment built on those arrays
    twin = POMDPEnv(A, B, [np.full(3, 1 / 3)])
    ours = [env.reset(seed=7, options={"A": A, "B": B, "D": [np.full(3, 1 / 3)]})[0].tolist()]
    theirs = [twin.reset(seed=7)[0].tolist()]
    ours += [env.step(a)[0].tolist() for a in (1, 0, 1, 1)]
    theirs += [twin.step(a)[0].tolist() for a in (1, 0, 1, 1)]
    assert ours == theirs
    # the subclass' own options still apply over replaced arrays
    maze = PymdpTMaze()
    _, info = maze.reset(seed=0, options={"D": [np.eye(5)[3], np.array([1.0, 0.0])], "reward_condition": 1})
    assert info["state"] == (3, 1)


@pytest.mark.parametrize("options, match", [
    ({"D": [np.array([0.5, 0.4, 0.1, 0.0])]}, r"reset options \['D'\]: D\[0\] has shape \(4,\)"),
    ({"D": [np.array([0.5, 0.4, 0.2])]}, "reset options.*D"),
    ({"B": [np.eye(3)[:, :, None]]}, r"options\['B'\] has shapes"),
    ({"A": np.eye(3)}, "options"),
    ({"A": [np.eye(3) * -1]}, "negative"),
])
def test_reset_arrays_are_checked(options, match):
    env = POMDPEnv([np.eye(3)], [np.eye(3)[:, :, None].repeat(2, axis=2)], [np.eye(3)[0]])
    with pytest.raises(ModelError, match=match):
        env.reset(seed=0, options=options)


def test_step_without_an_action_observes_the_same_state_again():
    """pymdp 1.0's test_env: stepping with action=None keeps the state unchanged and draws a new observation."""
    model = aif.random_model(np.random.default_rng(0), [3, 2], [4], [2, 1])
    env = POMDPEnv(model.A, model.B, model.D)
    env.reset(seed=3)
    for _ in range(5):
        state = env.state
        obs, _, _, _, info = env.step(None)
        assert info["state"] == state
        assert model.A[0][(obs[0],) + state] > 0  # an outcome the kept state can produce
    column = model.A[0][(slice(None),) + env.state]
    seen = {int(env.step(None)[0][0]) for _ in range(200)}  # draws from the kept state's column of A
    assert seen <= set(np.flatnonzero(column > 0)) and set(np.flatnonzero(column > 0.05)) <= seen
    env.step(1)  # an action still moves the state under B
    with pytest.raises(PolicyError, match="or None"):
        env.step(2)


def test_rendering():
    for name, make in RENDERED.items():
        env = make("rgb_array")
        with pytest.raises(CallOrderError):
            env.render()
        env.reset(seed=0)
        env.step(env.action_space.n - 1)
        image = env.render()
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.std() > 0
    env = PymdpTMaze(render_mode="rgb_array")
    env.reset(seed=0)
    assert not np.array_equal(env.render(), (env.step(3), env.render())[1])  # the agent moved to the cue
    quiet = SimplifiedTMaze()
    quiet.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert quiet.render() is None
    assert TMaze.metadata["render_modes"] == []  # an environment that does not draw itself refuses a mode
    with pytest.raises(ParameterError, match="render_mode"):
        POMDPEnv([np.eye(2)], [np.eye(2)[:, :, None]], [np.eye(2)[0]], render_mode="rgb_array")


def test_human_rendering_draws_in_a_window():
    import matplotlib.pyplot as plt

    env = GraphWorld(connected_clusters(2, 2)[0], render_mode="human")
    env.metadata = {**env.metadata, "render_fps": 1000}  # no pause worth waiting for
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Agg cannot show a window
        env.reset(seed=0)
        env.step(1)
    assert plt.fignum_exists(env._window.number) and env._window.axes
    env.close()
    assert env._window is None


# --------------------------------------------------------------------------------------------------------------
# The example

@pytest.mark.slow
def test_example_runs_both_libraries_side_by_side(capsys):
    """``examples/pymdp_envs.py --quick`` on one environment. Its time is pymdp 1.0 compiling its rollout (seconds,
    whatever the model's size): the other environments and the knapsack run the same code."""
    spec = importlib.util.spec_from_file_location("pymdp_envs_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # its dataclass looks its module up
    spec.loader.exec_module(example)
    example.main(["--quick", "--env", "simplified-tmaze"])
    out = capsys.readouterr().out
    print(out)
    row = next(line for line in out.splitlines() if line.startswith("| simplified-tmaze"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[4]) < 1e-12  # max |q(pi) aif - pymdp|
    assert cells[5] == "8/8"  # the same actions at every step
    assert cells[6] == cells[7] == "+2.00"  # cue, then the reward twice, in both
