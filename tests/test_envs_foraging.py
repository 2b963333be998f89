"""pymdp.legacy's epistemic-foraging tasks (``aif.envs.visual_foraging``): the Gymnasium contract; the process and
the generative model against ``pymdp.legacy.envs.visual_foraging`` entry by entry; ``aif.Agent.pymdp_legacy``
against legacy's ``Agent`` in closed loops on both tasks.

pymdp's repository has no demo that runs an agent on these tasks, so the agents use legacy's generative-model
functions with legacy's ``Agent`` defaults (deterministic marginal selection, gamma = alpha = 16) and its default
``policy_len=1``, plus longer horizons that legacy can still enumerate quickly.
"""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.utils.passive_env_checker import env_render_passive_checker

import aif
from aif.envs.visual_foraging import (
    BREAKING,
    CORRECT,
    LOCATION_NAMES,
    MOTION_NAMES,
    SAMPLING,
    SAMPLING_NAMES,
    SCENE_NAMES,
    SCENE_STATES,
    WHAT_NAMES,
    RandomDotMotion,
    SceneConstruction,
)
from aif.errors import ParameterError
from tests._reference import obj

ENVS = {
    "scene": lambda: SceneConstruction(),
    "scene-fixed": lambda: SceneConstruction("DOWN_LEFT", (2, 4)),
    "rdm": lambda: RandomDotMotion(),
    "rdm-fixed": lambda: RandomDotMotion(2.5, "UP", "breaking"),
}


@pytest.mark.parametrize("name", ENVS)
def test_check_env_passes_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(ENVS[name](), skip_render_check=True)


def _assert_arrays_equal(model, legacy_parameters):
    """A, B, C, D of an aif model equal (exactly, same shapes) to legacy's ``parameters`` dict."""
    for name in "ABCD":
        ours, theirs = getattr(model, name), legacy_parameters[name]
        assert len(ours) == len(theirs), name
        for i, (x, y) in enumerate(zip(ours, theirs, strict=True)):
            assert x.shape == y.shape, f"{name}[{i}]"
            np.testing.assert_array_equal(x, y, err_msg=f"{name}[{i}]")


# --- scene construction -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs", [
    ({}, {}),
    (dict(preference_steps=4, correct_preference=3.0, incorrect_preference=-1.5, urgency=-0.5),
     dict(T=4, reward=3.0, punishment=-1.5, urgency=-0.5)),
    (dict(preference_steps=9, urgency=-7.0), dict(T=9, urgency=-7.0)),
    (dict(preference_steps=1, correct_preference=0.25), dict(T=1, reward=0.25)),
])
def test_scene_construction_model_equals_legacy(ours, theirs):
    from pymdp.legacy.envs.visual_foraging import initialize_scene_construction_GM

    parameters, mapping, dimensions = initialize_scene_construction_GM(**theirs)
    model = SceneConstruction().generative_model(**ours)
    _assert_arrays_equal(model, parameters)
    assert list(SCENE_NAMES) == mapping["scene_names"] and list(WHAT_NAMES) == mapping["what_obs_names"]
    assert list(LOCATION_NAMES) == mapping["where_obs_names"] == mapping["action_names"]
    assert model.num_states == dimensions["num_states"] and model.num_obs == dimensions["num_obs"]
    # legacy lists a third control factor that no B has: [1, 9, 1]
    assert model.num_controls == dimensions["num_controls"][:2]


