"""aif.actions.ActionFactors against pymdp 1.0's Agent with ``B_action_dependencies`` (a state factor driven by
several action factors or by none, an action factor driving several state factors): the flattened B, the policies,
encoding and decoding actions, on random structures and pymdp's example notebook; an ``aif.Agent.pymdp`` on the
flattened model against pymdp 1.0's Agent step by step (q(pi), G, the probabilities of the first actions, the
decoded action, the next prior); properties; errors."""

import itertools
from types import SimpleNamespace

import numpy as np
import pytest

import aif
from aif.actions import ActionFactors
from aif.errors import ModelError, ParameterError, PolicyError, StrategyError

TOL = 1e-12


@pytest.fixture(scope="module")
def pymdp1():
    """pymdp 1.0's Agent and control module, with float64 JAX."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    from pymdp import control
    from pymdp.agent import Agent
    return Agent, control


def columns(rng, shape):
    x = rng.random(shape) + 0.05
    return x / x.sum(axis=0)


def random_structure(rng):
    """1-3 state factors (each depending on itself first, then others), 1-3 action factors each driving 1 or more
    factors (so a factor may be driven by several or by none), 1-2 modalities."""
    nf, nk = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    num_states = [int(n) for n in rng.integers(2, 4, size=nf)]
    num_controls = [int(u) for u in rng.integers(1, 4, size=nk)]
    drives: list[list[int]] = [[] for _ in range(nf)]
    for c in range(nk):
        for f in rng.choice(nf, size=rng.integers(1, nf + 1), replace=False):
            drives[f].append(c)
    B_action_dependencies = [[d[i] for i in rng.permutation(len(d))] for d in drives]
    B_dependencies = [[f] + [int(g) for g in rng.permutation([g for g in range(nf) if g != f])[:rng.integers(0, nf)]]
                      for f in range(nf)]
    A_dependencies = [sorted(int(f) for f in rng.choice(nf, size=rng.integers(1, nf + 1), replace=False))
                      for _ in range(int(rng.integers(1, 3)))]
    return dict(num_states=num_states, num_controls=num_controls, B_action_dependencies=B_action_dependencies,
                B_dependencies=B_dependencies, A_dependencies=A_dependencies,
                num_obs=[int(n) for n in rng.integers(2, 4, size=len(A_dependencies))])


def random_arrays(rng, s):
    """A, B (action axes per action factor, pymdp's layout), C, D for a structure ``s``."""
    S, U = s["num_states"], s["num_controls"]
    A = [columns(rng, (n, *(S[f] for f in deps))) for n, deps in zip(s["num_obs"], s["A_dependencies"], strict=True)]
    B = [columns(rng, (S[f], *(S[g] for g in deps), *(U[c] for c in acts)))
         for f, (deps, acts) in enumerate(zip(s["B_dependencies"], s["B_action_dependencies"], strict=True))]
    return A, B, [rng.normal(size=a.shape[0]) for a in A], [columns(rng, (n,)) for n in S]


def pymdp_flattening(Agent, control, num_controls, B_action_dependencies, B, pB, policy_len):
    """What pymdp 1.0's Agent(B, pB=, B_action_dependencies=, num_controls=, policy_len=) builds from them, by the
    functions its constructor calls (_flatten_B_action_dims, control._construct_policies_tuple,
    _construct_flattend_policies_tuple), on a stand-in for the Agent with the one attribute they read; building the
    Agent itself compiles some thirty small JAX programs. Returns B, pB, the action-factor policies and pymdp's
    policies (agent.policies)."""
    shell = SimpleNamespace(num_controls_multi=num_controls)
    B_flat, pB_flat, action_maps = Agent._flatten_B_action_dims(shell, B, pB, B_action_dependencies)
    multi = control._construct_policies_tuple(num_controls, num_controls, policy_len, None)
    flat = Agent._construct_flattend_policies_tuple(shell, multi, action_maps)
    return B_flat, pB_flat, np.asarray(multi), np.asarray(flat)


def compare_structure(Agent, control, actions, B, policy_len):
    """Flattened B and pB, the policies, and encode / decode of every policy against pymdp 1.0's (its
    encode_multi_actions / decode_multi_actions are compared in test_agent_matches_pymdp_agent_over_steps, compiled:
    eager JAX compiles each small operation for each shape); returns max |diff| of B and pB."""
    pB = [5.0 * b for b in B]
    B_flat, pB_flat, multi, flat = pymdp_flattening(Agent, control, list(actions.num_controls),
                                                    [list(d) for d in actions.B_action_dependencies], B, pB, policy_len)
    worst = 0.0
    for ours, theirs in itertools.chain(zip(actions.flatten_B(B), B_flat, strict=True),
                                        zip(actions.flatten_B(pB), pB_flat, strict=True)):
        assert ours.shape == np.shape(theirs)
        worst = max(worst, float(np.abs(ours - np.asarray(theirs)).max()))
    assert actions.factor_controls == [b.shape[-1] for b in B_flat]
    np.testing.assert_array_equal(actions.policies(policy_len), flat)
    np.testing.assert_array_equal(actions.encode(multi), flat)
    np.testing.assert_array_equal(actions.decode(flat), multi)
    return worst


def test_random_structures_match_pymdp(pymdp1):
    Agent, control = pymdp1
    rng = np.random.default_rng(0)
    worst, seen = 0.0, set()  # which of the three cases the structures covered
    for _ in range(12):
        s = random_structure(rng)
        A, B, C, D = random_arrays(rng, s)
        actions = ActionFactors(s["num_controls"], s["B_action_dependencies"])
        worst = max(worst, compare_structure(Agent, control, actions, B, policy_len=int(rng.integers(1, 3))))
        aif.GenerativeModel(A=A, B=actions.flatten_B(B), C=C, D=D, A_dependencies=s["A_dependencies"],
                            B_dependencies=s["B_dependencies"])  # a valid model
        deps = actions.B_action_dependencies
        seen |= {case for case, hit in (
            ("several", any(len(d) > 1 for d in deps)), ("none", any(not d for d in deps)),
            ("shared", any(sum(c in d for d in deps) > 1 for c in range(actions.num_action_factors)))) if hit}
    print("pymdp 1.0 flattened B and pB on 12 random structures, max |diff|:", worst)
    assert worst == 0.0 and seen == {"several", "none", "shared"}


def notebook_B(action_dims):
    """examples/advanced/complex_action_dependency.ipynb: every factor moves A -> B -> C -> D -> D, whatever the
    actions, ``(4, 4, *action_dims)``."""
    move = np.zeros((4, 4))
    move[[1, 2, 3, 3], [0, 1, 2, 3]] = 1.0
    return np.broadcast_to(move.reshape(4, 4, *(1,) * len(action_dims)), (4, 4, *action_dims)).copy()


@pytest.mark.parametrize("deps", [[[0, 1], [0]], [[0, 1], []]])
def test_pymdp_notebook_models_match(pymdp1, deps):
    """pymdp's complex_action_dependency notebook: controls c1 (2) and c2 (3); s1 driven by both, s2 by c1 or by
    none. Flattened control dims [6, 2] / [6, 1] as the notebook prints."""
    Agent, control = pymdp1
    actions = ActionFactors([2, 3], deps)
    B = [notebook_B([[2, 3][c] for c in d]) for d in deps]
    assert compare_structure(Agent, control, actions, B, policy_len=2) == 0.0
    assert actions.factor_controls == ([6, 2] if deps[1] else [6, 1])
    assert [b.shape for b in actions.flatten_B(B)] == [(4, 4, 6), (4, 4, deps[1] and 2 or 1)]


# ----------------------------------------------------------------------------------------------------------
# An aif.Agent on the flattened model against pymdp 1.0's Agent, step by step

# pymdp's test_agent_jax.py structure: factor 0 driven by no action, action 0 drives factors 1 and 2, which are
# each driven by two actions; factor 1 depends on all three factors.
STRUCTURE = dict(num_states=[3, 2, 2], num_controls=[2, 3, 2], B_action_dependencies=[[], [0, 1], [0, 2]],
                 B_dependencies=[[0], [0, 1, 2], [2]], A_dependencies=[[0, 1], [1, 2]], num_obs=[3, 2])


def test_agent_matches_pymdp_agent_over_steps(pymdp1, monkeypatch):
    """Three random models of STRUCTURE, five steps each of random observations, policy horizon 2 (144 policies):
    q(pi) and G, multiaction_probabilities, the chosen action, decoded and encoded again, and the next prior equal
    pymdp 1.0's."""
    Agent, _ = pymdp1
    import equinox as eqx
    import jax.numpy as jnp

    # pymdp's Agent checks its arrays in _validate, compiling some thirty small JAX programs (seconds of the test's
    # budget); the model passed here is checked by aif.GenerativeModel instead. Nothing else of the Agent changes.
    monkeypatch.setattr(Agent, "_validate", lambda self: None)

    @eqx.filter_jit  # one compilation for the structure; the models' arrays are its arguments
    def pymdp_step(agent, obs, prior):
        qs = agent.infer_states(obs, prior)
        q_pi, neg_efe = agent.infer_policies(qs)
        action = agent.sample_action(q_pi)
        multi = agent.decode_multi_actions(action)
        return (q_pi, neg_efe, agent.multiaction_probabilities(q_pi), agent.unique_multiactions, action, multi,
                agent.encode_multi_actions(multi), agent.update_empirical_prior(action, qs))

    s, H = STRUCTURE, 2
    actions = ActionFactors(s["num_controls"], s["B_action_dependencies"])
    rng = np.random.default_rng(1)
    reference, worst = None, 0.0
    for _ in range(3):
        A, B, C, D = random_arrays(rng, s)
        if reference is None:
            reference = Agent([jnp.asarray(a) for a in A], [jnp.asarray(b) for b in B], C=[jnp.asarray(c) for c in C],
                              D=[jnp.asarray(d) for d in D], A_dependencies=s["A_dependencies"],
                              B_dependencies=s["B_dependencies"], B_action_dependencies=s["B_action_dependencies"],
                              num_controls=s["num_controls"], policy_len=H)
        else:  # the next model in the same Agent (batch of 1), B flattened by pymdp
            B_flat = reference._flatten_B_action_dims([jnp.asarray(b) for b in B], None, s["B_action_dependencies"])[0]
            reference = eqx.tree_at(lambda ag: (ag.A, ag.B, ag.C, ag.D), reference,
                                    tuple([jnp.asarray(x)[None] for x in xs] for xs in (A, B_flat, C, D)))
        model = aif.GenerativeModel(A=A, B=actions.flatten_B(B), C=C, D=D, A_dependencies=s["A_dependencies"],
                                    B_dependencies=s["B_dependencies"])
        agent = aif.Agent.pymdp(model, policies=actions.policies(H))
        prior = reference.D
        for _ in range(5):
            obs = [int(rng.integers(a.shape[0])) for a in A]
            q_pi, neg_efe, probs, unique, action, multi, encoded, prior = pymdp_step(
                reference, [jnp.array([[o]]) for o in obs], prior)
            agent.infer_states(obs)
            ours_q, G = agent.infer_policies()
            ours_action = agent.sample_action()
            table = actions.multiaction_probabilities(ours_q, agent.policies)
            unique = np.asarray(unique)
            listed = unique[(unique >= 0).all(axis=1)]  # pymdp pads its distinct first actions with -1
            assert len(listed) == table.size
            theirs = np.asarray(probs)[0, :len(listed)]
            diffs = [np.abs(ours_q - np.asarray(q_pi)[0]).max(), np.abs(G + np.asarray(neg_efe)[0]).max(),
                     np.abs(table[tuple(actions.decode(listed).T)] - theirs).max(),
                     max(np.abs(p - np.asarray(r)[0]).max() for p, r in zip(agent.prior, prior, strict=True))]
            worst = max(worst, *map(float, diffs))
            np.testing.assert_array_equal(ours_action, np.asarray(action)[0])
            np.testing.assert_array_equal(actions.decode(ours_action), np.asarray(multi)[0])
            np.testing.assert_array_equal(actions.encode(np.asarray(multi)[0]), np.asarray(encoded)[0])
            np.testing.assert_allclose(np.asarray(probs)[0, len(listed):], 0.0)
    print("pymdp 1.0 Agent with B_action_dependencies, 3 models x 5 steps: max |diff| of q(pi), G, "
          "multiaction probabilities, next prior:", worst)
    assert worst < TOL


# ----------------------------------------------------------------------------------------------------------
# Properties


def test_encode_decode_marginals_properties():
    """decode inverts encode on every joint action; the joint probabilities sum to 1 and their sums over the other
    action factors are action_marginals; a factor driven by no action gets action 0 and a control axis of 1."""
    rng = np.random.default_rng(2)
    for _ in range(10):
        s = random_structure(rng)
        actions = ActionFactors(s["num_controls"], s["B_action_dependencies"])
        every = aif.enumerate_policies(actions.num_controls, 1)[:, 0]  # (prod num_controls, K)
        flat = actions.encode(every)
        np.testing.assert_array_equal(actions.decode(flat), every)
        assert len({tuple(u) for u in flat}) == len(every)  # distinct per-factor actions
        assert all((flat[:, f] == 0).all() for f, d in enumerate(actions.B_action_dependencies) if not d)
        policies = actions.policies(2)
        q_pi = rng.dirichlet(np.ones(len(policies)))
        joint = actions.multiaction_probabilities(q_pi, policies)
        assert joint.shape == actions.num_controls and np.isclose(joint.sum(), 1.0)
        for c, p in enumerate(actions.action_marginals(q_pi, policies)):
            np.testing.assert_allclose(p, joint.sum(axis=tuple(k for k in range(joint.ndim) if k != c)), atol=1e-15)
        brute = np.zeros(joint.shape)
        for q, pi in zip(q_pi, policies, strict=True):
            brute[tuple(actions.decode(pi[0]))] += q
        np.testing.assert_allclose(joint, brute, atol=1e-15)


def test_no_action_factors():
    """Nothing controlled: one policy of zeros, B gets a control axis of 1, the joint probability is a scalar 1."""
    actions = ActionFactors([], [[], []])
    policies = actions.policies(3)
    np.testing.assert_array_equal(policies, np.zeros((1, 3, 2), dtype=int))
    assert [b.shape for b in actions.flatten_B([np.eye(2), np.ones((3, 3, 2)) / 3])] == [(2, 2, 1), (3, 3, 2, 1)]
    assert actions.multiaction_probabilities([1.0], policies) == 1.0
    assert actions.decode([0, 0]).shape == (0,) and actions.action_marginals([1.0], policies) == []


# ----------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("num_controls, deps, names, message", [
    ([2, 3], [[0], [2]], None, r"B_action_dependencies\[1\] names action factor 2, but num_controls lists 2"),
    ([2, 3], [[0, 0], [1]], None, r"B_action_dependencies\[0\] = \[0, 0\] repeats an action factor"),
    ([2, 3], [[0], []], None, "action factor 1 drives no state factor"),
    ([2, 3], [[0], []], ["move", "eat"], "control 'eat' drives no state factor"),
    ([2, 0], [[0, 1]], None, r"num_controls\[1\] must be a positive integer, got 0"),
    ([2, 2.5], [[0, 1]], None, r"num_controls\[1\] must be a positive integer"),
    ([2], [], None, "one entry per state factor, got none"),
    ([2], [[0.5]], None, r"B_action_dependencies\[0\] must be a list of integer indices"),
    ([2, 3], [[0, 1]], ["move"], "names must be 2 strings"),
    (2, [[0]], None, "num_controls must be a list"),
])
def test_inconsistent_dependencies(num_controls, deps, names, message):
    with pytest.raises(ModelError, match=message):
        ActionFactors(num_controls, deps, names)


