"""Bad input: every public function and constructor raises an aif error (a ValueError or TypeError subclass)
whose message names the argument, the index and what was expected.

One test per case. Tests marked ``xfail(strict=True)`` document a check that is missing today (the reason says
where and what message is proposed); they pass once the check is added and the mark is dropped.
"""

import numpy as np
import pytest

import aif
from aif.envs import AgentWrapper, CueChaining, GridWorld, TMaze
from aif.errors import (
    AifError,
    BeliefError,
    CallOrderError,
    ModelError,
    ObservationError,
    ParameterError,
    PolicyError,
    StrategyError,
)
from aif.io import FormatError
from aif.learning import reduce_dirichlet, update_A, update_B, update_D
from aif.rollout import rollout


def missing(where, message):
    """xfail mark for a check that does not exist yet."""
    return pytest.mark.xfail(strict=True, reason=f"missing check in {where}; proposed message: {message}")


@pytest.fixture
def model():
    """Two factors (3, 2 states; 2, 2 controls), two modalities (4, 3 outcomes)."""
    return aif.random_model(np.random.default_rng(0), [3, 2], [4, 3], [2, 2])


@pytest.fixture
def policies(model):
    return aif.enumerate_policies(model.num_controls, 2)


def test_every_aif_error_is_a_value_error():
    for cls in (AifError, ModelError, ObservationError, ParameterError, PolicyError, FormatError):
        assert issubclass(cls, ValueError)


# ----------------------------------------------------------------------------------------------------------
# The model: distributions, values, shapes, dependencies, counts


def test_A_columns_not_summing_to_one_say_by_how_much_and_where(model):
    A1 = model.A[1].copy()
    A1[:, 2, 0] *= 0.7
    with pytest.raises(ModelError, match=r"columns of A\[1\] sum to 0\.7 at state \(2, 0\) \(off by -0\.3"):
        model.replace(A=[model.A[0], A1])


def test_B_columns_not_summing_to_one_say_by_how_much_and_where(model):
    B0 = model.B[0].copy()
    B0[:, 1, 1] *= 1.25
    with pytest.raises(ModelError, match=r"columns of B\[0\] sum to 1\.25 at \(previous state\.\.\., control\) "
                                         r"\(1, 1\) \(off by \+0\.25"):
        model.replace(B=[B0, model.B[1]])


def test_negative_entry_in_A(model):
    A0 = model.A[0].copy()
    A0[0, 1, 1] -= 0.5
    A0[1, 1, 1] += 0.5
    with pytest.raises(ModelError, match=r"A\[0\] has a negative entry -?[\d.e-]+ at index \(0, 1, 1\)"):
        model.replace(A=[A0, model.A[1]])


def test_nan_in_B(model):
    B1 = model.B[1].copy()
    B1[0, 1, 0] = np.nan
    with pytest.raises(ModelError, match=r"B\[1\] has a non-finite entry nan at index \(0, 1, 0\)"):
        model.replace(B=[model.B[0], B1])


def test_infinite_preference(model):
    with pytest.raises(ModelError, match=r"C\[1\] has a non-finite entry -inf at index \(2,\)"):
        model.replace(C=[np.zeros(4), np.array([0.0, 1.0, -np.inf])])


def test_infinite_prior(model):
    with pytest.raises(ModelError, match=r"D\[0\] has a non-finite entry inf at index \(1,\)"):
        model.replace(D=[np.array([0.0, np.inf, 0.0]), model.D[1]])


def test_prior_not_summing_to_one(model):
    with pytest.raises(ModelError, match=r"columns of D\[1\] sum to 0\.9 at index \(\)"):
        model.replace(D=[model.D[0], np.array([0.5, 0.4])])


def test_A_shape_disagrees_with_the_states(model):
    with pytest.raises(ModelError, match=r"A\[0\] has shape \(4, 3, 3\), expected \(4, 3, 2\) "
                                         r"\(outcomes, then states of factors \[0, 1\]\)"):
        model.replace(A=[np.full((4, 3, 3), 0.25), model.A[1]])


def test_B_with_the_wrong_number_of_axes(model):
    with pytest.raises(ModelError, match=r"B\[0\] has 2 axes, expected 3"):
        model.replace(B=[np.eye(3), model.B[1]])


def test_C_of_the_wrong_length(model):
    with pytest.raises(ModelError, match=r"C\[0\] has shape \(5,\), expected \(4,\) or \(4, T\)"):
        model.replace(C=[np.zeros(5), np.zeros(3)])