def test_scene_construction_process_equals_legacy_environment():
    """Every scene and configuration, every location in turn: the same outcomes as legacy's environment, and the
    process arrays are the model's (legacy's environment is the model's A and B, played out)."""
    from pymdp.legacy.envs.visual_foraging import SceneConstruction as LegacySceneConstruction

    env = SceneConstruction()
    model = env.generative_model()
    for x, y in zip(env.A + env.B + env.D, model.A + model.B + model.D, strict=True):
        np.testing.assert_array_equal(x, y)
    actions = [*range(len(LOCATION_NAMES)), 0, 8, 1]
    for scene, config in SCENE_STATES:
        legacy = LegacySceneConstruction(scene_name=scene, config=f"{config[0]}_{config[1]}")
        obs, info = env.reset(seed=0, options={"scene": scene, "config": config})
        assert (env.scene, env.config) == (scene, config)
        np.testing.assert_array_equal(env.visual_array, legacy.vis_array)
        assert [WHAT_NAMES[obs[0]], LOCATION_NAMES[obs[1]]] == list(legacy.reset())
        for a in actions:
            obs, reward, terminated, truncated, _ = env.step(a)
            what, where = legacy.step(LOCATION_NAMES[a])
            assert [WHAT_NAMES[obs[0]], LOCATION_NAMES[obs[1]]] == [what, where], (scene, config, a)
            assert reward == {"correct!": 1.0, "incorrect!": -1.0}.get(what, 0.0)
            assert not terminated and not truncated


def test_scene_construction_draws_what_is_not_fixed():
    scenes = {SceneConstruction().reset(seed=s)[1]["state"][0] for s in range(60)}
    assert len(scenes) > 30  # uniform over 48
    env = SceneConstruction(scene="LEFT_UP")
    drawn = {SCENE_STATES[env.reset(seed=s)[1]["state"][0]] for s in range(60)}
    assert {scene for scene, _ in drawn} == {"LEFT_UP"} and len(drawn) > 6
    env = SceneConstruction(config=(4, 1))
    drawn = {SCENE_STATES[env.reset(seed=s)[1]["state"][0]] for s in range(40)}
    assert {config for _, config in drawn} == {(4, 1)} and len(drawn) == 4
    env.reset(seed=0, options={"scene": "UP_RIGHT", "config": [2, 3]})
    assert (env.scene, env.config) == ("UP_RIGHT", (2, 3))


# --- random-dot motion --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("precision, break_reward, T", [(1.0, 0.001, 16), (0.5, 0.2, 3), (4.0, 0.0, 16),
                                                       (0.0, -1.0, 1)])
def test_random_dot_motion_model_equals_legacy(precision, break_reward, T):
    from pymdp.legacy.envs.visual_foraging import initialize_RDM_GM

    parameters, mapping, dimensions = initialize_RDM_GM(T=T, A_precis=precision, break_reward=break_reward)
    _assert_arrays_equal(RandomDotMotion(precision).generative_model(break_reward=break_reward), parameters)
    # the agent's precision may differ from the environment's
    _assert_arrays_equal(RandomDotMotion(9.0).generative_model(precision, break_reward), parameters)
    assert list(MOTION_NAMES) == mapping["motion_dir"] and list(SAMPLING_NAMES) == mapping["where_obs_names"]
    assert [dimensions[k] for k in ("num_states", "num_obs", "num_controls")] == [[5, 2], [5, 2], [1, 2]]


@pytest.mark.parametrize("precision", [0.0, 1.0, 2.5])
def test_random_dot_motion_process_equals_legacy_environment(precision):
    """The motion seen while sampling is legacy's ``dot_dist`` exactly; breaking off sees nothing; the action
    sets the sampling state (legacy's ``step``); an unfixed direction and sampling state are drawn uniformly."""
    from pymdp.legacy.envs.visual_foraging import RandomDotMotion as LegacyRandomDotMotion

    env = RandomDotMotion(precision)
    np.testing.assert_array_equal(env.D[0], np.full(5, 0.2))
    np.testing.assert_array_equal(env.D[1], np.full(2, 0.5))
    for d, direction in enumerate(MOTION_NAMES):
        legacy = LegacyRandomDotMotion(precision, dot_direction=direction, sampling_state="sample")
        np.testing.assert_array_equal(env.A[0][:, d, SAMPLING], legacy.dot_dist)
        np.testing.assert_array_equal(env.A[0][:, d, BREAKING], np.eye(5)[0])
        env.reset(seed=d, options={"direction": direction, "sampling_state": "breaking"})
        assert env.direction == direction and env.coherence == legacy.coherence
        assert env.step(0)[0][1] == SAMPLING and env.step(1)[0].tolist() == [0, BREAKING]  # legacy: 'null'
    env = RandomDotMotion(precision, "DOWN", "sampling")
    env.reset(seed=5)
    seen = np.array([env.step(0)[0] for _ in range(3000)])
    assert (seen[:, 1] == SAMPLING).all()
    frequencies = np.bincount(seen[:, 0], minlength=5) / len(seen)
    np.testing.assert_allclose(frequencies, env.A[0][:, 3, SAMPLING], atol=0.03)


