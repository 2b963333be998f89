"""Planners: the Plan interface, PolicyEnumeration (= the core's EFE and Agent), SophisticatedInference
(against pymdp 1.0's si tree search on its T-maze and generalised T-maze, and against a brute-force
recursion), pruning, and the adapter for (G, action) planners."""

import inspect
import types
from functools import lru_cache

import numpy as np
import pytest
from _reference import jax64

import aif
from aif.control import policy_posterior, select_action
from aif.errors import ParameterError, PolicyError, StrategyError
from aif.planning.base import Plan, Planner, PolicyEnumeration
from aif.planning.soft_value import SoftQPlanner
from aif.planning.sophisticated import SophisticatedInference

TOL = 1e-6


# ---------------------------------------------------------------------------------------------------------
# pymdp 1.0's si, in float64


@lru_cache(maxsize=None)
def pymdp_si():
    """pymdp 1.0's ``pymdp/planning/si.py`` with its hard-coded 32-bit dtypes made 64-bit.

    The module fixes ``jnp.float32`` (children probabilities, the prune penalty) and ``jnp.int32`` (tree
    indices, depths); with ``jax_enable_x64`` its ``lax.cond`` branches then disagree in dtype and tracing
    fails, and in float32 the stored probabilities would round at 1e-7. The source is loaded with exactly
    those dtype names replaced and nothing else changed.
    """
    jax64()
    import pymdp.planning.si as si

    source = inspect.getsource(si)
    assert source.count("jnp.float32") == 6 and source.count("jnp.int32") == 12, "pymdp's si.py changed"
    module = types.ModuleType("pymdp_si_float64")
    module.__file__ = si.__file__
    exec(compile(source.replace("jnp.float32", "jnp.float64").replace("jnp.int32", "jnp.int64"),
                 si.__file__, "exec"), module.__dict__)
    return module


@lru_cache(maxsize=None)  # importing pymdp.envs costs seconds (it rotates images)
def pymdp_tmaze():
    """pymdp 1.0's ``TMaze`` (5 locations with a middle, adjacent moves, separate cue) and the SI notebook's C."""
    from pymdp.envs.tmaze import TMaze

    env = TMaze(cue_validity=0.95)
    A = [np.asarray(a, float) for a in env.A]
    B = [np.asarray(b, float) for b in env.B]
    C = [np.zeros(a.shape[0]) for a in A]
    C[1][1], C[1][2] = 2.0, -6.0
    D = [np.eye(5)[0], np.full(2, 0.5)]
    model = aif.GenerativeModel(A, B, C, D, A_dependencies=env.A_dependencies, B_dependencies=env.B_dependencies)
    return model, [0, 1]  # start in the centre, reward in the right arm


@lru_cache(maxsize=None)
def pymdp_generalized_tmaze():
    """pymdp 1.0's small generalised T-maze (3x3, two cue/reward pairs); reward wanted in the last pair."""
    import jax.random as jr
    from pymdp.envs.generalized_tmaze import generate_A, generate_B, generate_D, get_maze_matrix, parse_maze

    info = parse_maze(get_maze_matrix(small=True), jr.PRNGKey(0))
    A, A_deps = generate_A(info)
    B, B_deps = generate_B(info)
    D_env = generate_D(info)
    A = [np.asarray(a, float) for a in A]
    B = [np.asarray(b, float) for b in B]
    C = [np.zeros(a.shape[0]) for a in A]
    C[2 + info["num_cues"]][1:] = 2.0, -3.0
    D = [np.asarray(D_env[0], float)] + [np.full(2, 0.5) for _ in B[1:]]
    model = aif.GenerativeModel(A, B, C, D, A_dependencies=A_deps, B_dependencies=B_deps)
    return model, [int(np.argmax(d)) for d in D_env]


def pymdp_agent(model):
    import jax.numpy as jnp
    from pymdp.agent import Agent

    return Agent([jnp.array(a) for a in model.A], [jnp.array(b) for b in model.B], [jnp.array(c) for c in model.C],
                 [jnp.array(d) for d in model.D], A_dependencies=model.A_dependencies,
                 B_dependencies=model.B_dependencies, policy_len=1)