def test_D_of_the_wrong_length(model):
    with pytest.raises(ModelError, match=r"D\[1\] has shape \(3,\), expected \(2,\)"):
        model.replace(D=[model.D[0], np.full(3, 1 / 3)])


def test_dependency_names_a_missing_factor(model):
    with pytest.raises(ModelError, match=r"A_dependencies\[0\] names factor 5, but the model has 2 factors"):
        model.replace(A_dependencies=[[0, 5], [0, 1]])


def test_dependency_lists_of_the_wrong_length(model):
    with pytest.raises(ModelError, match=r"B_dependencies has 1 entries but B has 2 arrays"):
        model.replace(B_dependencies=[[0]])


def test_a_single_array_instead_of_a_list():
    with pytest.raises(ModelError, match=r"A must be a list of arrays.*wrap it as \[A\]"):
        aif.GenerativeModel(np.eye(2), [np.eye(2)[:, :, None]])


def test_policy_prior_not_summing_to_one(model):
    with pytest.raises(ModelError, match=r"E sums to 1\.1; it must sum to 1"):
        model.replace(E=np.array([0.5, 0.6]))


def test_dirichlet_counts_negative_or_a_column_of_zeros(model):
    pB = [b.copy() for b in model.B]
    pB[1][1, 0, 1] = -0.5
    with pytest.raises(ModelError, match=r"pB\[1\] has a negative entry -0\.5 at index \(1, 0, 1\)"):
        model.replace(pB=pB)
    pB[1][:, 0, 1] = 0.0  # a single zero is a structural zero; a column of them has no mean
    with pytest.raises(ModelError, match=r"Dirichlet counts pB\[1\] sum to 0\.0 in the column at index \(0, 1\)"):
        model.replace(pB=pB)


def test_dirichlet_counts_of_the_wrong_shape(model):
    with pytest.raises(ModelError, match=r"pA\[1\] has shape \(3, 3\), expected \(3, 3, 2\)"):
        model.replace(pA=[model.A[0], np.ones((3, 3))])


def test_random_model_rejects_bad_dependencies():
    with pytest.raises(ModelError, match=r"A_dependencies\[0\] names factor 1, but the model has 1 factors"):
        aif.random_model(np.random.default_rng(0), [2], [2], A_dependencies=[[1]])


# ----------------------------------------------------------------------------------------------------------
# Observations and beliefs


def test_observation_out_of_range(model):
    with pytest.raises(ObservationError, match=r"observation 5 is out of range for modality 1 with 3 outcomes "
                                               r"\(0 to 2\)"):
        aif.infer_states(model, [0, 5])


def test_negative_observation(model):
    with pytest.raises(ObservationError, match=r"observation -1 is out of range for modality 0 with 4 outcomes"):
        aif.infer_states(model, [-1, 0])


def test_observation_of_the_wrong_length(model):
    with pytest.raises(ObservationError, match=r"obs has 3 entries but the model has 2 modalities"):
        aif.infer_states(model, [0, 1, 2])


def test_observation_given_as_a_single_index(model):
    with pytest.raises(ObservationError, match=r"obs must be a sequence with one entry per modality \(2\)"):
        aif.infer_states(model, 0)


def test_observation_that_is_not_an_index(model):
    with pytest.raises(ObservationError, match=r"obs\[0\] = 1\.5 is not an outcome index"):
        aif.infer_states(model, [1.5, 0])


def test_observation_vector_not_summing_to_one(model):
    with pytest.raises(ObservationError, match=r"obs\[1\] is not a probability vector: it sums to 0\.8, not 1"):
        aif.infer_states(model, [0, np.array([0.5, 0.2, 0.1])])


def test_observation_vector_of_the_wrong_size(model):
    with pytest.raises(ObservationError, match=r"obs\[0\] has shape \(3,\), expected \(4,\) for modality 0"):
        aif.infer_states(model, [np.full(3, 1 / 3), 0])


def test_prior_belief_not_summing_to_one(model):
    with pytest.raises(BeliefError, match=r"prior\[0\] is not a probability vector: it sums to 1\.2, not 1"):
        aif.infer_states(model, [0, 0], prior=[np.array([0.5, 0.5, 0.2]), model.D[1]])


def test_prior_belief_with_nan(model):
    with pytest.raises(BeliefError, match=r"prior\[1\] is not a probability vector: entry 0 is nan"):
        aif.infer_states(model, [0, 0], prior=[model.D[0], np.array([np.nan, 1.0])])


