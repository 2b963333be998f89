"""MCTS: exhaustive once its budget covers the tree (then its root values are sophisticated inference's), a
sensible choice on a smaller budget, a planner of the Agent, and refused settings."""

import numpy as np
import pytest

import aif
from aif.errors import ParameterError, PolicyError, StrategyError
from aif.planning import MCTS, SophisticatedInference

TOL = 1e-12


def tmaze():
    """pymdp 1.0's T-maze (a middle cell between the arms) with its SI notebook's preferences."""
    return aif.envs.PymdpTMaze(cue_validity=0.95).generative_model(punishment_preference=-6.0)


def grid():
    return aif.envs.GridWorld(shape=(3, 3), start=(0, 0), goals=[(2, 2)]).generative_model()


def random_case(seed):
    rng = np.random.default_rng(seed)
    nf = 1 + seed % 2
    model = aif.random_model(rng, [3, 2][:nf], [[3, 2], [2, 2]][nf - 1], [2, 2][:nf])
    return model, [rng.dirichlet(np.ones(s)) for s in model.num_states]


def exhaustive_pair(depth, gamma=1.0, threshold=1 / 16, **kwargs):
    """MCTS with a budget no tree here reaches, and sophisticated inference on the same tree (no action cuts)."""
    common = dict(depth=depth, gamma=gamma, observation_prune_threshold=threshold, **kwargs)
    return MCTS(simulations=100_000, **common), SophisticatedInference(policy_prune_threshold=0.0, **common)


CASES = [("tmaze-start", 3), ("tmaze-cue", 2), ("grid", 3)] + [(f"random-{seed}", 2) for seed in range(3)]


def case(name):
    if name.startswith("random"):
        return random_case(int(name.split("-")[1]))
    if name == "grid":
        model = grid()
        return model, aif.infer_states(model, [0], model.D)
    model = tmaze()
    qs = aif.infer_states(model, [0, 0, 0], model.D)
    if name == "tmaze-cue":  # at the cue, which said "right"
        qs = aif.infer_states(model, [3, 0, 1], aif.predict(model, qs, [3, 0]))
    return model, qs


@pytest.mark.parametrize("name,depth", CASES)
def test_exhaustive_search_is_sophisticated_inference(name, depth):
    model, qs = case(name)
    mcts, si = exhaustive_pair(depth, gamma=2.0 if name == "grid" else 1.0)
    result = mcts.search(model, qs)
    assert result.exhaustive and result.simulations == result.num_expanded < mcts.simulations
    # Every belief node of sophisticated inference's tree that has children was expanded once.
    tree = si.search(model, qs)
    assert result.num_expanded == sum(int(level.alive.sum()) for level in tree.levels[:-1])
    plan = mcts.plan(model, qs)
    np.testing.assert_array_equal(plan.policies[:, 0], tree.actions)
    np.testing.assert_allclose(plan.G, tree.levels[0].G_action[0], rtol=0, atol=TOL)  # = si.plan(model, qs).G
    np.testing.assert_allclose(plan.terms["immediate"], tree.levels[0].G_step[0], rtol=0, atol=TOL)
    np.testing.assert_array_equal(plan.action, tree.actions[np.argmin(tree.levels[0].G_action[0])])


def test_outcome_pruning_and_topk_follow_sophisticated_inference():
    model, qs = case("tmaze-start")
    for kwargs in ({"threshold": 0.6}, {"threshold": 0.0, "topk_outcomes": 1}, {"threshold": 0.2}):
        mcts, si = exhaustive_pair(2, **kwargs)
        np.testing.assert_allclose(mcts.plan(model, qs).G, si.plan(model, qs).G, rtol=0, atol=TOL)
    assert exhaustive_pair(1, threshold=0.6)[0].plan(model, qs).G[3] == 512.0  # the cue: no outcome kept


