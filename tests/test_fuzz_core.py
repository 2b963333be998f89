"""Fuzz: the rest of ``aif``'s exported API (planners, sequence inference, learning, files, rollouts,
environments, plots, model construction) driven with malformed inputs, as ``tests/test_fuzz.py`` does for the
cycle's functions.

Each case starts from a valid call and replaces one argument by a malformed value drawn by hypothesis. The call
must return a finite result or raise the library's error (``AifError``); a raw NumPy, Python or Gymnasium error
fails the test. File cases may also raise ``OSError`` (a missing file or folder is the operating system's word).
The regression tests at the end pin the bugs this fuzzing found.
"""

import matplotlib
import numpy as np
import pytest
from _fuzz import check, fuzz_settings, run
from hypothesis import given
from hypothesis import strategies as st

import aif
import aif.plotting
from aif import envs, io, planning
from aif.errors import BeliefError, ModelError, ParameterError, PolicyError, StrategyError
from aif.rollout import rollout

matplotlib.use("Agg")

SETTINGS = fuzz_settings(20)

MODEL = aif.random_model(np.random.default_rng(0), [3, 2], [3, 2], [2, 2], [[0, 1], [1]], [[0], [1]],
                         dirichlet=True)
QS = [np.array([0.2, 0.3, 0.5]), np.array([0.6, 0.4])]
POLICIES = aif.enumerate_policies(MODEL.num_controls, 1)
FUTURE = [np.tile(q, (len(POLICIES), 2, 1)) for q in QS]  # (P, 2, S_f): the present and one step

BAD_SCALARS = [np.nan, np.inf, -np.inf, -1.0, 0.0, 1e308, 2.5, -3, 10**6, "x", None, True, [], [0, 1]]
BIG = (10**6, 1e308)  # sizes that would run for ever: refused or skipped, not run
bad_scalar = st.sampled_from(BAD_SCALARS)
bad_small = st.sampled_from([s for s in BAD_SCALARS if not (isinstance(s, (int, float)) and s in BIG)])


def bad_array(shape):
    """A malformed array of intended ``shape`` whose entries are non-negative and sum to 1 along axis 0."""
    n = shape[0]
    good = np.full(shape, 1.0 / n)
    return st.one_of(
        bad_scalar,
        st.builds(lambda v: np.where(np.arange(good.size).reshape(shape) == 0, v, good),
                  st.sampled_from([np.nan, np.inf, -0.5, 2.0, 0.0])),
        st.just(good[:-1]), st.just(np.full((n + 1, *shape[1:]), 1.0 / (n + 1))), st.just(good[None]),
        st.just(np.ones(shape, int)), st.just(np.full(shape, "a")), st.just(np.zeros(shape)))


def bad_vector(n):
    return bad_array((n,))


def bad_beliefs():
    return st.one_of(bad_scalar, st.builds(lambda q: [q, QS[1]], bad_vector(3)),
                     st.builds(lambda q: [QS[0], q], bad_vector(2)), st.just([QS[0]]), st.just([*QS, QS[1]]))


def bad_list(n):
    """A malformed list of ``n`` indices or sizes."""
    return st.one_of(bad_scalar, st.just([0.5] * n), st.just(["a"] * n), st.just([-1] * n), st.just([0] * n),
                     st.just([5] * n), st.just([[0]] * n), st.just([None] * n), st.just([0] * (n + 1)))


def bad_deps():
    return st.one_of(bad_scalar, st.just([[0, 1]]), st.just([[5], [1]]), st.just([[0, 0], [1]]), st.just([0, 1]),
                     st.just([["a"], [1]]), st.just([[0.5], [1]]), st.just([None, [1]]), st.just([[], [1]]))


def bad_cell():
    return st.one_of(bad_scalar, st.sampled_from([(9, 0), (0, -1), (0.5, 1), ("a", 0), (0, 0, 0), (0,), (None, 1),
                                                  (np.nan, 0), (1e308, 0)]))


def _unless_big(*values):
    if any(isinstance(v, (int, float)) and not isinstance(v, bool) and v in BIG for v in values):
        pytest.skip("a size that would run for ever")


# ----------------------------------------------------------------------------------------------------------
# Planners

def _plan(planner, model=MODEL, qs=QS):
    return planner.plan(model, qs, np.random.default_rng(0))


def _sophisticated(kwargs):
    planner = planning.SophisticatedInference(**kwargs)
    return _plan(planner) if planner.depth <= 3 else None


def _soft_q(kwargs):
    planner = planning.SoftQPlanner(**kwargs)
    return _plan(planner) if planner.horizon <= 4 else None


def _enumeration(kwargs):
    planner = planning.PolicyEnumeration(**kwargs)
    return _plan(planner) if planner.policies is not None or planner.horizon <= 3 else None