def test_beliefs_of_the_wrong_size_in_efe(model, policies):
    with pytest.raises(BeliefError, match=r"qs\[0\] has shape \(2,\), expected \(3,\)"):
        aif.expected_free_energy(model, [np.full(2, 0.5), model.D[1]], policies)


def test_beliefs_with_a_missing_factor_in_vfe(model):
    with pytest.raises(BeliefError, match=r"qs has 1 vectors but the model has 2 factors"):
        aif.variational_free_energy(model, [0, 0], [model.D[0]])


def test_log_evidence_checks_the_observation(model):
    with pytest.raises(ObservationError, match=r"observation 9 is out of range for modality 0"):
        aif.log_evidence(model, [9, 0])


def test_predict_checks_the_beliefs(model):
    with pytest.raises(BeliefError, match=r"qs\[0\] is not a probability vector"):
        aif.predict(model, [np.array([0.5, 0.5, 0.2]), model.D[1]], np.array([1, 0]))


def test_agent_reset_checks_the_prior(model):
    agent = aif.Agent(model)
    with pytest.raises(BeliefError, match=r"prior\[0\] has shape \(2,\), expected \(3,\)"):
        agent.reset(prior=[np.full(2, 0.5), model.D[1]])


# ----------------------------------------------------------------------------------------------------------
# Policies and actions


def test_policy_with_an_action_out_of_range(model, policies):
    bad = policies.copy()
    bad[3, 1, 0] = 2
    with pytest.raises(PolicyError, match=r"policy 3 takes action 2 at step 1 for factor 0, which has 2 controls"):
        aif.expected_free_energy(model, model.D, bad)


def test_policy_with_a_negative_action(model, policies):
    bad = policies.copy()
    bad[0, 0, 1] = -1
    with pytest.raises(PolicyError, match=r"policy 0 takes action -1 at step 0 for factor 1"):
        aif.Agent(model, policies=bad)


def test_policies_with_the_wrong_number_of_factors(model):
    with pytest.raises(PolicyError, match=r"policies must have shape \(num_policies, horizon, 2\), got \(4, 1, 3\)"):
        aif.expected_free_energy(model, model.D, np.zeros((4, 1, 3), dtype=int))


def test_policies_that_are_not_integers(model, policies):
    with pytest.raises(PolicyError, match=r"policies must hold integer actions, got dtype float64"):
        aif.expected_free_energy(model, model.D, policies.astype(float))


def test_horizon_not_positive():
    with pytest.raises(PolicyError, match=r"horizon must be a positive integer, got 0"):
        aif.enumerate_policies([2, 2], 0)


def test_agent_horizon_not_an_integer(model):
    with pytest.raises(PolicyError, match=r"horizon must be a positive integer, got 1\.5"):
        aif.Agent(model, policy_horizon=1.5)


def test_policies_with_horizon_zero(model):
    with pytest.raises(PolicyError, match=r"horizon 0"):
        aif.Agent(model, policies=np.zeros((2, 0, 2), dtype=int))


def test_control_factors_out_of_range():
    with pytest.raises(PolicyError, match=r"control_factors names factor 3, but there are 2 factors"):
        aif.enumerate_policies([2, 2], 1, control_factors=[3])


def test_predict_action_out_of_range(model):
    with pytest.raises(PolicyError, match=r"action 3 is out of range for factor 1 with 2 controls \(0 to 1\)"):
        aif.predict(model, model.D, np.array([0, 3]))


def test_predict_action_of_the_wrong_length(model):
    with pytest.raises(PolicyError, match=r"action has shape \(3,\), expected \(2,\): one per factor"):
        aif.predict(model, model.D, np.array([0, 1, 0]))


def test_predict_action_that_is_not_an_integer(model):
    with pytest.raises(PolicyError, match=r"action must hold integers"):
        aif.predict(model, model.D, np.array([1.7, 0.0]))


def test_q_pi_not_summing_to_one(policies):
    q_pi = np.full(len(policies), 1.0 / len(policies))
    q_pi[0] += 0.1
    with pytest.raises(ParameterError, match=r"q_pi is not a probability vector: it sums to 1\.1, not 1"):
        aif.select_action(q_pi, policies)


def test_q_pi_negative_entry_is_located():
    with pytest.raises(ParameterError, match=r"q_pi .*entry 2 is -0\.2"):
        aif.select_action(np.array([0.6, 0.6, -0.2]), np.zeros((3, 1, 2), dtype=int))