def test_sampled_outcomes_reach_the_same_tree():
    model, qs = case("tmaze-start")
    mcts, si = exhaustive_pair(2)
    sampled = MCTS(depth=2, simulations=100_000, sample_outcomes=True)
    plan = sampled.plan(model, qs, np.random.default_rng(0))
    np.testing.assert_allclose(plan.G, si.plan(model, qs).G, rtol=0, atol=TOL)
    with pytest.raises(ParameterError, match="rng"):
        sampled.plan(model, qs)


def test_a_small_budget_still_goes_to_the_cue():
    """The T-maze's point: from the centre the cue first. 40 simulations of a 3-deep search (its full tree
    needs 50) choose it; the root's visits go mostly to it."""
    model, qs = case("tmaze-start")
    result = MCTS(depth=3, simulations=40).search(model, qs)
    assert not result.exhaustive and result.simulations == 40
    plan = MCTS(depth=3, simulations=40).plan(model, qs)
    assert plan.action[0] == 3 and np.argmax(plan.terms["visits"]) == 3
    assert plan.terms["visits"].sum() == 40 - 1  # the first simulation expands the root


def test_E_is_the_selection_prior():
    model, qs = case("tmaze-start")
    E = np.array([0.01, 0.01, 0.01, 0.01, 0.96])
    habitual = model.replace(E=E)
    small = dict(depth=3, simulations=12, exploration=20.0)
    visits = MCTS(**small).plan(habitual, qs).terms["visits"]
    flat = MCTS(use_E=False, **small).plan(habitual, qs).terms["visits"]
    assert visits[4] > flat[4]
    with pytest.raises(PolicyError, match="first actions"):
        MCTS(depth=2).plan(model.replace(E=np.full(25, 1 / 25)), qs)


def test_mcts_drives_the_agent():
    """In aif.Agent: the cue, then through the centre and the middle to the arm the cue named."""
    model = tmaze()
    env = aif.envs.PymdpTMaze(cue_validity=0.95)
    agent = aif.Agent(model, planner=MCTS(depth=3, simulations=64), gamma=16.0, rng=np.random.default_rng(0))
    obs, _ = env.reset(seed=0)
    actions, cues = [], []
    for _ in range(4):
        action = agent.step(obs)
        actions.append(int(action[0]))
        obs, *_ = env.step(int(action[0]))
        cues.append(int(obs[2]))
    assert actions == [3, 0, 4, cues[0]] and cues[0] in (1, 2)  # cue k names arm k
    assert agent.plan.terms["visits"].shape == (5,)


@pytest.mark.parametrize("changes,error,match", [
    ({"depth": 0}, ParameterError, "MCTS.depth"),
    ({"simulations": 2.5}, ParameterError, "MCTS.simulations"),
    ({"exploration": -1.0}, ParameterError, "MCTS.exploration"),
    ({"gamma": 0.0}, ParameterError, "MCTS.gamma"),
    ({"observation_prune_threshold": 1.0}, ParameterError, "observation_prune_threshold"),
    ({"use_E": "yes"}, ParameterError, "MCTS.use_E"),
    ({"topk_outcomes": 0}, ParameterError, "topk_outcomes"),
    ({"options": "pymdp"}, StrategyError, "MCTS.options"),
    ({"inference": aif.FixedPoint}, StrategyError, "MCTS.inference"),
])
def test_bad_settings_are_refused(changes, error, match):
    with pytest.raises(error, match=match):
        MCTS(**changes)


@pytest.mark.parametrize("planner", [aif.planning.MCTS, aif.planning.SophisticatedInference])
def test_tree_searches_refuse_terms_of_the_horizon(planner):
    goal = aif.efe.GoalDivergence(np.log(np.full((4, 2), 1 / 8)), 1.0)
    value = aif.TerminalValue(lambda qs: np.zeros(len(qs[0])))
    for term in (goal, value):
        with pytest.raises(aif.StrategyError, match=f"{planner.__name__}: {type(term).__name__} scores the beliefs"):
            planner(efe_terms=(*aif.DEFAULT_TERMS, term))
