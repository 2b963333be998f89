"""Inductive inference against pymdp 1.0: its graph world and random small models, to 1e-8 in float64."""

from functools import partial

import numpy as np
import pytest

from aif import GenerativeModel, random_model
from aif.control import enumerate_policies, expected_free_energy
from aif.efe import InductiveCost
from aif.efe import inductive_cost as inductive_cost_rows
from aif.errors import ModelError, ParameterError
from aif.planning import inductive_matrix

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
pymdp_control = pytest.importorskip("pymdp.control")

TOL = 1e-8


def inductive_cost(model, qs, policies, I, epsilon):
    """The inductive term of G of every policy: ``expected_free_energy`` with the one term InductiveCost."""
    return expected_free_energy(model, qs, policies, (InductiveCost(I, epsilon),))[0]


def inductive_value(qs, qs_next, I, epsilon=1e-3):
    """pymdp's inductive value (<= 0) of the rows of ``qs_next`` anchored at ``qs``: minus the cost."""
    root = [np.broadcast_to(q, (len(q_next), len(q))) for q, q_next in zip(qs, qs_next, strict=True)]
    return -inductive_cost_rows(qs_next, root, InductiveCost(I, epsilon))


def pymdp_I(H, B, thresholds, depth):
    """pymdp 1.0's I matrices for a batch of goal sets and thresholds (one compilation per shape)."""
    return jax.vmap(partial(pymdp_control.generate_I_matrix, depth=depth))(H, B, thresholds)


def pymdp_inductive_neg_efe(qs, A, B, C, I, policies, A_deps, B_deps, epsilon):
    """pymdp 1.0's inductive part of neg_efe, for a batch of (qs, A, B, C, I) and every policy.

    Utility and information gain are switched off, so ``compute_neg_efe_policy_inductive`` returns the
    inductive value summed over the policy's steps.
    """

    def one(qs, A, B, C, I):
        score = partial(pymdp_control.compute_neg_efe_policy_inductive, qs, A, B, C, None, None, A_deps, B_deps,
                        I, inductive_epsilon=epsilon, use_utility=False, use_states_info_gain=False,
                        use_inductive=True)
        return jax.vmap(score)(jnp.asarray(policies))

    return np.asarray(jax.jit(jax.vmap(one))(qs, A, B, C, I))


def stack(list_of_lists):
    return [jnp.asarray(np.stack(arrs)) for arrs in zip(*list_of_lists, strict=False)]


@pytest.fixture(scope="module")
def graph_world():
    from pymdp.envs.graph_worlds import GraphEnv, generate_connected_clusters

    graph, _ = generate_connected_clusters(cluster_size=3, connections=2)
    # the array builders do not use the instance; skipping the constructor saves sampling locations
    A, A_deps = GraphEnv.generate_A(None, graph)
    B, B_deps = GraphEnv.generate_B(None, graph)
    A = [np.asarray(a, dtype=float) for a in A]
    B = [np.asarray(b, dtype=float) for b in B]
    model = GenerativeModel(A, B, A_dependencies=A_deps, B_dependencies=B_deps)
    return model


def test_graph_world_I_matrices_match_pymdp(graph_world):
    model = graph_world
    L, K = model.num_states
    depth = 5
    rng = np.random.default_rng(0)
    cases = []
    for goal in range(L):
        for threshold in (0.0, 0.5, 0.99):
            H = [np.eye(L)[goal], (rng.random(K) < 0.3).astype(float)]
            cases.append((H, threshold))
    H_batch = stack([H for H, _ in cases])
    B_batch = [jnp.broadcast_to(jnp.asarray(b), (len(cases), *b.shape)) for b in model.B]
    ref = pymdp_I(H_batch, B_batch, jnp.asarray([t for _, t in cases]), depth)
    for i, (H, threshold) in enumerate(cases):
        mine = inductive_matrix(H, model.B, threshold, depth)
        for f in range(2):
            np.testing.assert_array_equal(mine[f], np.asarray(ref[f][i]))
    # the hallways (0 and 3) reach every room within 2 steps; room 1 is 3 steps from room 4
    I = inductive_matrix([np.eye(L)[4], np.zeros(K)], model.B, 0.5, depth)[0]
    assert I[:, 1].tolist() == [0, 0, 0, 1, 1]