def test_q_pi_and_policies_that_disagree(policies):
    with pytest.raises(PolicyError, match=r"q_pi has shape \(3,\) but policies has shape \(16, 2, 2\)"):
        aif.select_action(np.full(3, 1 / 3), policies)


def test_action_marginals_with_q_pi_and_policies_that_disagree():
    with pytest.raises(PolicyError, match=r"q_pi has shape \(2,\) but policies has shape \(3, 1, 2\)"):
        aif.action_marginals(np.array([0.5, 0.5]), np.zeros((3, 1, 2), dtype=int))


def test_unknown_selection_mode(policies):
    with pytest.raises(ParameterError, match=r"mode must be 'deterministic' or 'stochastic', got 'greedy'"):
        aif.select_action(np.full(len(policies), 1 / len(policies)), policies, mode="greedy")


def test_stochastic_selection_without_rng(policies):
    with pytest.raises(ParameterError, match=r"stochastic action selection needs rng"):
        aif.select_action(np.full(len(policies), 1 / len(policies)), policies, mode="stochastic")


def test_unknown_efe_term(model, policies):
    with pytest.raises(StrategyError, match=r"EFE terms are objects, not strs: .* in place of 'risky'"):
        aif.expected_free_energy(model, model.D, policies, terms=("risky",))
    with pytest.raises(StrategyError, match=r"use aif.Utility\(\) in place of 'utility'"):
        aif.expected_free_energy(model, model.D, policies, terms=("utility",))


def test_parameter_information_gain_without_counts(model, policies):
    with pytest.raises(ParameterError, match=r"parameter information gain needs Dirichlet counts: the model has no pB"):
        aif.expected_free_energy(model, model.D, policies, terms=(aif.Utility(), aif.Novelty("B")))


def test_policy_prior_of_the_wrong_length_for_the_agent(model):
    with pytest.raises(ParameterError, match=r"model\.E has 3 entries but the agent has 4 policies"):
        aif.Agent(model.replace(E=np.full(3, 1 / 3)))


# ----------------------------------------------------------------------------------------------------------
# Precisions and settings


@pytest.mark.parametrize("gamma", [0.0, -1.0, np.nan, np.inf])
def test_gamma_not_positive_or_not_finite(gamma):
    with pytest.raises(ParameterError, match=rf"gamma must be positive and finite, got {gamma}"):
        aif.policy_posterior(np.zeros(3), gamma=gamma)


def test_agent_gamma_not_a_number(model):
    with pytest.raises(ParameterError, match=r"gamma must be a positive number, got 'high'"):
        aif.Agent(model, gamma="high")


@pytest.mark.parametrize("alpha", [-2.0, np.nan, np.inf])
def test_alpha_negative_or_not_finite(model, alpha):
    with pytest.raises(ParameterError, match=rf"alpha must be non-negative and finite, got {alpha}"):
        aif.Agent(model, alpha=alpha)


def test_select_action_alpha(policies):
    with pytest.raises(ParameterError, match=r"alpha must be non-negative and finite, got -1\.0"):
        aif.select_action(np.full(len(policies), 1 / len(policies)), policies, alpha=-1)


def test_non_finite_G():
    with pytest.raises(ParameterError, match=r"G has a non-finite entry at index \(1,\)"):
        aif.policy_posterior(np.array([0.0, np.nan, 1.0]))


def test_policy_prior_of_the_wrong_length_in_policy_posterior():
    with pytest.raises(ParameterError, match=r"E has shape \(2,\) but there are 3 policies"):
        aif.policy_posterior(np.zeros(3), E=np.array([0.5, 0.5]))


@pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")
def test_policy_prior_with_a_negative_entry():
    with pytest.raises(ParameterError, match=r"E has a negative entry -0\.1 at index \(2,\)"):
        aif.policy_posterior(np.zeros(3), E=np.array([0.5, 0.6, -0.1]))


def test_policy_posterior_prior_not_summing_to_one():
    with pytest.raises(ParameterError, match=r"E sums to 2"):
        aif.policy_posterior(np.zeros(3), E=np.array([1.0, 0.5, 0.5]))


def test_fixed_point_iterations_not_positive():
    with pytest.raises(ParameterError, match=r"FixedPoint\.num_iter must be a positive integer, got 0"):
        aif.FixedPoint(num_iter=0)


def test_fixed_point_negative_tolerance():
    with pytest.raises(ParameterError, match=r"FixedPoint\.tol must be None or a finite number >= 0, got -1"):
        aif.FixedPoint(tol=-1)