def pymdp_root_G(tree, root_q, num_actions, planner):
    """G of each first action as pymdp's root q_pi holds it.

    pymdp's root q_pi is softmax(gamma * v) over ``max_branching`` slots, and the root's value is
    sum_s q_s v_s; so v_u = (ln q_u + ln Z) / gamma with ln Z / gamma = root value + H[q_pi] / gamma. A slot
    whose q underflowed to 0 is a cut action (its v is -prune_penalty). Reading the values from the tree's
    nodes instead would miss the actions cut *after* that softmax, whose nodes pymdp removes at the end of
    the same backward pass.
    """
    root_value = float(np.asarray(tree.neg_efe)[0, 0, 0])
    q = np.asarray(root_q)
    entropy = -(q[q > 0] * np.log(q[q > 0])).sum()
    with np.errstate(divide="ignore"):
        v = root_value + (entropy + np.log(q[:num_actions])) / planner.gamma
    return np.where(q[:num_actions] > 0, -v, planner.prune_penalty)


def run_episode(model, true_state, planner, max_nodes, steps=20, seed=0):
    """One episode driven by ``planner``; at every step pymdp's si plans from the same belief.

    Returns per step: (our G, pymdp's G, our action, pymdp's action, our node count, pymdp's node count).
    """
    import jax.numpy as jnp
    import jax.random as jr

    si = pymdp_si()
    agent = pymdp_agent(model)
    search = si.si_policy_search(
        horizon=planner.depth, max_nodes=max_nodes, max_branching=planner.max_branching,
        policy_prune_threshold=planner.policy_prune_threshold,
        observation_prune_threshold=planner.observation_prune_threshold,
        entropy_stop_threshold=-1.0 if planner.entropy_stop_threshold is None else planner.entropy_stop_threshold,
        prune_penalty=planner.prune_penalty, gamma=planner.gamma)
    rng = np.random.default_rng(seed)
    state, prior, rows = list(true_state), model.D, []
    for _ in range(steps):
        obs = [int(rng.choice(A_m.shape[0], p=A_m[(slice(None),) + tuple(state[f] for f in deps)]))
               for A_m, deps in zip(model.A, model.A_dependencies, strict=False)]
        qs = aif.infer_states(model, obs, prior, aif.FixedPoint.pymdp())
        plan = planner.plan(model, qs)
        tree = planner.search(model, qs)
        q_pi, info = search(agent, qs=[jnp.asarray(q)[None, None] for q in qs], rng_key=jr.PRNGKey(0))
        used = int(np.asarray(info["tree"].used).sum())
        assert used < max_nodes - 1, "pymdp's tree filled up; raise max_nodes"
        rows.append((plan.G, pymdp_root_G(info["tree"], q_pi[0], len(plan.G), planner), plan.action,
                     int(np.argmax(np.asarray(q_pi)[0])), tree.num_nodes, used))
        u = plan.action
        state = [int(np.argmax(B_f[(slice(None),) + tuple(state[g] for g in deps) + (u[f],)]))
                 for f, (B_f, deps) in enumerate(zip(model.B, model.B_dependencies, strict=False))]
        prior = aif.predict(model, qs, u)
    return rows


def check_agreement(rows, planner):
    G, G_ref, action, action_ref, nodes, nodes_ref = (list(x) for x in zip(*rows, strict=False))
    deviation = max(np.abs(g - r).max() for g, r in zip(G, G_ref, strict=False))
    assert deviation < TOL, f"G differs from pymdp's by {deviation:.2e}"
    assert [int(a[0]) for a in action] == action_ref
    assert nodes == nodes_ref
    return deviation