def test_graph_world_inductive_values_match_pymdp(graph_world):
    model = graph_world
    L, K = model.num_states
    depth, epsilon = 5, 1e-3
    policies = enumerate_policies(model.num_controls, 3)  # (343, 3, 2)
    rng = np.random.default_rng(1)
    cases = []
    for start in range(L):
        for goal in range(L):
            qs = [np.eye(L)[start], rng.dirichlet(np.ones(K))]
            if goal == start:  # beliefs that are not one-hot: the term anchors on their argmax
                qs[0] = 0.6 * qs[0] + 0.4 * rng.dirichlet(np.ones(L))
            H = [np.eye(L)[goal], np.zeros(K)]
            cases.append((qs, inductive_matrix(H, model.B, 0.5, depth)))
    ref = pymdp_inductive_neg_efe(
        stack([qs for qs, _ in cases]),
        [jnp.broadcast_to(jnp.asarray(a), (len(cases), *a.shape)) for a in model.A],
        [jnp.broadcast_to(jnp.asarray(b), (len(cases), *b.shape)) for b in model.B],
        [jnp.zeros((len(cases), o)) for o in model.num_obs],
        stack([I for _, I in cases]),
        policies, model.A_dependencies, model.B_dependencies, epsilon,
    )  # (cases, policies): pymdp's neg_efe, so minus our cost
    mine = np.stack([inductive_cost(model, qs, policies, I, epsilon) for qs, I in cases])
    assert np.abs(mine + ref).max() < TOL
    assert np.abs(ref).max() > 1.0  # the term is not trivially zero
    # a behaviour to check by hand: from room 1 to room 4 (path 1 -> 0 -> 3 -> 4), the direct policy
    # costs nothing; waiting one step costs ln(1/epsilon)
    qs = [np.eye(L)[1], np.eye(K)[0]]
    I = inductive_matrix([np.eye(L)[4], np.zeros(K)], model.B, 0.5, depth)
    direct = np.array([[[0, 0], [3, 0], [4, 0]]])
    wait = np.array([[[1, 0], [0, 0], [3, 0]]])
    assert inductive_cost(model, qs, direct, I, epsilon)[0] == 0.0
    assert abs(inductive_cost(model, qs, wait, I, epsilon)[0] - np.log(1 / epsilon)) < 1e-12


def test_random_models_match_pymdp():
    rng = np.random.default_rng(2)
    num_states, num_controls, horizon, depth = [4, 3], [3, 2], 3, 3
    policies = enumerate_policies(num_controls, horizon)
    epsilon = 0.05
    models, cases = [], []
    for i in range(16):
        model = random_model(rng, num_states, [3, 2], num_controls=num_controls, concentration=0.3)
        # some factors without a goal, some with several goal states
        H = [(rng.random(s) < 0.35).astype(float) for s in num_states]
        threshold = rng.uniform(0.05, 0.5)
        qs = [rng.dirichlet(np.ones(s)) for s in num_states]
        models.append(model)
        cases.append((H, threshold, qs))
    n = len(models)
    B_batch = stack([m.B for m in models])
    ref_I = pymdp_I(stack([H for H, _, _ in cases]), B_batch, jnp.asarray([t for _, t, _ in cases]), depth)
    Is = []
    for i, (model, (H, threshold, _)) in enumerate(zip(models, cases, strict=False)):
        I = inductive_matrix(H, model.B, threshold, depth)
        for f in range(2):
            np.testing.assert_array_equal(I[f], np.asarray(ref_I[f][i]))
        Is.append(I)
    # I given directly with values in [0, 1] (pymdp accepts any I): the anchor row is the column's argmax
    # and the term is scaled by the column sum clipped to [0, 1]
    for i in range(4):
        Is.append([np.round(rng.random((depth, s)) * rng.integers(0, 2, size=(depth, s)), 2)
                   for s in num_states])
        models.append(models[i])
        cases.append(cases[i])
    n = len(models)
    B_batch = stack([m.B for m in models])
    ref = pymdp_inductive_neg_efe(
        stack([qs for *_, qs in cases]), stack([m.A for m in models]), B_batch,
        [jnp.zeros((n, o)) for o in models[0].num_obs], stack(Is),
        policies, models[0].A_dependencies, models[0].B_dependencies, epsilon,
    )
    mine = np.stack([inductive_cost(m, qs, policies, I, epsilon)
                     for m, (*_, qs), I in zip(models, cases, Is, strict=False)])
    assert np.abs(mine + ref).max() < TOL
    assert (np.abs(ref).max(axis=1) > 0).sum() >= n // 2  # most cases exercise the term