SOPHISTICATED = st.fixed_dictionaries({}, optional={
    "depth": bad_scalar, "policy_prune_threshold": bad_scalar, "observation_prune_threshold": bad_scalar,
    "prune_penalty": bad_scalar, "gamma": bad_scalar, "entropy_stop_threshold": bad_scalar,
    "max_branching": bad_scalar, "topk_outcomes": bad_scalar, "control_factors": bad_list(1),
    "efe_terms": st.sampled_from(["utility", (), [None], (aif.Novelty("B"),)]),
    "inference": st.sampled_from(["x", aif.FixedPoint, None, aif.MarginalMessagePassing()]),
    "options": st.sampled_from(["x", None, aif.Guards()])})
SOFT_Q = st.fixed_dictionaries({}, optional={"horizon": bad_scalar, "mode": st.sampled_from(["x", None, 1, "EXACT"])})
ENUMERATION = st.fixed_dictionaries({}, optional={
    "horizon": bad_scalar, "control_factors": bad_list(1), "policies": st.one_of(bad_scalar, st.just(np.zeros((2, 1, 3),
                                                                                                       int))),
    "efe_terms": st.sampled_from(["utility", (), [None]]), "options": st.sampled_from(["x", None])})
PLANNERS = [planning.SophisticatedInference(depth=2), planning.SoftQPlanner(horizon=2), planning.PolicyEnumeration()]
BAD_MODELS = st.sampled_from([None, "model", 3, [MODEL], MODEL.A, aif.random_model(np.random.default_rng(1), [4], [2])])

CASES = {
    "SophisticatedInference.settings": (SOPHISTICATED, _sophisticated),
    "SoftQPlanner.settings": (SOFT_Q, _soft_q),
    "PolicyEnumeration.settings": (ENUMERATION, _enumeration),
    "planners.plan.qs": (st.tuples(st.sampled_from(PLANNERS), bad_beliefs()), lambda a: _plan(a[0], qs=a[1])),
    "planners.plan.model": (st.tuples(st.sampled_from(PLANNERS), BAD_MODELS), lambda a: _plan(a[0], model=a[1])),
    "inductive_matrix.H": (st.one_of(bad_beliefs(), st.just([np.ones(3), np.ones(2)])),
                           lambda H: planning.inductive_matrix(H, MODEL.B, 0.5, 2)),
    "inductive_matrix.B": (st.one_of(bad_scalar, st.builds(lambda b: [b, MODEL.B[1]], bad_array((3, 3, 2)))),
                           lambda B: planning.inductive_matrix([np.eye(3)[0], np.zeros(2)], B, 0.5, 2)),
    "inductive_matrix.threshold_depth": (st.tuples(bad_scalar, st.sampled_from([1, 2])),
                                         lambda a: planning.inductive_matrix([np.eye(3)[0], np.zeros(2)], MODEL.B,
                                                                             *a)),
    "inductive_matrix.depth": (bad_small, lambda d: planning.inductive_matrix([np.eye(3)[0], np.zeros(2)], MODEL.B,
                                                                              0.5, d)),
    "inductive_matrix.B_dependencies": (bad_deps(), lambda d: planning.inductive_matrix(
        [np.eye(3)[0], np.zeros(2)], MODEL.B, 0.5, 2, d)),
    "InductiveCost": (st.tuples(st.one_of(bad_scalar, st.just([np.ones((2, 3))])), bad_scalar),
                      lambda a: aif.expected_free_energy(MODEL, QS, POLICIES, (aif.Utility(), aif.InductiveCost(*a)))),
    "soft_value_iteration.B": (bad_array((3, 3, 2)), lambda B: planning.soft_value_iteration(B, np.zeros(3), 2)),
    "soft_value_iteration.r": (bad_vector(3), lambda r: planning.soft_value_iteration(MODEL.B[0], r, 2)),
    "soft_value_iteration.horizon_mode": (st.tuples(bad_small, st.sampled_from(["exact", "x", None])),
                                          lambda a: planning.soft_value_iteration(MODEL.B[0], np.zeros(3), *a)),
    "soft_value_iteration.priors": (st.tuples(bad_array((2,)), bad_vector(3)), lambda a: planning.soft_value_iteration(
        MODEL.B[0], np.zeros(3), 2, "exact", *a)),
    "state_marginals": (st.tuples(st.one_of(bad_scalar, st.just(np.array([0, 5])), st.just(np.array([0.5]))),
                                  bad_vector(3)), lambda a: planning.state_marginals(MODEL.B[0], *a)),
    "forward_messages.initial": (bad_vector(3), lambda i: planning.forward_messages(MODEL.B[0], np.zeros(3), 2, i)),
    "optimal_state_marginals.initial": (bad_vector(3), lambda i: planning.optimal_state_marginals(
        MODEL.B[0], np.zeros(3), 2, i)),
    "joint_rewards.horizon": (bad_small, lambda h: planning.joint_rewards(MODEL, h)),
    "Plan": (st.tuples(bad_vector(4), st.one_of(bad_scalar, st.just(POLICIES)), bad_vector(2)),
             lambda a: planning.Plan(a[0], a[1], {}, a[2])),
}