@pytest.mark.parametrize("depth", [2, 3])
def test_tmaze_agrees_with_pymdp_si(depth):
    model, true_state = pymdp_tmaze()
    planner = SophisticatedInference.pymdp(depth)
    rows = run_episode(model, true_state, planner, max_nodes=256 if depth == 2 else 1024)
    check_agreement(rows, planner)
    # The behaviour the T-maze is for: the cue first, then (at depth 3, which sees the arm from the cue via
    # the middle) the cued arm and staying there; a cut action is worth the penalty.
    actions = [int(r[2][0]) for r in rows]
    assert actions[0] == 3
    if depth == 3:
        assert 2 in actions and actions[-1] in (0, 1, 2, 3)
        assert any((r[0] == planner.prune_penalty).any() for r in rows)


def test_generalized_tmaze_agrees_with_pymdp_si():
    model, true_state = pymdp_generalized_tmaze()
    planner = SophisticatedInference.pymdp(2, gamma=2.0)
    rows = run_episode(model, true_state, planner, max_nodes=256)
    check_agreement(rows, planner)


# ---------------------------------------------------------------------------------------------------------
# SophisticatedInference against an independent recursion, and pruning


def brute_force_G(model, qs, depth, gamma, options, method):
    """G(b, u) = G_1(b, u) + sum_o prod_m q(o_m | b, u) sum_u' q(u' | b_o) G(b_o, u'), depth first, no pruning."""
    actions = aif.enumerate_policies(model.num_controls, 1)
    G1 = aif.expected_free_energy(model, qs, actions, options=options)[0]
    if depth == 1:
        return G1
    G = G1.copy()
    for i, u in enumerate(actions[:, 0]):
        prior = aif.predict(model, qs, u)
        qo = [aif.maths.factor_dot(A_m, [prior[f] for f in deps], list(range(1, A_m.ndim)), keep=(0,))
              for A_m, deps in zip(model.A, model.A_dependencies, strict=False)]
        for o in np.ndindex(*model.num_obs):
            p = np.prod([qo_m[o_m] for qo_m, o_m in zip(qo, o, strict=False)])
            if p == 0:
                continue
            post = aif.infer_states(model, list(o), prior, method)
            G_next = brute_force_G(model, post, depth - 1, gamma, options, method)
            G[i] += p * (policy_posterior(G_next, gamma=gamma) @ G_next)
    return G


@pytest.mark.parametrize("seed", range(4))
def test_unpruned_search_is_the_recursive_formula(seed):
    rng = np.random.default_rng(seed)
    model = aif.random_model(rng, [3, 2][: 1 + seed % 2], [3, 2], [3, 2][: 1 + seed % 2])
    qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    options = aif.EFEOptions()
    depth = 3 if model.num_factors == 1 else 2
    planner = SophisticatedInference(depth=depth, policy_prune_threshold=0.0, observation_prune_threshold=0.0,
                                     gamma=2.0, options=options)
    G = planner.plan(model, qs).G
    np.testing.assert_allclose(G, brute_force_G(model, qs, depth, 2.0, options, planner.inference), rtol=0,
                               atol=1e-10)


def test_sophisticated_agent_pays_for_an_informative_cue():
    """pymdp 1.0's own SI test, rebuilt: the cue costs 2, a wrong arm 12, the right one gains 6. Two steps of
    plain EFE cannot use what the cue will say (its second step is scored from the prior), so they avoid the
    cue; sophisticated inference plans the second step from the posterior after the cue, and takes it."""
    start, left, right, cue = range(4)
    A_where = np.zeros((5, 4, 2))  # start, left, right, cue says left, cue says right
    A_outcome = np.zeros((3, 4, 2))  # nothing, reward, punishment
    for s in range(2):
        A_where[[0, 1, 2], [start, left, right], s] = 1.0
        A_where[3 + s, cue, s] = 1.0
        A_outcome[0, [start, cue], s] = 1.0
        A_outcome[1 if s == 0 else 2, left, s] = 1.0
        A_outcome[1 if s == 1 else 2, right, s] = 1.0
    B_where = np.zeros((4, 4, 4))
    B_where[np.arange(4), :, np.arange(4)] = 1.0  # action u goes to location u
    model = aif.GenerativeModel([A_where, A_outcome], [B_where, np.eye(2)[:, :, None]],
                                [np.array([0.0, 0, 0, -2, -2]), np.array([0.0, 6, -12])],
                                [np.eye(4)[start], np.full(2, 0.5)])
    options = aif.EFEOptions.pymdp()
    si = SophisticatedInference(depth=2, policy_prune_threshold=0.0, observation_prune_threshold=0.0, gamma=4.0,
                                options=options).plan(model, model.D)
    assert si.action[0] == cue and np.argsort(si.G)[0] == cue
    flat = PolicyEnumeration(horizon=2, options=options).plan(model, model.D)
    marginal = aif.action_marginals(policy_posterior(flat.G, gamma=4.0), flat.policies, model.num_controls)[0]
    assert marginal[cue] < marginal[start] and flat.action[0] != cue