def test_unknown_efe_option():
    with pytest.raises(StrategyError, match=r"EFEOptions\.guards must be an aif\.Guards .*got 'none'"):
        aif.EFEOptions(guards="none")


def test_unknown_selection_setting():
    with pytest.raises(ParameterError, match=r"Selection\.sampling must be 'full' or 'marginal', got 'joint'"):
        aif.Selection(sampling="joint")


def test_agent_needs_a_model():
    with pytest.raises(TypeError, match=r"model must be an aif\.GenerativeModel, got list"):
        aif.Agent([np.eye(2)])


def test_agent_stochastic_without_rng(model):
    with pytest.raises(ParameterError, match=r"stochastic selection needs rng"):
        aif.Agent(model, selection=aif.Selection("stochastic"))


def test_inference_method_given_as_a_string(model):
    with pytest.raises(StrategyError, match=r"method must be a state inference strategy.*got 'fpi'"):
        aif.infer_states(model, [0, 0], method="fpi")


def test_agent_selection_given_as_a_string(model):
    with pytest.raises(TypeError, match=r"selection must be an aif\.Selection, got 'stochastic'"):
        aif.Agent(model, selection="stochastic")


def test_agent_rng_that_is_not_a_generator(model):
    with pytest.raises(TypeError, match=r"rng must be a np\.random\.Generator, got int"):
        aif.Agent(model, selection=aif.Selection("stochastic"), rng=42)


def test_agent_order_of_calls(model):
    with pytest.raises(CallOrderError, match=r"sample_action needs q_pi: call infer_policies\(\) first"):
        aif.Agent(model).sample_action()
    with pytest.raises(CallOrderError, match=r"infer_policies needs a posterior: call infer_states\(obs\) first"):
        aif.Agent(model).infer_policies()


@pytest.mark.parametrize("argument, value, words", [
    ("inference", "fpi", "inference must be a state inference strategy"),
    ("inference", aif.FixedPoint, "inference must be an instance, got the class FixedPoint"),
    ("inference", aif.planning.PolicyEnumeration(), "inference must be a state inference strategy"),
    ("planner", aif.FixedPoint(), "planner must be a planner strategy"),
    ("planner", aif.planning.PolicyEnumeration, "planner must be an instance"),
    ("learning", aif.Selection(), "learning must be a learner strategy"),
])
def test_agent_strategy_of_the_wrong_kind(model, argument, value, words):
    with pytest.raises(StrategyError, match=words):
        aif.Agent(model, **{argument: value})


def test_agent_refuses_a_torch_only_strategy(model):
    class TorchOnly(aif.strategies.StateInference):
        backends = frozenset({"torch"})

    with pytest.raises(StrategyError, match="inference = TorchOnly runs on torch only, not on numpy"):
        aif.Agent(model, inference=TorchOnly())


# ----------------------------------------------------------------------------------------------------------
# Learning


@pytest.fixture
def counts():
    """pA for one modality (3 outcomes) over one factor (2 states); pB for that factor with 2 controls."""
    return [np.ones((3, 2))], [np.ones((2, 2, 2))]


def test_learning_rate_below_zero(counts):
    pA, _ = counts
    with pytest.raises(ParameterError, match=r"lr \(the learning rate\) must be a finite number >= 0, got -0\.1"):
        update_A(pA, [0], [np.array([0.5, 0.5])], lr=-0.1)


def test_learning_rate_not_finite(counts):
    _, pB = counts
    q = [np.array([0.5, 0.5])]
    with pytest.raises(ParameterError, match=r"lr \(the learning rate\) must be a finite number >= 0, got nan"):
        update_B(pB, q, q, np.array([0]), lr=np.nan)


def test_forgetting_out_of_range(counts):
    _, pB = counts
    q = [np.array([0.5, 0.5])]
    with pytest.raises(ParameterError, match=r"forgetting must be a number in \(0, 1\]"):
        update_B(pB, q, q, np.array([0]), forgetting=0.0)


def test_learning_counts_all_zero():
    with pytest.raises(ModelError, match=r"Dirichlet counts pD\[0\] sum to 0\.0: a Dirichlet needs a positive"):
        update_D([np.array([0.0, 0.0])], [np.array([0.5, 0.5])])


def test_learning_observation_out_of_range(counts):
    pA, _ = counts
    with pytest.raises(ObservationError, match=r"observation 3 is out of range for modality 0 with 3 outcomes"):
        update_A(pA, [3], [np.array([0.5, 0.5])])