def test_shape_and_action_errors():
    actions = ActionFactors([2, 3], [[0, 1], [0], []])
    good = [np.full((2, 2, 2, 3), 0.5), np.full((2, 2, 2), 0.5), np.full((2, 2), 0.5)]
    with pytest.raises(ModelError, match="B has 2 arrays but B_action_dependencies has 3 entries"):
        actions.flatten_B(good[:2])
    with pytest.raises(ModelError, match=r"B\[0\] has shape \(2, 2, 3, 2\), expected \(S_0, \*S_deps, 2, 3\)"):
        actions.flatten_B([np.full((2, 2, 3, 2), 0.5), *good[1:]])
    with pytest.raises(ModelError, match=r"B\[1\] has shape \(2, 2, 3\), expected \(S_1, \*S_deps, 2\)"):
        actions.flatten_B([good[0], np.full((2, 2, 3), 0.5), good[2]])
    with pytest.raises(ModelError, match=r"B\[0\] has shape \(3,\), expected \(S_0, \*S_deps, 2, 3\)"):
        actions.flatten_B([np.full(3, 1 / 3), *good[1:]])
    # a factor whose next state depends on no state: (S_f, *U) -> (S_f, prod U), a model aif accepts
    assert actions.flatten_B([np.full((2, 2, 3), 0.5), *good[1:]])[0].shape == (2, 6)
    with pytest.raises(ModelError, match="single array"):
        actions.flatten_B(good[0])
    with pytest.raises(PolicyError, match=r"actions\[1\] = 3 is out of range for action factor 1, which has 3"):
        actions.encode([0, 3])
    with pytest.raises(PolicyError, match=r"actions must be integers of shape \(\.\.\., 2\)"):
        actions.encode([0.0, 1.0])
    with pytest.raises(PolicyError, match=r"action\[2\] = 1 is out of range for state factor 2, which has 1"):
        actions.decode([0, 0, 1])
    # factor 0 takes (1, 2), factor 1 takes 0 of the shared action factor 0; second in a batch
    with pytest.raises(PolicyError, match=r"action\[1\] takes actions 1 and 0 of action factor 0: state factors 0 "
                                          r"and 1"):
        actions.decode([[5, 1, 0], [5, 0, 0]])
    policies = actions.policies(1)
    with pytest.raises(PolicyError, match=r"q_pi has shape \(3,\) but policies has shape \(6, 1, 3\)"):
        actions.multiaction_probabilities(np.ones(3) / 3, policies)
    with pytest.raises(ParameterError, match="q_pi is not a probability vector: it sums to 2"):
        actions.multiaction_probabilities(np.full(6, 1 / 3), policies)
    with pytest.raises(PolicyError, match=r"action\[0\] takes actions 0 and 1 of action factor 0"):
        actions.action_marginals([1.0], np.array([[[0, 1, 0]]]))  # per-factor enumeration can break a shared action