def test_depth_one_is_one_step_efe():
    rng = np.random.default_rng(7)
    model = aif.random_model(rng, [3, 2], [4, 2], [3, 2])
    qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    for options in (aif.EFEOptions(), aif.EFEOptions.pymdp()):
        plan = SophisticatedInference(depth=1, policy_prune_threshold=0.0, observation_prune_threshold=0.0,
                                      options=options).plan(model, qs)
        reference = PolicyEnumeration(horizon=1, options=options).plan(model, qs)
        np.testing.assert_array_equal(plan.policies, reference.policies)
        np.testing.assert_allclose(plan.G, reference.G, rtol=0, atol=1e-12)
        np.testing.assert_allclose(plan.terms["immediate"], reference.G, rtol=0, atol=1e-12)


def count_full_tree(model, qs, depth, threshold):
    """Nodes of the tree pruned only of outcome combinations at or below ``threshold``: every action node,
    and below it every outcome combination (probability: product of the per-modality marginals) above it."""
    actions = aif.enumerate_policies(model.num_controls, 1)[:, 0]
    count = 1
    if depth == 0:
        return count
    for u in actions:
        prior = aif.predict(model, qs, u)
        qo = [aif.maths.factor_dot(A_m, [prior[f] for f in deps], list(range(1, A_m.ndim)), keep=(0,))
              for A_m, deps in zip(model.A, model.A_dependencies, strict=False)]
        count += 1
        for o in np.ndindex(*model.num_obs):
            if np.prod([qo_m[o_m] for qo_m, o_m in zip(qo, o, strict=False)]) > threshold:
                post = aif.infer_states(model, list(o), prior)
                count += count_full_tree(model, post, depth - 1, threshold)
    return count


def test_pruning_prunes():
    model, _ = pymdp_tmaze()
    qs = aif.infer_states(model, [0, 0, 0], model.D)
    # With no threshold at all the tree would hold the outcomes of probability ~1e-47 that the log guard
    # of state inference leaves (15873 nodes at depth 2); 1e-9 keeps every outcome that matters.
    full = SophisticatedInference(depth=3, policy_prune_threshold=0.0, observation_prune_threshold=1e-9)
    n_full = full.search(model, qs).num_nodes
    assert n_full == count_full_tree(model, qs, 3, 1e-9)
    by_policy = SophisticatedInference(depth=3, policy_prune_threshold=1 / 16, observation_prune_threshold=1e-9)
    by_obs = SophisticatedInference(depth=3, policy_prune_threshold=0.0, observation_prune_threshold=0.2)
    both = SophisticatedInference(depth=3, policy_prune_threshold=1 / 16, observation_prune_threshold=0.2)
    counts = [p.search(model, qs).num_nodes for p in (by_policy, by_obs, both)]
    assert all(c < n_full for c in counts) and counts[2] < min(counts[:2])  # 605, 447, 427 < 625
    # Every live node below a cut action is gone, and every live action clears the threshold.
    tree = both.search(model, qs)
    for level, below in zip(tree.levels, tree.levels[1:], strict=False):
        U = level.added.shape[1]
        assert not (below.alive & ~level.added.reshape(-1)[below.parent]).any()
        assert (level.q[level.added & level.alive[:, None]] >= both.policy_prune_threshold).all()
        assert (below.prob[below.alive] > both.observation_prune_threshold).all()
        assert U == 5
    # A cut first action is worth the penalty: in the rewarded arm, going back to the middle.
    in_arm = [np.eye(5)[2], np.array([0.0, 1.0])]
    plan, tree = both.plan(model, in_arm), both.search(model, in_arm)
    cut = ~tree.levels[0].added[0]
    assert cut.tolist() == [False, False, False, False, True] and plan.G[4] == both.prune_penalty
    # An action none of whose outcomes is kept is worth the penalty too (pymdp's rule): the cue, whose two
    # outcomes have probability 1/2 each.
    spread = SophisticatedInference(depth=1, policy_prune_threshold=0.0, observation_prune_threshold=0.6)
    G = spread.plan(model, qs).G
    assert G[3] == 512.0 and (np.delete(G, 3) < 10).all()