def test_corridor_rows_and_values_by_hand():
    n = 5
    B = np.zeros((n, n, 3))
    for s in range(n):
        for u, step in enumerate((-1, 0, 1)):
            B[min(max(s + step, 0), n - 1), s, u] = 1.0
    I = inductive_matrix([np.eye(n)[4]], [B], 0.5, depth=4)[0]
    np.testing.assert_array_equal(I, [[0, 0, 0, 0, 1], [0, 0, 0, 1, 1], [0, 0, 1, 1, 1], [0, 1, 1, 1, 1]])
    log_eps = np.log(1e-3)
    qs = [np.eye(n)[1]]  # three steps from the goal: the next state must be within two
    np.testing.assert_allclose(inductive_value(qs, [np.eye(n)], [I]), [log_eps, log_eps, 0, 0, 0])
    # no route to the goal within the depth: the term is off
    assert inductive_value([np.eye(n)[0]], [np.eye(n)], [I]).tolist() == [0.0] * n
    # at the goal, leaving it costs
    np.testing.assert_allclose(inductive_value([np.eye(n)[4]], [np.eye(n)], [I]), [log_eps] * 4 + [0])


def test_factor_with_dependencies_is_traced_through_any_state_of_the_others():
    rng = np.random.default_rng(3)
    model = random_model(rng, [2, 3], [2], num_controls=[2, 2], B_dependencies=[[0], [0, 1]],
                         concentration=0.3)
    H = [np.array([1.0, 0.0]), np.array([0.0, 0.0, 1.0])]
    I = inductive_matrix(H, model.B, 0.2, 3, B_dependencies=model.B_dependencies)
    # factor 1's B is (S1', S0, S1, U1): reduce over factor 0's states and the controls
    reduced = (model.B[1] > 0.2).any(axis=1).astype(float)  # (S1', S1, U1)
    np.testing.assert_array_equal(I[1], inductive_matrix([H[1]], [reduced], 0.5, 3)[0])


def test_bad_inputs_raise():
    B = np.ones((2, 2, 1)) / 2
    with pytest.raises(ParameterError, match="depth"):
        inductive_matrix([np.ones(2)], [B], 0.1, 0)
    with pytest.raises(ModelError, match=r"H\[0\] has shape"):
        inductive_matrix([np.ones(3)], [B], 0.1, 2)
    with pytest.raises(ModelError, match="B_dependencies"):
        inductive_matrix([np.ones(2)], [np.ones((2, 2, 2, 1)) / 2], 0.1, 2)


def test_legacy_backwards_induction_agrees_on_the_graph_world_but_runs_forwards(graph_world):
    """pymdp.legacy's ``backwards_induction`` propagates I with ``b[next, state] @ I`` (the successors of
    the goal), pymdp 1.0 and aif with its transpose (the predecessors). On the graph world, whose moves can
    be undone, the two agree; on one-way dynamics only the predecessors find the routes to the goal."""
    from pymdp.legacy.control import backwards_induction

    model = graph_world
    L, K = model.num_states
    for goal in range(L):
        H = [np.eye(L)[goal], np.zeros(K)]
        legacy = backwards_induction(H, model.B, model.B_dependencies, 0.5, 5)
        for f in range(2):
            np.testing.assert_array_equal(inductive_matrix(H, model.B, 0.5, 5)[f], legacy[f])
    n = 4
    B = np.zeros((n, n, 2))
    B[np.minimum(np.arange(n) + 1, n - 1), np.arange(n), 0] = 1.0  # step right
    B[np.arange(n), np.arange(n), 1] = 1.0  # stay
    H = [np.eye(n)[n - 1]]
    np.testing.assert_array_equal(inductive_matrix(H, [B], 0.5, n)[0], np.tril(np.ones((n, n)))[:, ::-1])
    assert backwards_induction(H, [B], [[0]], 0.5, n)[0][:, :-1].sum() == 0