def test_learning_belief_not_a_distribution(counts):
    _, pB = counts
    with pytest.raises(BeliefError, match=r"qs_prev\[0\] is not a probability vector: it sums to 0\.5"):
        update_B(pB, [np.array([0.5, 0.5])], [np.array([0.25, 0.25])], np.array([0]))


def test_learning_action_out_of_range(counts):
    _, pB = counts
    q = [np.array([0.5, 0.5])]
    with pytest.raises(PolicyError, match=r"action 2 is out of range for factor 0 with 2 controls"):
        update_B(pB, q, q, np.array([2]))


def test_model_reduction_counts_not_positive_are_located():
    with pytest.raises(ModelError, match=r"q_dir is 0\.0 and p_dir is 1\.0 at index \(1,\)"):
        reduce_dirichlet(np.array([1.0, 0.0]), np.ones(2), np.ones(2))


# ----------------------------------------------------------------------------------------------------------
# Environments and the loop


@pytest.mark.parametrize("make", [TMaze, GridWorld, CueChaining], ids=["tmaze", "grid", "cue-chaining"])
def test_environment_action_out_of_its_space(make):
    env = make()
    env.reset(seed=0)
    bad = int(env.action_space.n)
    with pytest.raises(PolicyError, match=rf"action {bad} is not in the action space Discrete\({bad}\)"):
        env.step(bad)


def test_environment_action_that_is_not_an_integer():
    env = TMaze()
    env.reset(seed=0)
    with pytest.raises(PolicyError, match=r"action 1\.0 is not in the action space Discrete\(4\)"):
        env.step(1.0)


def test_wrapped_environment_action_out_of_range():
    env = TMaze()
    wrapped = AgentWrapper.for_model(env, env.generative_model())
    wrapped.reset(seed=0)
    with pytest.raises(PolicyError, match=r"action 9 is not in the action space Discrete\(4\)"):
        wrapped.step(np.array([9, 0]))


def test_wrapped_environment_action_of_the_wrong_length():
    env = TMaze()
    wrapped = AgentWrapper.for_model(env, env.generative_model())
    wrapped.reset(seed=0)
    with pytest.raises(PolicyError, match=r"action has 3 entries, expected one per factor \(2\)"):
        wrapped.step(np.array([1, 0, 0]))


def test_environment_reset_state_out_of_range():
    with pytest.raises(ParameterError, match=r"options\['state'\] = \(4, 0\) is not a state of factors with sizes "
                                             r"\[4, 2\]"):
        TMaze().reset(seed=0, options={"state": (4, 0)})


def test_environment_settings_out_of_range():
    with pytest.raises(ParameterError, match=r"slip must lie in \[0, 1\), got 1\.0"):
        GridWorld(slip=1.0)
    with pytest.raises(ParameterError, match=r"goals\[0\] = \(9, 9\) lies outside the 7x7 grid"):
        GridWorld(goals=[(9, 9)])
    with pytest.raises(ParameterError, match=r"reward_prob must lie in \[0, 1\], got 1\.5"):
        TMaze(reward_prob=1.5)


def test_rollout_needs_at_least_one_step():
    env = TMaze()
    with pytest.raises(ParameterError, match=r"steps must be at least 1, got 0"):
        rollout(aif.Agent(env.generative_model()), env, 0)


# ----------------------------------------------------------------------------------------------------------
# Inference over a window and planners


def test_sequence_observation_out_of_range(model, policies):
    from aif.sequence import infer_sequence

    with pytest.raises(ObservationError, match=r"obs_window\[1\]: observation 5 is out of range for modality 0"):
        infer_sequence(model, [[0, 0], [5, 0]], [np.array([0, 0])], policies)


def test_sequence_actions_of_the_wrong_length(model, policies):
    from aif.sequence import infer_sequence

    with pytest.raises(PolicyError, match=r"actions_window has shape \(0, 2\), expected \(1, 2\)"):
        infer_sequence(model, [[0, 0], [1, 0]], [], policies)


def test_sequence_action_out_of_range(model, policies):
    from aif.sequence import infer_sequence

    with pytest.raises(PolicyError, match=r"actions_window\[0, 0\] = 3 is out of range for factor 0 with 2 controls"):
        infer_sequence(model, [[0, 0], [1, 0]], [np.array([3, 0])], policies)