def test_entropy_stop_stops_early():
    model, _ = pymdp_tmaze()
    qs = aif.infer_states(model, [0, 0, 0], model.D)
    q = SophisticatedInference(depth=1).search(model, qs).levels[0].q[0]  # root q(u) after one level
    entropy = -(q * np.log(q)).sum()
    stopped = SophisticatedInference(depth=3, entropy_stop_threshold=entropy + 1e-9).search(model, qs)
    assert stopped.depth_reached == 1 and len(stopped.levels) == 2
    assert SophisticatedInference(depth=3, entropy_stop_threshold=entropy - 1e-9).search(model, qs).depth_reached > 1
    assert SophisticatedInference(depth=3).search(model, qs).depth_reached == 3


def test_max_branching_and_topk_limit_outcomes():
    model, _ = pymdp_generalized_tmaze()
    qs = [model.D[0], np.full(2, 0.5), np.full(2, 0.5)]
    wide = SophisticatedInference(depth=1, policy_prune_threshold=0.0, observation_prune_threshold=0.0)
    narrow = SophisticatedInference(depth=1, policy_prune_threshold=0.0, observation_prune_threshold=0.0,
                                    topk_outcomes=1)
    capped = SophisticatedInference(depth=1, policy_prune_threshold=0.0, observation_prune_threshold=0.0,
                                    max_branching=5)
    below_wide, below_narrow = wide.search(model, qs).levels[1], narrow.search(model, qs).levels[1]
    assert below_narrow.size == 5 < below_wide.size
    assert np.allclose(below_narrow.prob, 1.0)  # one outcome per modality, renormalised
    assert np.bincount(capped.search(model, qs).levels[1].parent).max() <= 5


# ---------------------------------------------------------------------------------------------------------
# PolicyEnumeration and the Agent; the interface


@pytest.mark.parametrize("seed", range(6))
def test_policy_enumeration_is_expected_free_energy_and_reproduces_the_agent(seed):
    rng = np.random.default_rng(seed)
    nf = 1 + seed % 2
    model = aif.random_model(rng, [3, 2][:nf], [3, 2], [2, 3][:nf])
    horizon = 1 + seed % 3
    mode, sampling = [("deterministic", "full"), ("stochastic", "marginal"), ("stochastic", "full")][seed % 3]
    policies = aif.enumerate_policies(model.num_controls, horizon)
    if seed % 2:
        model = model.replace(E=rng.dirichlet(np.ones(len(policies))))
    terms = (aif.Utility(), aif.InfoGain()) if seed < 3 else (aif.Risk(), aif.Ambiguity())
    options = aif.EFEOptions.pymdp() if seed % 2 else aif.EFEOptions()
    agent = aif.Agent(model, policy_horizon=horizon, gamma=4.0, efe=options, efe_terms=terms,
                      selection=aif.Selection(mode, sampling), rng=np.random.default_rng(seed))
    planner = PolicyEnumeration(horizon=horizon, efe_terms=terms, options=options)
    rng_plan = np.random.default_rng(seed)
    for t in range(3):
        obs = [int(rng.integers(o)) for o in model.num_obs]
        action = agent.step(obs)
        plan = planner.plan(model, agent.qs)
        G, G_terms = aif.expected_free_energy(model, agent.qs, policies, terms, options)
        np.testing.assert_array_equal(plan.G, G)
        assert plan.terms.keys() == G_terms.keys()
        np.testing.assert_array_equal(plan.policies, agent.policies)
        np.testing.assert_array_equal(plan.G, agent.G)
        # The Agent's step from the Plan: q(pi) = softmax(-gamma G + ln E), then selection.
        q_pi = policy_posterior(plan.G, model.E, agent.gamma)
        np.testing.assert_array_equal(q_pi, agent.q_pi)
        ours = select_action(q_pi, plan.policies, mode, rng_plan, agent.alpha, sampling)
        np.testing.assert_array_equal(ours, action)
        np.testing.assert_array_equal(plan.action, policies[np.argmin(G), 0])