# ----------------------------------------------------------------------------------------------------------
# Sequence inference and control

OBS_WINDOW = [[0, 1], [1, 0]]
ACTIONS = np.array([[0, 1]])
SEQ_POLICIES = aif.enumerate_policies(MODEL.num_controls, 1)


def _sequence(obs=OBS_WINDOW, actions=ACTIONS, policies=SEQ_POLICIES, prior=None, method=None):
    return aif.infer_sequence(MODEL, obs, actions, policies, prior, method)


def bad_window():
    return st.one_of(bad_scalar, st.just([]), st.just([[0, 1]]), st.just([[0, 1], [5, 0]]), st.just([0, 1]),
                     st.just([[0, 1], "ab"]), st.just([[0, 1], [0.5, 0]]), st.just([[0, 1], None]))


def bad_actions():
    return st.one_of(bad_scalar, st.just(np.array([[0, 5]])), st.just(np.array([[0.5, 0]])),
                     st.just(np.array([0, 1])), st.just(np.zeros((2, 2), int)), st.just([["a", 0]]))


SEQUENCE_METHODS = st.one_of(
    st.sampled_from(["mmp", aif.MarginalMessagePassing, aif.FixedPoint()]),
    st.tuples(st.sampled_from([aif.MarginalMessagePassing, aif.VariationalMessagePassing]),
              st.sampled_from(["num_iter", "tau", "guard"]), bad_small))

CASES.update({
    "infer_sequence.obs_window": (bad_window(), lambda o: _sequence(obs=o)),
    "infer_sequence.actions_window": (bad_actions(), lambda a: _sequence(actions=a)),
    "infer_sequence.policies": (st.one_of(bad_scalar, st.just(np.full((2, 1, 2), 5)),
                                          st.just(np.zeros((2, 1, 3), int))),
                                lambda p: _sequence(policies=p)),
    "infer_sequence.prior": (bad_beliefs(), lambda p: _sequence(prior=p)),
    "infer_sequence.method": (SEQUENCE_METHODS, lambda m: _sequence(method=m[0](**{m[1]: m[2]}) if isinstance(
        m, tuple) else m)),
    "sequence_expected_free_energy.qs_future": (st.one_of(bad_beliefs(), st.just([f[:, :1] for f in FUTURE]),
                                                          st.just([f * 2 for f in FUTURE])),
                                                lambda q: aif.sequence_expected_free_energy(MODEL, q, POLICIES)),
    "sequence_expected_free_energy.policies": (st.one_of(bad_scalar, st.just(np.full((4, 1, 2), 7))),
                                               lambda p: aif.sequence_expected_free_energy(MODEL, FUTURE, p)),
    "sequence_expected_free_energy.C_time": (bad_scalar, lambda c: aif.sequence_expected_free_energy(
        MODEL, FUTURE, POLICIES, C_time=c)),
    "sequence_policy_posterior.G": (bad_vector(4), lambda G: aif.sequence_policy_posterior(G, np.zeros(4))),
    "sequence_policy_posterior.F": (bad_vector(4), lambda F: aif.sequence_policy_posterior(np.zeros(4), F)),
    "sequence_policy_posterior.E_gamma_sign": (st.tuples(bad_vector(4), bad_scalar, st.sampled_from(["spm", "x", 1])),
                                               lambda a: aif.sequence_policy_posterior(np.zeros(4), np.zeros(4), *a)),
    "policy_average.qs_t": (st.one_of(bad_beliefs(), st.builds(lambda q: [q, np.tile(QS[1], (4, 1))],
                                                                bad_array((4, 3)))),
                            lambda q: aif.policy_average(q, np.full(4, 0.25))),
    "policy_average.q_pi": (bad_vector(4), lambda p: aif.policy_average([np.tile(q, (4, 1)) for q in QS], p)),
    "SequenceOptions": (st.fixed_dictionaries({}, optional={k: st.sampled_from(["x", None, 1]) for k in
                                                          ("prior", "vfe_sign", "C_time")}),
                        lambda kw: aif.SequenceOptions(**kw)),
})

# ----------------------------------------------------------------------------------------------------------
# Learning


def bad_counts(shapes):
    return st.one_of(bad_scalar, st.just(np.ones(shapes[0])), st.just([np.ones(shapes[0])]),
                     st.builds(lambda p: [p, *[np.ones(s) for s in shapes[1:]]], bad_array(shapes[0])))


PA_SHAPES = [p.shape for p in MODEL.pA]
PB_SHAPES = [p.shape for p in MODEL.pB]
PD_SHAPES = [p.shape for p in MODEL.pD]
ACTION = np.array([0, 1])