# --- aif.Agent against pymdp.legacy's Agent -----------------------------------------------------------------------

def _closed_loop(env, model, horizon, steps, options, seed, policies=None):
    """Run legacy's Agent and ``aif.Agent.pymdp_legacy`` on the same observations of ``env`` (deterministic,
    marginal selection, as legacy's defaults; all policies of ``horizon`` unless ``policies`` are given). Returns
    the largest difference in q(s), q(pi), G and the action probabilities over all steps, and the observations.

    Where legacy's action marginals tie (within its 1e-8), legacy picks at random and aif the first: the test
    checks aif's action is among legacy's best and tells legacy's agent that it was taken.
    """
    from pymdp.legacy import control
    from pymdp.legacy.agent import Agent as LegacyAgent

    legacy = LegacyAgent(A=obj(model.A), B=obj(model.B), C=obj(model.C), D=obj(model.D), policy_len=horizon,
                         policies=None if policies is None else list(policies))
    agent = aif.Agent.pymdp_legacy(model, policy_horizon=horizon, policies=policies)
    np.testing.assert_array_equal(agent.policies, np.stack(legacy.policies))
    f = env.control_factor
    obs, _ = env.reset(seed=seed, options=options)
    worst, seen = 0.0, []
    for t in range(steps):
        o = [int(x) for x in obs]
        seen.append(o)
        qs_ref = legacy.infer_states(o)
        q_pi_ref, neg_efe = legacy.infer_policies()
        marginals = control._sample_action_test(q_pi_ref, legacy.policies, legacy.num_controls)[1]
        p_ref = control._sample_action_test(q_pi_ref, legacy.policies, legacy.num_controls, "stochastic",
                                            legacy.alpha)[1]
        action = agent.step(o)
        p = aif.action_probabilities(agent.q_pi, agent.policies, "stochastic", agent.alpha, "marginal",
                                     model.num_controls)
        diffs = [np.abs(agent.q_pi - q_pi_ref).max(), np.abs(agent.G + neg_efe).max()]
        diffs += [np.abs(x - y).max() for x, y in zip(agent.qs, qs_ref, strict=True)]
        diffs += [np.abs(x - y).max() for x, y in zip(p, p_ref, strict=True)]
        worst = max(worst, *diffs)
        best = np.flatnonzero(marginals[f] >= marginals[f].max() - 1e-8)
        assert action[f] in best, f"step {t}: aif's action {action[f]} is not among legacy's best {best}"
        legacy.action = action.astype(float)
        obs, *_ = env.step(int(action[f]))
    return worst, seen


@pytest.mark.parametrize("scene, config", [("DOWN_LEFT", (2, 4)), ("UP_RIGHT", (3, 1))])
def test_scene_construction_agent_matches_legacy_agent(scene, config):
    """legacy's defaults (policy_len 1) with initialize_scene_construction_GM(): the agents agree for 6 steps, and
    the agent looks until it knows the scene, then names it."""
    env = SceneConstruction()
    worst, seen = _closed_loop(env, env.generative_model(), 1, 6, {"scene": scene, "config": config}, 0)
    print(f"scene construction {scene} {config}: max |aif - legacy| over 6 steps {worst:.1e}")
    assert worst < 1e-10
    assert seen[-1] == [CORRECT, LOCATION_NAMES.index(f"choose_{scene}")]