def test_message_passing_settings_out_of_range():
    from aif.sequence import MarginalMessagePassing

    with pytest.raises(ParameterError, match=r"num_iter must be a positive integer, got 0"):
        MarginalMessagePassing(num_iter=0)
    with pytest.raises(ParameterError, match=r"tau must be positive and finite, got -1"):
        MarginalMessagePassing(tau=-1)


def test_soft_value_iteration_B_not_normalised(model):
    from aif.planning import soft_value_iteration

    with pytest.raises(ModelError, match=r"columns of B sum to 1\.1 at \(state, action\) \(0, 0\)"):
        soft_value_iteration(model.B[0] * 1.1, np.zeros((2, 3, 2)), 2)


def test_soft_value_iteration_non_finite_reward(model):
    from aif.planning import soft_value_iteration

    with pytest.raises(ParameterError, match=r"r has a non-finite entry nan at index \(0, 0, 0\)"):
        soft_value_iteration(model.B[0], np.full((2, 3, 2), np.nan), 2)


def test_planner_horizon_not_positive():
    from aif.planning import SoftQPlanner

    with pytest.raises(ParameterError, match=r"horizon must be a positive integer, got 0"):
        SoftQPlanner(horizon=0)


def test_inductive_preference_of_the_wrong_size(model):
    from aif.planning import inductive_matrix

    with pytest.raises(ModelError, match=r"H\[0\] has shape \(2,\), expected \(3,\)"):
        inductive_matrix([np.array([1.0, 0.0])], [model.B[0]], threshold=0.5, depth=3)


def test_inductive_threshold_out_of_range(model):
    from aif.planning import inductive_matrix

    with pytest.raises(ParameterError, match=r"threshold must lie in \[0, 1\), got -1"):
        inductive_matrix([np.array([1.0, 0.0, 0.0])], [model.B[0]], threshold=-1, depth=3)


def test_inductive_epsilon_out_of_range():
    with pytest.raises(ParameterError, match=r"InductiveCost.epsilon must lie in \(0, 1\), got -1"):
        aif.InductiveCost([np.ones((3, 3))], epsilon=-1)


def test_enumerate_policies_past_numpys_64_axes_and_refusal_before_a_runaway_allocation():
    import itertools

    policies = aif.enumerate_policies([1] * 49 + [2], 2)  # 100 axes: more than an ndarray may have
    assert policies.shape == (4, 2, 50) and policies[:, :, :49].max() == 0
    assert policies[:, :, 49].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    for nc, H in (([2, 3], 2), ([3, 1, 2], 3)):  # itertools.product's order, as pymdp's construct_policies
        ref = np.array(list(itertools.product(*[range(u) for u in nc * H]))).reshape(-1, H, len(nc))
        assert (aif.enumerate_policies(nc, H) == ref).all()
    with pytest.raises(aif.errors.PolicyError, match=r"1,152,921,504,606,846,976 policies of horizon 3 over 20 "
                                                     r"factors .* bytes, above max_bytes"):
        aif.enumerate_policies([2] * 20, 3)
    with pytest.raises(aif.errors.PolicyError, match="above max_bytes = 1,000"):
        aif.enumerate_policies([2, 2], 4, max_bytes=1000)
    assert aif.enumerate_policies([2, 2], 4, max_bytes=20_480).shape == (256, 4, 2)
    with pytest.raises(aif.errors.PolicyError, match="policies of horizon 12"):
        aif.Agent(aif.random_model(np.random.default_rng(0), [2] * 4, [2], [3] * 4), policy_horizon=12)