CASES.update({
    "update_A.pA": (bad_counts(PA_SHAPES), lambda p: aif.update_A(p, [0, 1], QS)),
    "update_A.settings": (st.tuples(bad_scalar, bad_deps(), bad_list(1), st.one_of(bad_scalar, bad_counts(PA_SHAPES))),
                          lambda a: aif.update_A(MODEL.pA, [0, 1], QS, 1.0, a[0], A_dependencies=None,
                                                 modalities=a[2], prior=a[3])),
    "update_A.A_dependencies": (bad_deps(), lambda d: aif.update_A(MODEL.pA, [0, 1], QS, A_dependencies=d)),
    "update_B.pB": (bad_counts(PB_SHAPES), lambda p: aif.update_B(p, QS, QS, ACTION)),
    "update_B.qs": (st.tuples(bad_beliefs(), st.booleans()),
                    lambda a: aif.update_B(MODEL.pB, a[0], QS, ACTION) if a[1] else aif.update_B(MODEL.pB, QS, a[0],
                                                                                                 ACTION)),
    "update_B.settings": (st.tuples(bad_scalar, bad_scalar, bad_list(1), st.one_of(bad_scalar, bad_counts(PB_SHAPES))),
                          lambda a: aif.update_B(MODEL.pB, QS, QS, ACTION, a[0], a[1], factors=a[2], prior=a[3])),
    "update_B.B_dependencies": (bad_deps(), lambda d: aif.update_B(MODEL.pB, QS, QS, ACTION, B_dependencies=d)),
    "update_D": (st.tuples(bad_counts(PD_SHAPES), bad_beliefs(), bad_scalar, bad_list(1)),
                 lambda a: aif.update_D(a[0], QS) if isinstance(a[0], str) else aif.update_D(MODEL.pD, a[1], a[2])),
    "update_D.settings": (st.tuples(bad_scalar, bad_list(1), st.one_of(bad_scalar, bad_counts(PD_SHAPES))),
                          lambda a: aif.update_D(MODEL.pD, QS, 1.0, a[0], factors=a[1], prior=a[2])),
    "reduce_dirichlet": (st.tuples(st.sampled_from([0, 1, 2]), bad_array((3, 2))),
                         lambda a: aif.reduce_dirichlet(*[a[1] if i == a[0] else np.ones((3, 2)) for i in range(3)])),
    "Learning": (st.fixed_dictionaries({}, optional={"lr": bad_scalar, "forgetting": bad_scalar}),
                 lambda kw: aif.Learning(**kw)),
    "WNorm.spm_wnorm": (st.tuples(st.one_of(bad_scalar, st.just(0.1)), bad_array((3, 2))),
                        lambda a: aif.spm_wnorm(a[1] + 0 if isinstance(a[1], np.ndarray) and a[1].dtype.kind in "fi"
                                                else a[1], aif.WNorm(eps=a[0]))),
    "spm_wnorm.a": (bad_array((3, 2)), lambda a: aif.spm_wnorm(a)),
    "pA_info_gain": (st.tuples(bad_counts(PA_SHAPES), bad_beliefs()),
                     lambda a: aif.pA_info_gain(a[0], [np.tile(q, (2, 1)) for q in QS]) if not isinstance(a[1], list)
                     else aif.pA_info_gain(MODEL.pA, a[1])),
    "pB_info_gain": (st.tuples(bad_counts(PB_SHAPES), st.one_of(bad_scalar, st.just(np.array([[0, 5]])))),
                     lambda a: aif.pB_info_gain(a[0], [q[None] for q in QS], [q[None] for q in QS], np.array([[0, 1]]))
                     if not isinstance(a[0], float) else aif.pB_info_gain(MODEL.pB, [q[None] for q in QS],
                                                                          [q[None] for q in QS], a[1])),
})

# ----------------------------------------------------------------------------------------------------------
# Model construction, evidence and log guards