def test_agents_take_action_factors_and_decode_their_actions():
    """``Agent(actions=ActionFactors(...))`` in both packages: its policies, full-posterior selection and
    ``multi_action`` (one action per action factor), the same as passing ``actions.policies(H)`` and decoding."""
    torch = pytest.importorskip("torch")
    import aif_deep

    rng = np.random.default_rng(7)
    s = dict(num_states=[3, 2, 2], num_controls=[2, 3], B_action_dependencies=[[0, 1], [], [1]],
             B_dependencies=[[0], [1], [2, 0]], A_dependencies=[[0, 1], [2]], num_obs=[3, 2])
    A, B, C, D = random_arrays(rng, s)
    actions = ActionFactors(s["num_controls"], s["B_action_dependencies"])
    model = aif.GenerativeModel(A=A, B=actions.flatten_B(B), C=C, D=D, A_dependencies=s["A_dependencies"],
                                B_dependencies=s["B_dependencies"])
    agent = aif.Agent.pymdp(model, policy_horizon=2, actions=actions)
    plain = aif.Agent.pymdp(model, policies=actions.policies(2))
    deep = aif_deep.Agent.pymdp(aif_deep.TabularModel.from_aif(model, dtype=torch.float64), policy_horizon=2,
                                actions=actions, batch_shape=(2,))
    assert np.array_equal(agent.policies, plain.policies) and np.array_equal(deep.policies, plain.policies)
    for obs in ([0, 1], [2, 0], [1, 1]):
        action = agent.step(obs)
        assert np.array_equal(action, plain.step(obs))
        assert np.array_equal(agent.multi_action, actions.decode(action)) and agent.multi_action.shape == (2,)
        deep.step([np.array([o, o]) for o in obs])
        assert np.array_equal(deep.multi_action, np.stack([agent.multi_action] * 2))
    with pytest.raises(ParameterError, match="full posterior"):
        aif.Agent(model, actions=actions, selection=aif.Selection(sampling="marginal"))
    with pytest.raises(ModelError, match="flatten_B"):
        aif.Agent(aif.random_model(rng, [3, 2, 2], [3], [2, 1, 2]), actions=actions)
    with pytest.raises(StrategyError, match="ActionFactors"):
        aif_deep.Agent(aif_deep.TabularModel.from_aif(model), actions=[[0, 1], [], [1]])  # type: ignore[arg-type]