def test_policy_posterior_stays_a_distribution_when_gamma_times_G_overflows():
    import torch

    import aif_deep

    G = np.array([1.0, 2.0, -3.0])
    E = np.array([0.5, 0.5, 0.0])  # rules the lowest G out
    for gamma in (1e308, 1e300):
        np.testing.assert_array_equal(aif.policy_posterior(G, None, gamma), [0.0, 0.0, 1.0])
        np.testing.assert_array_equal(aif.policy_posterior(G, E, gamma), [1.0, 0.0, 0.0])
        torch.testing.assert_close(aif_deep.policy_posterior(torch.tensor(G), None, gamma),
                                   torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
        torch.testing.assert_close(aif_deep.policy_posterior(torch.tensor(G), torch.tensor(E), gamma),
                                   torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    # At ordinary precisions the shift changes nothing: softmax(-gamma G + ln E) itself.
    ref = np.exp(-16 * G + np.log([0.5, 0.5, 1e-300]))
    np.testing.assert_allclose(aif.policy_posterior(G, E, 16.0), np.where(E > 0, ref / ref[E > 0].sum(), 0.0),
                               rtol=1e-12)


def test_a_step_that_fails_changes_nothing_and_a_retry_learns_the_observation_once():
    model = TMaze().generative_model(learn_A=True)
    agent = aif.Agent(model, learning=aif.Learning(learn_B=False), selection=aif.Selection("stochastic"),
                      rng=np.random.default_rng(0))
    agent.step([0, 0, 0])
    before = {k: (list(v) if isinstance(v, list) else v) for k, v in vars(agent).items()}
    rng_state = agent.rng.bit_generator.state
    score = agent._cycle.infer_policies
    agent._cycle.infer_policies = lambda: 1 / 0  # fails after infer_states has learned the observation into pA
    with pytest.raises(ZeroDivisionError):
        agent.step([3, 0, 1])
    assert agent.model is before["model"] and agent.t == before["t"]
    assert all(a is b for a, b in zip(agent.qs, before["qs"], strict=True))
    assert agent.history == before["history"] and agent.rng.bit_generator.state == rng_state
    agent._cycle.infer_policies = score
    twin = aif.Agent(model, learning=aif.Learning(learn_B=False), selection=aif.Selection("stochastic"),
                     rng=np.random.default_rng(0))
    twin.step([0, 0, 0])
    assert (agent.step([3, 0, 1]) == twin.step([3, 0, 1])).all()
    for a, b in zip(agent.model.pA, twin.model.pA, strict=True):
        np.testing.assert_array_equal(a, b)


def test_exact_inference_and_log_evidence_refuse_a_joint_space_above_their_budget():
    import torch

    import aif_deep

    model = aif.random_model(np.random.default_rng(0), [60, 60, 60, 60], [2], [1, 1, 1, 1])  # 13M joint states
    with pytest.raises(ParameterError, match=r"joint state space of factors of sizes \[60, 60, 60, 60\]: about "
                                             r"311,040,000 bytes, above max_bytes = 100,000,000"):
        aif.infer_states(model, [0], method=aif.Exact(max_bytes=100_000_000))
    with pytest.raises(ParameterError, match="log_evidence enumerates the joint state space"):
        aif.inference.log_evidence(model, [0], max_bytes=1000)
    with pytest.raises(ParameterError, match="Exact enumerates the joint state space"):
        aif_deep.infer_states(aif_deep.TabularModel.from_aif(model, device="cpu"), [torch.tensor(0)],
                              method=aif.Exact(max_bytes=1000))
    small = aif.random_model(np.random.default_rng(0), [3, 2], [2], [1, 1])
    assert np.isclose(sum(aif.infer_states(small, [1], method=aif.Exact())[0]), 1.0)


def test_the_joint_information_gain_refuses_a_joint_outcome_space_above_its_budget():
    import aif_deep

    model = aif.random_model(np.random.default_rng(0), [2], [40, 40, 40, 40], [2])  # 2,560,000 joint outcomes
    terms = (aif.Utility(), aif.InfoGain(joint=True))
    for build in (lambda: aif.Agent(model, efe_terms=terms),
                  lambda: aif_deep.Agent(aif_deep.TabularModel.from_aif(model, device="cpu"), efe_terms=terms)):
        with pytest.raises(ParameterError, match=r"sizes \[40, 40, 40, 40\]: 2,560,000 outcomes per belief, above "
                                                 r"max_outcomes = 1,000,000"):
            build()
    small = aif.random_model(np.random.default_rng(0), [2], [3, 3], [2])
    aif.Agent(small, efe_terms=(aif.Utility(), aif.InfoGain(joint=True, max_outcomes=9))).step([0, 1])


@pytest.mark.parametrize("mode", [np.array(["deterministic", "stochastic"]), ["stochastic"], None, 3, True])
def test_selection_mode_that_is_not_a_name(policies, mode):
    """An array compared with a name is element-wise: it was a raw ValueError in both packages."""
    q_pi = np.full(len(policies), 1 / len(policies))
    with pytest.raises(ParameterError, match="mode must be 'deterministic' or 'stochastic'"):
        aif.select_action(q_pi, policies, mode=mode)
    torch = pytest.importorskip("torch")
    import aif_deep

    with pytest.raises(ParameterError, match="mode must be 'deterministic' or 'stochastic'"):
        aif_deep.select_action(torch.tensor(q_pi), policies, mode=mode)