A0, B0 = MODEL.A, MODEL.B
CASES.update({
    "GenerativeModel.A": (bad_array((3, 3, 2)), lambda a: aif.GenerativeModel([a, A0[1]], B0)),
    "GenerativeModel.B": (bad_array((2, 2, 2)), lambda b: aif.GenerativeModel(A0, [B0[0], b])),
    "GenerativeModel.C_D": (st.tuples(st.sampled_from(["C", "D", "E"]), bad_vector(3)),
                            lambda a: aif.GenerativeModel(A0, B0, **{a[0]: a[1] if a[0] == "E" else [a[1], None]})),
    "GenerativeModel.lists": (st.tuples(st.sampled_from(["A", "B", "C", "D", "pA", "pB", "pD"]),
                                        st.one_of(bad_scalar, st.just(np.ones(3)), st.just([np.ones(3)]))),
                              lambda a: aif.GenerativeModel(**{"A": A0, "B": B0, a[0]: a[1]})),
    "GenerativeModel.dependencies": (st.tuples(st.sampled_from(["A_dependencies", "B_dependencies"]), bad_deps()),
                                     lambda a: aif.GenerativeModel(A0, B0, **{a[0]: a[1]})),
    "random_model.sizes": (st.tuples(st.sampled_from(["num_states", "num_obs", "num_controls"]), bad_list(1)),
                           lambda a: aif.random_model(np.random.default_rng(0), **{"num_states": [2], "num_obs": [2],
                                                                                    a[0]: a[1]})),
    "random_model.scalars": (st.tuples(st.sampled_from(["concentration", "C_scale", "rng"]), bad_small),
                             lambda a: aif.random_model(**{"rng": np.random.default_rng(0), "num_states": [2],
                                                           "num_obs": [2], a[0]: a[1]})),
    "log_evidence": (st.tuples(st.one_of(bad_scalar, st.just([0, 5])), bad_beliefs(), bad_scalar),
                     lambda a: aif.log_evidence(MODEL, a[0], QS) if not isinstance(a[1], list)
                     else aif.log_evidence(MODEL, [0, 1], a[1], a[2] if isinstance(a[2], str) else 1 << 30)),
    "log_evidence.max_bytes": (bad_scalar, lambda b: aif.log_evidence(MODEL, [0, 1], QS, b)),
    "variational_free_energy.qs": (bad_beliefs(), lambda q: aif.variational_free_energy(MODEL, [0, 1], q)),
    "LogGuard": (st.tuples(st.sampled_from(["clip", "add", "exact", "x", None]), bad_scalar),
                 lambda a: aif.FixedPoint(guard=aif.maths.LogGuard(*a))),
    "FixedPoint.Exact.settings": (st.tuples(st.sampled_from(["num_iter", "tol", "schedule", "guard", "max_bytes"]),
                                            bad_small),
                                  lambda a: aif.infer_states(MODEL, [0, 1], QS, (aif.Exact if a[0] == "max_bytes"
                                                                                 else aif.FixedPoint)(**{a[0]: a[1]}))),
    "EFEOptions.Guards": (st.tuples(st.sampled_from(["normalize_C", "guards", "state_floor", "outcome"]), bad_scalar),
                          lambda a: aif.expected_free_energy(MODEL, QS, POLICIES, options=aif.EFEOptions(
                              **{a[0]: a[1]}) if a[0] in ("normalize_C", "guards") else aif.EFEOptions(
                              guards=aif.Guards(**{a[0]: a[1]})))),
    "InfoGain.Novelty": (st.tuples(bad_scalar, st.sampled_from(["A", "C", None, 1])),
                         lambda a: aif.expected_free_energy(MODEL, QS, POLICIES, (aif.InfoGain(True, a[0]),
                                                                                  aif.Novelty(a[1])))),
    "action_marginals.probabilities": (st.tuples(bad_vector(4), bad_list(2)),
                                       lambda a: (aif.action_marginals(a[0], POLICIES),
                                                  aif.action_marginals(np.full(4, .25), POLICIES, a[1]),
                                                  aif.action_probabilities(a[0], POLICIES))),
})

# ----------------------------------------------------------------------------------------------------------
# Environments, rollouts, plots


def _grid(kwargs):
    env = envs.GridWorld(**kwargs)
    env.reset(seed=0)
    return env.step(0)[:2]


GRID = st.fixed_dictionaries({}, optional={
    "shape": st.one_of(bad_cell(), st.sampled_from([(0, 3), (1, 1), ("3", "3"), 3])), "start": bad_cell(),
    "goals": st.one_of(bad_scalar, st.just([]), st.lists(bad_cell(), min_size=1, max_size=2)),
    "walls": st.one_of(bad_scalar, st.lists(bad_cell(), min_size=1, max_size=2), st.just([(0, 0)])),
    "cue_location": bad_cell(), "slip": bad_scalar})
CUE = st.fixed_dictionaries({}, optional={
    "shape": st.sampled_from([(0, 3), ("a", 2), 3, (2, 2), None]), "start": bad_cell(), "cue1_location": bad_cell(),
    "cue2_locations": st.one_of(bad_scalar, st.just([]), st.lists(bad_cell(), min_size=1, max_size=2)),
    "reward_locations": st.one_of(bad_scalar, st.just([(1, 5)]), st.lists(bad_cell(), min_size=2, max_size=2))})


def _pomdp(a):
    name, value = a
    arrays = dict(A=[np.eye(2)], B=[np.eye(2)[:, :, None].repeat(2, axis=2)], D=[np.array([0.5, 0.5])])
    arrays[name] = value
    env = envs.POMDPEnv(**arrays)
    env.reset(seed=0)
    return env.step(1)[:2]


def _small_agent():
    env = envs.TMaze()
    return aif.Agent(env.generative_model(), policy_horizon=1), env


AGENT, TMAZE = _small_agent()


def _rollout(kwargs):
    args = dict(agent=AGENT, env=TMAZE, steps=2)
    args.update(kwargs)
    if isinstance(args["steps"], (int, float)) and not isinstance(args["steps"], bool) and args["steps"] > 5:
        args["steps"] = 10**9  # must be refused before a single step, or it runs for ever: see the caller
    return rollout(**args)