def test_plan_action_is_first_of_ties_and_shapes_are_checked():
    policies = aif.enumerate_policies([3, 2], 1)
    plan = Plan(np.array([1.0, 0.0, 0.0, 2.0, 0.0, 5.0]), policies)
    np.testing.assert_array_equal(plan.action, policies[1, 0])
    with pytest.raises(PolicyError, match="Plan.G"):
        Plan(np.zeros(5), policies)
    with pytest.raises(ParameterError, match="terms"):
        Plan(np.zeros(6), policies, {"risk": np.zeros(2)})
    with pytest.raises(PolicyError, match="integer"):
        Plan(np.zeros(6), policies.astype(float))


def test_every_planner_meets_the_interface():
    rng = np.random.default_rng(3)
    model = aif.random_model(rng, [3, 2], [3], [2, 2])
    qs = [rng.dirichlet(np.ones(s)) for s in model.num_states]
    planners = [PolicyEnumeration(horizon=2), SophisticatedInference(depth=2), SoftQPlanner(horizon=2)]
    for planner in planners:
        assert isinstance(planner, Planner)
        plan = planner.plan(model, qs, rng=rng)
        assert plan.G.shape == plan.policies.shape[:1] and plan.action.shape == (2,)
        assert all(v.shape == plan.G.shape for v in plan.terms.values())
        np.testing.assert_array_equal(plan.action, plan.policies[np.argmin(plan.G), 0])
    soft = SoftQPlanner(horizon=2).plan(model, qs)
    np.testing.assert_array_equal(soft.policies, aif.enumerate_policies(model.num_controls, 1))


def test_an_object_that_is_not_a_planner_is_refused():
    class Tuples:  # plan() returns (G, action), not a Plan, and it does not subclass Planner
        def plan(self, model, qs, rng=None):
            return np.zeros(4), np.zeros(2, dtype=int)

    class Incomplete(Planner):  # a Planner without plan()
        pass

    model = aif.random_model(np.random.default_rng(0), [3, 2], [3], [2, 2])
    for planner in (Tuples(), SoftQPlanner, "PolicyEnumeration"):
        with pytest.raises(StrategyError, match="planner"):
            aif.Agent(model, planner=planner)
    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=0), "depth"), (dict(policy_prune_threshold=1.0), "policy_prune_threshold"),
    (dict(observation_prune_threshold=-0.1), "observation_prune_threshold"), (dict(gamma=0.0), "gamma"),
    (dict(max_branching=0), "max_branching"), (dict(topk_outcomes=1.5), "topk_outcomes"),
    (dict(prune_penalty=np.inf), "prune_penalty"),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        SophisticatedInference(**kwargs)


def test_max_branching_below_the_actions_is_refused():
    model, _ = pymdp_tmaze()
    with pytest.raises(ParameterError, match="max_branching"):
        SophisticatedInference(max_branching=3).plan(model, model.D)