def _learnable_corridor():
    """Three states in a row; the goal is state 2. Moving right (action 1) from state 1 succeeds with probability
    0.05 in the agent's prior counts (below the threshold 0.1), but always in the world."""
    B = np.zeros((3, 3, 2))
    B[:, :, 0] = np.eye(3)
    B[:, :, 1] = [[0, 0, 0], [1, 0.95, 0], [0, 0.05, 1]]
    pB = [B * 20 + 1e-3]
    return GenerativeModel(A=[np.eye(3)], B=[pB[0] / pB[0].sum(0)], C=[np.zeros(3)], D=[np.array([0.0, 1.0, 0.0])],
                           pB=pB)


def _move_right(agent, qs, rng):
    """A policy search that chooses action 1 (the policies are the one-step actions 0 and 1)."""
    return np.array([0.0, 1.0]), None, {}


def test_an_agent_learning_B_makes_the_inductive_matrix_again_from_the_learned_B():
    """pymdp 1.0's test_b_learning_updates_inductive_matrix: after B learning, I is generate_I_matrix of the learned
    B (pymdp's Agent does it in infer_parameters; an aif Agent after each online update and after learn())."""
    import aif

    model = _learnable_corridor()
    H = [np.array([0.0, 0.0, 1.0])]
    term = InductiveCost.from_goals(model, H, depth=3, threshold=0.1)
    before = term.I[0].copy()
    np.testing.assert_array_equal(before[1], [0, 0, 1])  # state 1 is not seen to reach the goal in one step
    for online in (True, False):
        agent = aif.Agent(model, efe_terms=(*aif.DEFAULT_TERMS, term), learning=aif.Learning(
            learn_A=False, learn_B=True, lr=50.0, online=online))
        agent.infer_states([1])
        agent.infer_policies(search=_move_right)  # move right from state 1, and see the goal
        agent.sample_action()
        agent.infer_states([2])
        if not online:
            agent.learn()
        (learned,) = [t for t in agent.efe_terms if isinstance(t, InductiveCost)]
        expected = inductive_matrix(H, agent.model.B, 0.1, 3)
        np.testing.assert_array_equal(learned.I[0], expected[0])
        assert not np.array_equal(learned.I[0], before)  # the learned transition now counts
        assert learned.epsilon == term.epsilon and learned.depth == 3
    # a term given its I is not made again
    fixed = InductiveCost(term.I)
    assert fixed.for_model(agent.model) is fixed


def test_a_torch_agent_learning_B_makes_the_inductive_matrix_again():
    torch = pytest.importorskip("torch")
    import aif
    import aif_deep
    from aif.errors import StrategyError

    model = _learnable_corridor()
    H = [np.array([0.0, 0.0, 1.0])]
    term = InductiveCost.from_goals(model, H, depth=3, threshold=0.1)
    tm = aif_deep.TabularModel.from_aif(model, dtype=torch.float64)
    agent = aif_deep.Agent(tm, efe_terms=(*aif.DEFAULT_TERMS, term),
                           learning=aif.Learning(learn_A=False, learn_B=True, lr=50.0))
    agent.infer_states([1])
    agent.infer_policies(search=lambda a, qs, rng: (torch.tensor([0.0, 1.0], dtype=torch.float64), None, {}))
    assert int(agent.sample_action()[0]) == 1
    agent.infer_states([2])
    (learned,) = [t for t in agent.efe_terms if isinstance(t, InductiveCost)]
    np.testing.assert_array_equal(learned.I[0], inductive_matrix(H, agent.model.to_aif().B, 0.1, 3)[0])
    assert not np.array_equal(learned.I[0], term.I[0])
    with pytest.raises(StrategyError, match="runs for one agent"):
        aif_deep.Agent(tm, batch_shape=(2,), efe_terms=(*aif.DEFAULT_TERMS, term),
                       learning=aif.Learning(learn_A=False, learn_B=True))