ROLLOUT = st.fixed_dictionaries({}, optional={
    "agent": st.sampled_from([None, "agent", MODEL]),
    "env": st.sampled_from([None, "env", envs.GridWorld((2, 2)), MODEL]),
    "steps": st.sampled_from([np.nan, -1, 0, 2.5, "x", None, True, [], -np.inf]),
    "rng": st.sampled_from(["x", 3, np.random.default_rng]), "seed": bad_small,
    "options": st.sampled_from(["x", 3, {"condition": 5}, {"state": (9, 9)}, {"condition": "a"}])})

CASES.update({
    "GridWorld": (GRID, _grid),
    "grid_transitions": (st.tuples(st.one_of(bad_cell(), st.just((2, 2))), st.one_of(bad_scalar, st.just([(5, 5)])),
                                   bad_scalar), lambda a: envs.grid_transitions(*a)),
    "TMaze": (st.tuples(bad_scalar, bad_scalar), lambda a: envs.TMaze(*a).reset(seed=0)),
    "tmaze_arrays": (st.tuples(bad_scalar, bad_scalar), lambda a: envs.tmaze_arrays(*a)),
    "TMaze.generative_model": (st.tuples(st.sampled_from(["reward_preference", "reward_prob", "prior_count",
                                                          "cue_validity"]), bad_scalar),
                               lambda a: envs.TMaze().generative_model(**{a[0]: a[1]}, learn_A=True)),
    "TMaze.reset_step": (st.tuples(st.sampled_from(["x", 3, {"condition": 5}, {"state": (9, 9)}, {"condition": "a"},
                                                    {"state": 3}, None]), bad_scalar),
                         lambda a: (envs.TMaze().reset(seed=0, options=a[0]), TMAZE.step(a[1]))),
    "CueChaining": (CUE, lambda kw: envs.CueChaining(**kw).reset(seed=0)),
    "POMDPEnv": (st.one_of(st.tuples(st.just("A"), st.one_of(bad_scalar, st.builds(lambda a: [a], bad_array((2, 2))))),
                           st.tuples(st.just("B"), st.one_of(bad_scalar, st.builds(lambda b: [b], bad_array((2, 2,
                                                                                                            2))))),
                           st.tuples(st.just("D"), st.one_of(bad_scalar, st.builds(lambda d: [d], bad_vector(2)))),
                           st.tuples(st.sampled_from(["A_dependencies", "B_dependencies"]), bad_deps()),
                           st.tuples(st.just("control_factor"), bad_scalar)), _pomdp),
    "summarize_tmaze": (st.tuples(st.sampled_from([0, 1, 2]), st.one_of(bad_scalar, st.just(np.zeros((2, 0))),
                                                                         st.just(np.zeros((0, 3))))),
                        lambda a: envs.summarize_tmaze(*[a[1] if i == a[0] else x for i, x in enumerate(
                            [np.zeros((2, 3), int), np.zeros(2, int), np.zeros((2, 2))])])),
    "AgentWrapper": (st.tuples(bad_list(1), bad_list(1)),
                     lambda a: envs.AgentWrapper(envs.TMaze(), a[0], a[1]).reset(seed=0)),
    "GridWorld.generative_model": (st.tuples(st.sampled_from(["preference", "goal_preference", "distance_scale",
                                                              "slip", "prior_count"]), bad_scalar),
                                   lambda a: envs.GridWorld((2, 2)).generative_model(**{a[0]: a[1]}, learn_B=True)),
    "rollout": (ROLLOUT, _rollout),
    "plot_beliefs": (st.tuples(st.one_of(bad_scalar, st.just([np.zeros((2, 3, 1))]), st.just([np.zeros(3)]),
                                         st.just([np.full((2, 2), np.nan)]), st.just([])),
                               st.sampled_from([None, "x", ["a", "b", "c"], []])),
                     lambda a: aif.plotting.plot_beliefs(a[0]) if a[1] is None else
                     aif.plotting.plot_beliefs([np.full((2, 2), .5)], a[1])),
    "plot_efe_terms": (st.tuples(st.one_of(bad_scalar, st.just({"utility": np.zeros(2)}), st.just({"x": 1})),
                                 st.sampled_from([("x",), "utility", None, ()]), bad_small),
                       lambda a: aif.plotting.plot_efe_terms(a[0]) if a[0] is not None else
                       aif.plotting.plot_efe_terms({"utility": np.zeros(2), "state_info_gain": np.zeros(2)},
                                                   components=a[1]) if a[1] is not None else
                       aif.plotting.plot_efe_terms({"utility": np.zeros(2), "state_info_gain": np.zeros(2)},
                                                   max_policies=a[2])),
    "plot_grid_path": (st.tuples(st.sampled_from(["cells", "shape", "walls", "landmarks"]),
                                 st.one_of(bad_cell(), st.just([]), st.just([(9, 9)]), st.just({"g": "x"}))),
                       lambda a: aif.plotting.plot_grid_path(**{"cells": [(0, 0), (0, 1)], "shape": (2, 2),
                                                                a[0]: a[1]})),
    "plot_tmaze_summary": (st.tuples(st.sampled_from([0, 1, 2]), st.one_of(bad_scalar, st.just(np.zeros((0, 3))))),
                           lambda a: aif.plotting.plot_tmaze_summary(*[a[1] if i == a[0] else x for i, x in enumerate(
                               [np.zeros((2, 3), int), np.zeros(2, int), np.zeros((2, 2))])])),
})