def test_scene_construction_two_step_policies_read_C_by_step_as_legacy():
    """Two-step policies (a quadrant, then a quadrant or a choice: 32 of the 81, to keep legacy quick) with a C
    whose columns differ (urgency from the second step of a policy): both agents read column k for step k."""
    env = SceneConstruction()
    model = env.generative_model(urgency=-1.5)
    C_where = model.C[1].copy()
    C_where[:5, 1:] = -1.5
    model = aif.GenerativeModel(model.A, model.B, [model.C[0], C_where], model.D)
    policies = np.array([[[0, a], [0, b]] for a in range(1, 5) for b in range(1, 9)])
    worst, _ = _closed_loop(env, model, 2, 2, {"scene": "RIGHT_DOWN", "config": (1, 3)}, 0, policies)
    print(f"scene construction, 32 two-step policies, 2 steps: max |aif - legacy| {worst:.1e}")
    assert worst < 1e-10


@pytest.mark.parametrize("precision, horizon, seed", [(3.0, 3, 1), (1.0, 3, 2)])
def test_random_dot_motion_agent_matches_legacy_agent(precision, horizon, seed):
    """initialize_RDM_GM(A_precis=precision) in the environment of that precision, 10 steps. With coherent dots the
    agent breaks off once it is sure; the process lets it resume, which its model believes impossible (legacy's
    task as written), and the two agents still agree."""
    env = RandomDotMotion(precision)
    worst, seen = _closed_loop(env, env.generative_model(), horizon, 10,
                               {"direction": "RIGHT", "sampling_state": "sampling"}, seed)
    print(f"random-dot motion, precision {precision}, horizon {horizon}: max |aif - legacy| over 10 steps "
          f"{worst:.1e}")
    assert worst < 1e-10
    if precision >= 3.0:
        assert [o[1] for o in seen[:3]] == [SAMPLING, SAMPLING, SAMPLING] and BREAKING in [o[1] for o in seen]


# --- errors and rendering -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: SceneConstruction(scene="UP"), "scene must be"),
    (lambda: SceneConstruction(config=(2, 2)), "config must be two different quadrants"),
    (lambda: SceneConstruction(config=(0, 5)), "config must be two different quadrants"),
    (lambda: SceneConstruction(config="1_2"), "config must be numbers"),
    (lambda: SceneConstruction().reset(options={"config": (1, 2, 3)}), r"options\['config'\]"),
    (lambda: SceneConstruction().reset(options={"scene": 0}), r"options\['scene'\]"),
    (lambda: SceneConstruction().generative_model(preference_steps=0), "preference_steps"),
    (lambda: SceneConstruction().generative_model(urgency=float("nan")), "urgency"),
    (lambda: SceneConstruction(render_mode="ansi"), "render_mode"),
    (lambda: RandomDotMotion(precision=-1.0), "precision"),
    (lambda: RandomDotMotion(direction="SIDEWAYS"), "direction must be"),
    (lambda: RandomDotMotion(sampling_state="sample"), "sampling_state must be"),
    (lambda: RandomDotMotion().reset(options={"direction": "up"}), r"options\['direction'\]"),
    (lambda: RandomDotMotion().generative_model(precision="high"), "precision"),
    (lambda: RandomDotMotion().generative_model(break_reward=None), "break_reward"),
])
def test_bad_arguments_raise_named_errors(make, match):
    with pytest.raises(ParameterError, match=match):
        make()


def test_render_rgb_array():
    for env, action in ((SceneConstruction(render_mode="rgb_array"), 7),
                        (RandomDotMotion(3.0, "LEFT", "sampling", render_mode="rgb_array"), 1)):
        env.reset(seed=0)
        env_render_passive_checker(env)
        before = env.render()
        env.step(action)
        after = env.render()
        assert before.dtype == np.uint8 and before.ndim == 3 and before.shape[2] == 3 and before.shape == after.shape
        assert (before != after).any()