@pytest.mark.parametrize("name", sorted(CASES))
def test_public_functions_raise_the_librarys_error_or_return_finite_values(name):
    run(*CASES[name], 20)


# ----------------------------------------------------------------------------------------------------------
# Files

def _saved(tmp_path):
    aif.save_model(tmp_path / "model.npz", MODEL)
    aif.save_agent(tmp_path / "agent.npz", AGENT)
    (tmp_path / "text.npz").write_text("not an archive")
    (tmp_path / "empty.npz").write_bytes(b"")
    np.save(tmp_path / "array.npy", np.zeros(3))
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    (tmp_path / "folder").mkdir()
    raw = (tmp_path / "model.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])


def test_files_refuse_bad_paths_objects_and_non_archives(tmp_path):
    _saved(tmp_path)
    names = ["model.npz", "agent.npz", "text.npz", "empty.npz", "array.npy", "plain.npz", "folder", "truncated.npz",
             "missing.npz", "missing/x.npz"]
    paths = st.one_of(st.sampled_from([tmp_path / n for n in names]), st.sampled_from([None, 3, b"\0", "", [], "x\0"]))
    objects = st.sampled_from([None, "model", MODEL, AGENT, MODEL.A, aif.Learning()])

    @SETTINGS
    @given(paths, objects, st.sampled_from(["model", "agent", "x", None, 3]))
    def run(path, obj, kind):
        out = tmp_path / "out.npz"
        check(lambda: aif.load_model(path), OSError)
        check(lambda: aif.load_agent(path), OSError)
        check(lambda: io.read_archive(path, kind), OSError)
        check(lambda: aif.save_model(path, MODEL), OSError)
        check(lambda: aif.save_model(out, obj), OSError)
        check(lambda: aif.save_agent(out, obj), OSError)

    run()


# ----------------------------------------------------------------------------------------------------------
# Regression tests for the bugs found by this fuzzing


def test_model_arrays_and_dependencies_are_refused_by_name():
    with pytest.raises(ModelError, match=r"B\[1\] has shape \(0,\)"):
        aif.GenerativeModel(A0, [B0[0], []])  # was a ZeroDivisionError
    with pytest.raises(ModelError, match=r"A\[0\] has shape \(\)"):
        aif.GenerativeModel([np.nan, A0[1]], B0)  # was an IndexError
    with pytest.raises(ModelError, match=r"A_dependencies\[0\] must be a list of integer indices"):
        aif.GenerativeModel(A0, B0, A_dependencies=[[0.5], [1]])  # was silently factor 0
    with pytest.raises(ModelError, match="E must be numbers"):
        aif.GenerativeModel(A0, B0, E="x")
    with pytest.raises(ParameterError, match="concentration must be positive"):
        aif.random_model(np.random.default_rng(0), [2], [2], concentration=-1.0)  # was numpy's "shape < 0"
    with pytest.raises(StrategyError, match="rng must be a np.random.Generator"):
        aif.random_model(None, [2], [2])


def test_learning_refuses_bad_settings_and_dependencies():
    with pytest.raises(ParameterError, match=r"Learning\.lr must be >= 0 and finite, got \[\]"):
        aif.Learning(lr=[])
    with pytest.raises(ParameterError, match=r"WNorm\.eps must lie in \(0, 1\)"):
        aif.WNorm(eps=None)
    with pytest.raises(ModelError, match="a has a non-finite entry"):
        aif.spm_wnorm(np.array([[np.nan, 1.0], [1.0, 1.0]]))  # was a silent NaN
    with pytest.raises(ParameterError, match=r"modalities\[0\] must be an integer in 0\.\.1, got 0\.5"):
        aif.update_A(MODEL.pA, [0, 1], QS, modalities=[0.5])
    with pytest.raises(ModelError, match="prior has 1 arrays, expected 2"):
        aif.update_D(MODEL.pD, QS, forgetting=0.5, prior=[MODEL.pD[0]])  # was an IndexError
    with pytest.raises(ModelError, match="do not broadcast"):
        aif.reduce_dirichlet(np.ones((3, 2)), np.ones((3, 2)), np.ones((4, 3)))


def test_guards_and_inference_settings_are_checked():
    with pytest.raises(ParameterError, match=r"LogGuard\.kind"):
        aif.maths.LogGuard(None)  # was a plain ValueError
    with pytest.raises(ParameterError, match=r"LogGuard\.eps must lie in \[0, 1\)"):
        aif.maths.LogGuard("clip", np.nan)  # was a NaN posterior
    with pytest.raises(StrategyError, match="guard must be an aif.maths.LogGuard"):
        aif.infer_sequence(MODEL, OBS_WINDOW, ACTIONS, SEQ_POLICIES, method=aif.VariationalMessagePassing(guard=1.0))
    with pytest.raises(ParameterError, match=r"Exact\.max_bytes must be a positive integer"):
        aif.Exact(max_bytes="x")
    with pytest.raises(ParameterError, match=r"InfoGain\.max_outcomes"):
        aif.InfoGain(True, [])


def test_planners_refuse_bad_models_options_and_beliefs():
    with pytest.raises(StrategyError, match="model must be an aif.GenerativeModel, got NoneType"):
        planning.PolicyEnumeration().plan(None, QS)
    with pytest.raises(StrategyError, match=r"SophisticatedInference\.options must be an aif\.EFEOptions"):
        planning.SophisticatedInference(options="x")
    with pytest.raises(BeliefError, match="qs must be a list"):
        planning.SoftQPlanner().plan(MODEL, None)
    with pytest.raises(ModelError, match=r"H\[0\] has a non-finite entry"):
        planning.inductive_matrix([np.array([np.inf, 0, 0]), np.zeros(2)], MODEL.B, 0.5, 2)
    with pytest.raises(PolicyError, match="Plan.G must be numbers"):
        planning.Plan(["a"] * 4, POLICIES)
    with pytest.raises(ParameterError, match="horizon must be a positive integer"):
        planning.joint_rewards(MODEL, -3)


def test_sequence_functions_check_their_inputs():
    with pytest.raises(PolicyError, match="q_pi is not a probability vector"):
        aif.policy_average([np.tile(q, (4, 1)) for q in QS], np.array([np.inf, .25, .25, .25]))  # was inf beliefs
    with pytest.raises(ParameterError, match="C_time must be an integer"):
        aif.sequence_expected_free_energy(MODEL, FUTURE, POLICIES, C_time=None)
    with pytest.raises(ParameterError, match="G must be numbers"):
        aif.sequence_policy_posterior(["a"] * 4, np.zeros(4))


def test_environments_rollouts_and_plots_check_their_inputs(tmp_path):
    with pytest.raises(ParameterError, match=r"start must be two integers"):
        envs.GridWorld(start=("a", 0))
    with pytest.raises(ParameterError, match=r"walls\[0\] must be two integers"):
        envs.grid_transitions((2, 2), [0.5])
    with pytest.raises(ModelError, match=r"columns of B\[0\] sum to"):
        envs.POMDPEnv([np.eye(2)], [np.ones((2, 2, 1))], [np.array([.5, .5])])  # was accepted
    with pytest.raises(ParameterError, match=r"options\['condition'\] must be 0 or 1"):
        envs.TMaze().reset(options={"condition": "a"})
    with pytest.raises(ParameterError, match="options must be a dict"):
        envs.TMaze().reset(options=3)
    with pytest.raises(ModelError, match="control_factors must be a list of integers"):
        envs.AgentWrapper(envs.TMaze(), [4, 1], ["a"])
    with pytest.raises(ParameterError, match="steps must be at least 1, got 2.5"):
        rollout(AGENT, TMAZE, 2.5)  # was silently 2 steps
    with pytest.raises(StrategyError, match="env must be a gymnasium.Env"):
        rollout(AGENT, "env", 2)
    with pytest.raises(ParameterError, match="conditions must be a non-empty 1-D array of integers in 0..1"):
        envs.summarize_tmaze(np.zeros((2, 3), int), np.array([0, 5]), np.zeros((2, 2)))
    with pytest.raises(ParameterError, match=r"cells must be \(row, col\) cells inside the 2x2 grid"):
        aif.plotting.plot_grid_path([(9, 9)], (2, 2))
    with pytest.raises(ParameterError, match="components names 'x'"):
        aif.plotting.plot_efe_terms({"utility": np.zeros(2)}, components=("x",))  # was a KeyError
    with pytest.raises(ParameterError, match="policy_labels has 1 labels but there are 2 policies"):
        aif.plotting.plot_efe_terms({"utility": np.zeros(2), "state_info_gain": np.zeros(2)}, ["a"])  # an IndexError
    with pytest.raises(ParameterError, match="path must be a file name"):
        aif.load_model(None)
    with pytest.raises(StrategyError, match="model must be an aif.GenerativeModel"):
        aif.save_model(tmp_path / "m.npz", "model")


def test_state_marginals_policy_of_strings():
    B = np.stack([np.eye(2)] * 2, -1)
    with pytest.raises(ParameterError, match="policy"):
        planning.soft_value.state_marginals(B, "x", np.array([0.5, 0.5]))
